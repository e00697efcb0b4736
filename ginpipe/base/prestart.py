"""Helper processes a run starts as soon as its config is read, before importing what it names.

Some observers do their work in a process of their own: the MLflow tracker
(``ginpipe/tasks/tracking_sidecar.py``) spends seconds of CPU importing mlflow and its
database layer before it can log anything. Started when the run starts, that import competes
with training for the cores; started as soon as the config is read, before the config's own
imports (torch and Lightning: seconds in one thread), it runs on the core those imports leave
idle (benchmarks/tracking.py).

Which process a name wants comes from the ``ginpipe.prestart`` entry point group: the entry's
name is a configurable's name, its value the module run as ``python -m MODULE``
(pyproject.toml). The process must read JSON lines on stdin, write nothing before its first
message, and exit at end of input.

The run owns its ``Prestarted`` (``ginpipe/runs/runner.py``): it hands ``start`` to compose
as the callback that sees the config's names, gives the object to the observers that work
through a helper process (their ``helpers`` attribute), and discards it when the run ends. A
process no observer took (the config named the name but did not use it, or was refused) has
done nothing but import: ``discard`` ends it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from functools import cache
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "ginpipe.prestart"


@cache
def _modules_by_name() -> dict[str, str]:
    return {entry.name: entry.value for entry in entry_points(group=ENTRY_POINT_GROUP)}


def wanted(names: Iterable[str]) -> list[str]:
    """The modules to start for the configurables a config names (short or dotted)."""
    table = _modules_by_name()
    found = {table[n.rpartition(".")[2]] for n in names if n.rpartition(".")[2] in table}
    return sorted(found)


def spawn(module: str) -> subprocess.Popen[str]:
    """``python -m MODULE`` with pipes on stdin, stdout and stderr, in a session of its own
    (Ctrl-C reaches the run, which then tells the process how it ended)."""
    return subprocess.Popen(
        [sys.executable, "-m", module],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


class Prestarted:
    """One run's helper processes, by module, from their start until an observer takes them
    or the run discards them."""

    def __init__(self) -> None:
        self.started: dict[str, subprocess.Popen[str]] = {}

    def start(self, names: Iterable[str]) -> None:
        """Start the processes ``names`` want that are not running yet."""
        for module in wanted(names):
            if module not in self.started:
                self.started[module] = spawn(module)

    def take(self, module: str) -> subprocess.Popen[str] | None:
        """The started process for ``module``, now the caller's; None if none was started."""
        proc = self.started.pop(module, None)
        if proc is not None and proc.poll() is not None:
            return None  # it ended already (it could not import what it needs): start anew
        return proc

    def discard(self) -> None:
        """End the processes no observer took."""
        while self.started:
            _, proc = self.started.popitem()
            proc.kill()
            proc.communicate()
