"""The working directory as an import location: the one place ginpipe puts it on ``sys.path``.

As with ``python -m``, a config's ``import mytasks`` or ``@mymodels.Net`` finds the user's own
modules in the working directory without PYTHONPATH: in the process a user starts
(``ginpipe/runs/startup.py``), and in a job that runs part of it elsewhere (a task sent to a
job scheduler, ``ginpipe/core/job_main.py``; a sweep's array element,
``ginpipe/sweep/launch.py``), which first moves to the folder the run was started from.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def make_cwd_importable() -> None:
    """Put the working directory first on ``sys.path``, unless it (or ``""``, which stands
    for it) is there already."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def work_in(directory: str) -> None:
    """Move to ``directory`` (the folder a run was started from) and import from it, as the
    run did; nothing if it no longer exists on this machine."""
    if directory and Path(directory).is_dir():
        os.chdir(directory)
        make_cwd_importable()
