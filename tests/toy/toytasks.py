"""Toy tasks and observers for exercising the engine without real data or training.

Every task appends its name to ``calls.log`` in the working directory when it runs, so a
test can tell a cache hit (no line) from an execution (one line).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import gin

from ginpipe import task
from ginpipe.core.events import Observer

CALLS_FILE = "calls.log"

# Filled by the configurables below; tests clear them.
EVENTS: list[tuple[str, Any]] = []
OFFSET_CALLS: list[int] = []


def _count(name: str) -> None:
    with open(CALLS_FILE, "a") as f:
        f.write(name + "\n")


def calls(name: str | None = None, where: Path | str = ".") -> int | list[str]:
    """How often ``name`` ran (or the whole list of executions, in order)."""
    path = Path(where) / CALLS_FILE
    lines = path.read_text().split() if path.exists() else []
    return lines if name is None else lines.count(name)


class Opaque:
    """A value no safe codec can store."""

    def __init__(self, value: int) -> None:
        self.value = value


@task(writes=("numbers",))
def make_numbers(state: Any, *, n: int = 3, start: int = 1) -> dict[str, Any]:
    """Write the integers start .. start+n-1."""
    _count("make_numbers")
    return {"numbers": list(range(start, start + n))}


@task(reads=("numbers",), writes=("total",))
def add_up(state: Any, *, scale: float = 1.0) -> dict[str, Any]:
    """Sum the numbers, times scale."""
    _count("add_up")
    return {"total": float(sum(state["numbers"]) * scale)}


@task(reads=("total",), writes=("metrics",), cache=False)
def report(state: Any, *, bonus: float = 0.0) -> dict[str, Any]:
    """Turn the total into metrics and write them into the run directory."""
    _count("report")
    total = state["total"] + bonus
    metrics = {"accuracy": total / 100.0, "total": total}
    if state.run is not None:
        (state.run.dir / "metrics.json").write_text(json.dumps(metrics))
    return {"metrics": metrics}


@task(
    reads=("total",),
    writes=("scaled",),
    hints={"factor": "how much to multiply the total by, e.g. --mod scale_by.factor=2"},
)
def scale_by(state: Any, *, factor: float = gin.REQUIRED) -> dict[str, Any]:
    """Multiply the total by a required factor."""
    _count("scale_by")
    return {"scaled": state["total"] * factor}


@task(reads=("total",), writes=("shifted",))
def shift(state: Any, *, offset: int = 0) -> dict[str, Any]:
    """Add an offset (often given as a configurable call) to the total."""
    _count("shift")
    return {"shifted": state["total"] + offset}


@gin.configurable
def offset_value(value: int = 1) -> int:
    """Records every call, to prove cache keys never call references."""
    OFFSET_CALLS.append(value)
    return value


@task(reads=("numbers",), writes=("never",))
def explode(state: Any, *, message: str = "boom") -> dict[str, Any]:
    """Always fails."""
    _count("explode")
    raise RuntimeError(message)


@task(writes=("peeked",))
def peek(state: Any) -> dict[str, Any]:
    """Reads a key it did not declare."""
    return {"peeked": state["numbers"]}


@task(writes=("numbers",))
def overshare(state: Any) -> dict[str, Any]:
    """Returns a key it did not declare."""
    return {"numbers": [1], "secret": 2}


@task(writes=("thing",))
def make_thing(state: Any, *, value: int = 5) -> dict[str, Any]:
    """Writes an object without a safe storage format."""
    _count("make_thing")
    return {"thing": Opaque(value)}


@task(reads=("thing",), writes=("thing_value",))
def use_thing(state: Any, *, plus: int = 0) -> dict[str, Any]:
    """Needs the unstorable object."""
    _count("use_thing")
    return {"thing_value": state["thing"].value + plus}


@task(writes=("text",))
def read_text(state: Any, *, path: str = "") -> dict[str, Any]:
    """Reads a file named by a parameter."""
    _count("read_text")
    return {"text": Path(path).read_text()}


@task(reads=("total",), writes=("rested",), cache=False)
def nap(state: Any, *, seconds: float = 0.0, hold: str = "") -> dict[str, Any]:
    """Sleeps ``seconds``, and then for as long as the file ``hold`` exists (at most 60 s)."""
    _count("nap")
    start = time.monotonic()
    while time.monotonic() - start < seconds or (
        hold and Path(hold).exists() and time.monotonic() - start < 60
    ):
        time.sleep(0.02)
    return {"rested": seconds}


@gin.configurable
class Recorder(Observer):
    """Keeps every event it receives in ``EVENTS``."""

    def __init__(self, label: str = "rec") -> None:
        self.label = label

    def on_run_start(self, run: dict[str, Any]) -> None:
        EVENTS.append(("on_run_start", dict(run)))

    def on_task_start(self, event: Any) -> None:
        EVENTS.append(("on_task_start", event.task))

    def on_task_end(self, event: Any) -> None:
        EVENTS.append(("on_task_end", (event.task, event.status)))

    def on_task_failed(self, event: Any) -> None:
        EVENTS.append(("on_task_failed", (event.task, event.error)))

    def on_run_end(self, run: dict[str, Any]) -> None:
        EVENTS.append(("on_run_end", dict(run)))


@gin.configurable
class Grumpy(Observer):
    """Raises from every hook."""

    def on_run_start(self, run: dict[str, Any]) -> None:
        raise RuntimeError("grumpy start")

    def on_task_start(self, event: Any) -> None:
        raise RuntimeError("grumpy task")

    def on_task_end(self, event: Any) -> None:
        raise RuntimeError("grumpy end")

    def on_run_end(self, run: dict[str, Any]) -> None:
        raise RuntimeError("grumpy run end")


@task(reads=("numbers",))
def side_effect(state: Any) -> dict[str, Any]:
    """Returns nothing: it is there for what it does (as seeding ``random`` would be)."""
    _count("side_effect")
    return {}
