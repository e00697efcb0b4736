"""Figures drawn from recorded numbers (learning curves, confusion matrices, run
comparisons, sweeps, pipeline graphs): matplotlib only, no torch, so that reading a run
directory never imports a training library."""
