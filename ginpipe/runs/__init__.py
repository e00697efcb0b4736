"""Runs: the runner, run directories, resume, provenance, ranks and the pipeline's graph.

Above ``ginpipe.core``; beside (never importing) the task library ``ginpipe.tasks`` and the
records of finished runs ``ginpipe.records``.
"""
