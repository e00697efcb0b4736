"""The run directory's layout: its file names, where it belongs, its ``run.json`` read back.

Below both ``ginpipe.runs`` (which writes run directories) and ``ginpipe.records`` (which
reads, labels and removes finished ones): both need the same names and readers, and neither
may import the other. Above ``ginpipe.plots`` and the engine, which know nothing of run
directories; imports only ``ginpipe.base``.
"""
