"""Executors: the places a planned step runs, behind one small interface.

``Here`` runs a step in the run's own process (and reads cached steps, and waits for rank
0's results). ``Processes`` (``ginpipe/core/processes.py``) forks a process per step that
declares CPU or GPU work (``--jobs N``), within the machine's CPUs and GPUs. ``Jobs``
(``ginpipe/core/jobs.py``) submits a step as a submitit job; what the job does in its own
process is ``ginpipe/core/job_main.py``. Each drives the pipeline's public step interface
(``ginpipe/core/pipeline.py``: gather, call, store, adopt), and ``ginpipe/core/schedule.py``
runs every plan through them. A new way to run a task is one more executor beside these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ginpipe.base.errors import GinpipeError, TaskFailed
from ginpipe.core.pipeline import Pipeline
from ginpipe.core.plan import PlannedStep

# How often jobs are polled, and the longest a wait blocks while several executors have work out.
POLL_S = 0.2


@dataclass
class Budget:
    """What is free: task slots (``--jobs``), CPUs and GPU devices."""

    slots: int
    cpus: float
    gpus: list[int] = field(default_factory=list)

    def fits(self, cpus: float, gpus: int) -> bool:
        return self.slots > 0 and cpus <= self.cpus and gpus <= len(self.gpus)


@dataclass(frozen=True)
class Outcome:
    """A step an executor has finished with: None, or the error that fails the run."""

    step: PlannedStep
    error: BaseException | None = None


class Executor(Protocol):
    """A place steps run. ``start`` may finish the step at once (``Here``); ``wait`` hands
    back those that have ended, waiting at most ``timeout`` seconds (None: until one has)."""

    def fits(self, step: PlannedStep) -> bool: ...

    def start(self, step: PlannedStep) -> None: ...

    def busy(self) -> bool: ...

    def wait(self, timeout: float | None) -> list[Outcome]: ...

    def stop(self) -> None: ...


class Here:
    """In the run's own process, one step at a time, while a ``--jobs`` slot is free: the
    step is done when ``start`` returns. A sequential run is this executor alone."""

    def __init__(self, pipeline: Pipeline, budget: Budget) -> None:
        self.pipeline = pipeline
        self.budget = budget
        self.ended: list[Outcome] = []

    def fits(self, step: PlannedStep) -> bool:
        return self.budget.slots > 0

    def start(self, step: PlannedStep) -> None:
        try:
            self.pipeline.run_here(step)
        except (TaskFailed, GinpipeError) as error:  # let steps running elsewhere finish
            self.ended.append(Outcome(step, error))
            return
        self.ended.append(Outcome(step))

    def busy(self) -> bool:
        return bool(self.ended)

    def wait(self, timeout: float | None) -> list[Outcome]:
        ended, self.ended = self.ended, []
        return ended

    def stop(self) -> None:
        return None
