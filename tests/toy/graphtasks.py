"""Tasks that make shapes the toy chain cannot: a cycle, a second writer, two branches."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from loguru import logger
from toytasks import _count

from ginpipe import task


@task(reads=("y",), writes=("x",))
def cycle_a(state: Any) -> dict[str, Any]:
    """Needs what ``cycle_b`` writes, which needs what this writes."""
    return {"x": state["y"]}


@task(reads=("x",), writes=("y",))
def cycle_b(state: Any) -> dict[str, Any]:
    """The other half of the cycle."""
    return {"y": state["x"]}


@task(writes=("numbers",))
def other_numbers(state: Any) -> dict[str, Any]:
    """A second writer of ``numbers``."""
    return {"numbers": [7]}


@task(reads=("numbers",), writes=("left",), resources={"cpus": 1})
def left(
    state: Any, *, seconds: float = 0.0, wait_for: str = "", patience: float = 30.0
) -> dict[str, Any]:
    """One branch: doubles the numbers; with ``wait_for``, only once that file exists
    (written by ``right`` when it starts: the two must run at the same time)."""
    _count("left")
    logger.info("doubling")
    time.sleep(seconds)
    deadline = time.monotonic() + patience
    while wait_for and not Path(wait_for).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{wait_for} never appeared: the branches did not overlap")
        time.sleep(0.02)
    return {"left": [2 * n for n in state["numbers"]]}


@task(reads=("numbers",), writes=("right",), resources={"cpus": 1})
def right(
    state: Any, *, seconds: float = 0.0, fail: bool = False, mark: str = ""
) -> dict[str, Any]:
    """The other branch: negates the numbers (or fails); ``mark`` is written first."""
    _count("right")
    if mark:
        Path(mark).write_text("started")
    time.sleep(seconds)
    if fail:
        raise RuntimeError("right branch failed")
    return {"right": [-n for n in state["numbers"]]}


@task(reads=("left", "right"), writes=("metrics",), cache=False)
def join(state: Any) -> dict[str, Any]:
    """Where the branches meet."""
    _count("join")
    return {"metrics": {"total": float(sum(state["left"]) + sum(state["right"]))}}


@task(reads=("*/metrics",), writes=("metrics",), cache=False)
def gather(state: Any) -> dict[str, Any]:
    """Every branch's total, named by branch."""
    return {"metrics": {f"{k.split('/')[0]}/total": state[k]["total"] for k in state}}


@task(reads=("numbers",), writes=("tripled",), executor="local")
def tripled(state: Any) -> dict[str, Any]:
    """Declares that it runs as a job (submitit's local executor)."""
    _count("tripled")
    return {"tripled": [3 * n for n in state["numbers"]]}
