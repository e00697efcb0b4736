"""Runs: the runner, run directories, resume, provenance, ranks, history and the catalog.

Above ``ginpipe.core``; beside (never importing) the task library ``ginpipe.tasks``.
"""
