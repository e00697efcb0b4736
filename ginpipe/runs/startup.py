"""Start-up of a ginpipe process: import what a config names without the collector's rescans.

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
from collections.abc import Iterator

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
