"""Feature-extraction workers never inherit the runner's signal handlers."""

from __future__ import annotations

import multiprocessing
import os
import signal
from typing import Any

import pytest

from ginpipe.tasks.data.extraction import _init_worker


def _handlers() -> tuple[bool, bool]:
    return (
        signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
        signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
    )


def _raise(signum: int, frame: Any) -> None:  # what the runner installs while it runs
    raise RuntimeError(f"signal {signum}")


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_forked_workers_end_quietly_on_sigterm_and_leave_ctrl_c_to_the_parent() -> None:
    """The pool's SIGTERM at shutdown once raised the runner's ``Interrupted`` in a worker
    and printed its traceback (about 2 runs in 5)."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for s in previous:
        signal.signal(s, _raise)
    try:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(1, initializer=_init_worker, initargs=(os.getpid(),)) as pool:
            assert pool.apply(_handlers) == (True, True)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
