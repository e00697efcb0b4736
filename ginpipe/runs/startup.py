"""Start-up of a ginpipe process: its entry, and importing what a config names without the
collector's rescans.

``process_main`` is the one entry of every process ginpipe starts (the console script, a sweep
worker, a trial): the working directory importable, console logging, this module's collector
pause, and how an error or a Ctrl-C that reaches the top ends the process.

Importing torch, Lightning and torchmetrics creates ~450,000 objects that live as long as
the process. Python's cyclic garbage collector rescans every one of them at each full
collection: ~0.2 s each on the 2-core machine of benchmarks/RESULTS.md, seven times while
the default pipeline's modules are imported, and again when the interpreter exits. The
console script pauses the collector while a config is composed, then freezes what exists
(``gc.freeze``: moved to a generation the collector never scans), so those objects cost
nothing once they are made; measured, the default pipeline reaches its first training step
~1.3 s sooner and its process ends ~1.5 s sooner. Objects made afterwards are collected as
usual. Reference cycles among the frozen objects are never freed: they are modules and the
composed config, which live until the process ends anyway.

Only a process ginpipe owns does this (the console script, a sweep worker, a trial), and
only once: a notebook, a test or any program calling ginpipe as a library keeps its own
collector, and a process that composes many configs (a sweep worker) freezes only what its
first one imported, never the garbage of an earlier run.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from ginpipe.base.errors import EXIT_INTERRUPTED, GinpipeError, TaskFailed
from ginpipe.base.workdir import make_cwd_importable

T = TypeVar("T")

_owned = False  # set by ginpipe's own entry points
_done = False  # the one start-up of this process has happened


def own_process() -> None:
    """Called by ginpipe's entry points: this process may pause its collector at start-up."""
    global _owned
    _owned = True


@contextlib.contextmanager
def importing() -> Iterator[None]:
    """Around the first composition of a config, where the modules it names are imported.

    Does nothing outside a process ginpipe owns, after the first time, or when the
    collector is already off.
    """
    global _done
    if not _owned or _done or not gc.isenabled():
        yield
        return
    _done = True
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def process_main(
    body: Callable[[], T],
    *,
    console_rank: int | None = None,
    reported: tuple[type[GinpipeError] | type[TaskFailed], ...] = (),
    interrupted_exit: int | None = None,
) -> T:
    """Run ``body`` as the whole of a process ginpipe owns; its result.

    Args:
        console_rank: log to the console as this rank before ``body`` (None: ``body`` sets
            logging up itself, as each CLI command does with its ``--verbose``).
        reported: errors that end the process as one ``error:`` line and their exit code.
        interrupted_exit: the exit code of a Ctrl-C that reaches the top, printed as
            ``interrupted``; None leaves it to Python.
    """
    make_cwd_importable()
    if console_rank is not None:
        from ginpipe.runs.log import setup_console

        setup_console(False, console_rank)
    own_process()
    try:
        return body()
    except KeyboardInterrupt:
        if interrupted_exit is None:
            raise
        print("interrupted", file=sys.stderr)
        sys.exit(interrupted_exit)
    except reported as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    finally:
        _quiet_exit_on_ctrl_c()


def _quiet_exit_on_ctrl_c() -> None:
    """Once the work is over, the interpreter still joins threads and runs exit hooks
    (torch's, multiprocessing's): a Ctrl-C there printed a KeyboardInterrupt traceback from
    an atexit hook. It ends the process at once instead, with Ctrl-C's exit code."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda signum, frame: os._exit(EXIT_INTERRUPTED))
