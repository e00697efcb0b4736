"""The pipeline's graph for people: ``ginpipe graph`` and the graph every run directory gets.

A run's graph (``pipeline.json``, and ``pipeline.mmd``, which GitHub and most editors render)
marks each task with what happened to it in that run -- ran, cached, failed, skipped -- and
the seconds it ran; ``ginpipe graph RUN_DIR -o run.png`` draws it from ``pipeline.json``.
The picture is not drawn at the end of every run: matplotlib and networkx would add about a
third of a second to each (benchmarks/RESULTS.md, "Pipelines as graphs").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ginpipe.base.atomic import atomic_write_json, atomic_write_text
from ginpipe.base.errors import ConfigError
from ginpipe.core import graph
from ginpipe.core.events import Observer, TaskEvent, TaskState
from ginpipe.core.plan import JobPlacement, PlannedStep
from ginpipe.core.steps import Step
from ginpipe.plots.graph import Box, Picture, mermaid
from ginpipe.runs import rundir

GRAPH_JSON = "pipeline.json"
GRAPH_MERMAID = "pipeline.mmd"

# An event's status -> the word the picture uses.
SHOWN = {
    TaskState.COMPLETED: "ran",
    TaskState.CACHED: "cached",
    TaskState.FAILED: "failed",
    TaskState.SKIPPED: "skipped",
}


def boxes_of(steps: Sequence[Step] | Sequence[PlannedStep]) -> list[Box]:
    """One box per planned step, in the order they run."""
    return [Box(graph.label(s), s.reads, s.writes) for s in steps]


def plan_text(steps: Sequence[PlannedStep]) -> list[str]:
    """The plan as lines: each task, what it waits for and the keys it reads and writes."""
    writer = {key: graph.label(s) for s in steps for key in s.writes}
    lines = []
    for step in steps:
        after = sorted({writer[k] for k in step.reads if k in writer})
        lines.append(
            f"  {step.index + 1}. {graph.label(step):<20} {step.action:<7} ({step.reason})  "
            f"after: {', '.join(after) or '-'}  reads: {', '.join(step.reads) or '-'}  "
            f"writes: {', '.join(step.writes) or '-'}{_where(step.job)}"
        )
    return lines


def _where(placement: JobPlacement | None) -> str:
    """Where a task sent to a job scheduler runs; nothing for one run here."""
    if placement is None:
        return ""
    array = f", an array of {placement.array}" if placement.array else ""
    return f"  runs on: {placement.executor}{array}"


class GraphRecorder(Observer):
    """Collects each task's outcome; at the end of the run writes the run's graph."""

    def __init__(self, run: rundir.RunDir, steps: Sequence[PlannedStep]) -> None:
        self.run = run
        self.boxes = boxes_of(steps)
        self.by_index = {step.index: box for step, box in zip(steps, self.boxes, strict=True)}

    def on_task_end(self, event: TaskEvent) -> None:
        self._record(event)

    def on_task_failed(self, event: TaskEvent) -> None:
        self._record(event)

    def _record(self, event: TaskEvent) -> None:
        box = self.by_index.get(event.index)
        if box is None:
            return
        box.status = SHOWN.get(event.status, event.status)
        box.seconds = (box.seconds or 0.0) + event.seconds

    def on_run_end(self, run: dict[str, Any]) -> None:
        for box in self.boxes:
            box.status = box.status or "skipped"
        picture = Picture.of(self.boxes)
        atomic_write_json(self.run.file(GRAPH_JSON), {"tasks": [_as_dict(b) for b in self.boxes]})
        atomic_write_text(self.run.file(GRAPH_MERMAID), mermaid(picture))


def _as_dict(box: Box) -> dict[str, Any]:
    return {
        "label": box.label,
        "reads": list(box.reads),
        "writes": list(box.writes),
        "status": box.status,
        "seconds": None if box.seconds is None else round(box.seconds, 4),
    }


def run_picture(run_dir: Path) -> Picture:
    """A run's graph from its ``pipeline.json``."""
    path = run_dir / GRAPH_JSON
    if not path.is_file():
        raise ConfigError(
            f"{run_dir}: no {GRAPH_JSON} (runs before graphs were recorded have none)"
        )
    try:
        tasks = json.loads(path.read_text())["tasks"]
        boxes = [
            Box(t["label"], tuple(t["reads"]), tuple(t["writes"]), t["status"], t["seconds"])
            for t in tasks
        ]
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: damaged ({type(e).__name__}: {e})") from e
    return Picture.of(boxes)
