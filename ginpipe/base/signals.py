"""SIGINT and SIGTERM as an exception, so that work in progress ends through ``finally``.

A run records itself as interrupted and Lightning writes its checkpoint; ``predict`` and
``export`` remove their temp file. Python's default would end the process on SIGTERM
without running any ``finally``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ginpipe.base.errors import Interrupted


@contextmanager
def signals_raise_interrupted() -> Iterator[None]:
    """SIGINT/SIGTERM become ``Interrupted``, so Lightning checkpoints and we record it.

    (A KeyboardInterrupt would make Lightning call ``sys.exit(1)`` itself.) Only the main
    thread may install handlers; elsewhere (a notebook's worker thread) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signum, signal.SIG_IGN)  # a second Ctrl+C must not cut the cleanup
        raise Interrupted(signum)

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
