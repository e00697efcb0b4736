"""ginpipe: compose gin configs, run a pipeline of cached tasks, record every run.

Importing this package stays light (no torch, no Lightning) so the CLI starts fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_run", "task"]


def __getattr__(name: str):
    # `from ginpipe import task` without importing gin at `import ginpipe` time.
    if name == "task":
        from ginpipe.taskdef import task

        return task
    if name == "load_run":  # torch is imported only when the run's model is used
        from ginpipe.runview import load_run

        return load_run
    raise AttributeError(name)
