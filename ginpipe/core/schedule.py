"""The one scheduling loop: every plan runs through it, on its executors.

A step starts once every step it reads from has finished (``ginpipe/core/graph.py``); a
step that writes nothing (seeding, a side effect) keeps its place in the list: it waits for
the steps before it and the steps after it wait for it. Each step goes to the executor of
its place (``ginpipe/core/placement.py``): jobs and forked processes start as soon as they
are ready and fit, then at most one step runs here before the loop looks again. A
sequential run is the same loop with one slot here and nothing else, so it runs the steps
in the plan's order.

A failing step lets the ones already running elsewhere finish (their results are cached),
starts no other, and fails the run; an interrupt stops the processes and cancels the jobs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ginpipe.base.errors import GinpipeError, TaskFailed
from ginpipe.core.executors import POLL_S, Budget, Executor, Here, Outcome
from ginpipe.core.graph import dependencies
from ginpipe.core.pipeline import Pipeline
from ginpipe.core.placement import check_fits
from ginpipe.core.plan import Place, PlannedStep
from ginpipe.core.state import State


def executors_for(pipeline: Pipeline, jobs: int = 1) -> dict[Place, Executor]:
    """The executors a plan needs: here always, forked processes under ``--jobs N``, a job
    scheduler when a step is sent to one. Imported only when used (submitit is optional)."""
    places = {step.place for step in pipeline.steps}
    devices = check_fits(pipeline.steps, jobs) if Place.PROCESS in places else []
    budget = Budget(jobs, float(os.cpu_count() or 1), devices)
    found: dict[Place, Executor] = {Place.HERE: Here(pipeline, budget)}
    if Place.PROCESS in places:
        from ginpipe.core.processes import Processes

        found[Place.PROCESS] = Processes(pipeline, budget)
    if Place.JOB in places:
        from ginpipe.core.jobs import Jobs

        found[Place.JOB] = Jobs(pipeline)
    return found


def execute(pipeline: Pipeline, jobs: int = 1) -> State:
    """Run the plan, up to ``jobs`` steps at once where their places allow."""
    return run_plan(pipeline, executors_for(pipeline, jobs))


def run_plan(pipeline: Pipeline, executors: Mapping[Place, Executor]) -> State:
    """Start each step when what it reads is done; collect what ends; the first failure
    stops new starts and is raised once nothing runs."""
    needs = dependencies(pipeline.steps)
    here = executors[Place.HERE]
    pending = list(pipeline.steps)
    done: set[int] = set()
    failure: BaseException | None = None
    try:
        while pending or any(e.busy() for e in executors.values()):
            if failure is None:
                ready = [s for s in pending if needs[s.index] <= done]
                failure = _start_elsewhere(ready, pending, executors)
                step = next((s for s in ready if s in pending and s.place == Place.HERE), None)
                if failure is None and step is not None and here.fits(step):
                    pending.remove(step)
                    here.start(step)
            ended = _wait(executors)
            for outcome in ended:
                if outcome.error is None:
                    done.add(outcome.step.index)
                elif failure is None:
                    failure = outcome.error
            if not ended and not any(e.busy() for e in executors.values()):
                if failure is not None:
                    break
                if pending:  # unreachable: the graph is acyclic and every step is planned
                    raise RuntimeError(f"no task can start: {[s.name for s in pending]}")
    finally:
        for executor in executors.values():
            executor.stop()
    if failure is not None:
        raise failure
    return pipeline.state


def _start_elsewhere(
    ready: list[PlannedStep], pending: list[PlannedStep], executors: Mapping[Place, Executor]
) -> BaseException | None:
    """Start every ready step placed away from here that fits; a failure to start one."""
    for step in ready:
        if step.place == Place.HERE:
            continue
        executor = executors[step.place]
        if not executor.fits(step):
            continue
        pending.remove(step)
        try:
            executor.start(step)
        except (TaskFailed, GinpipeError) as error:  # a job not submitted, an input not made
            return error
    return None


def _wait(executors: Mapping[Place, Executor]) -> list[Outcome]:
    """What has ended: a step done here at once; else wait on the others, blocking until
    one ends when only one executor has work out, polling when several have."""
    busy = [e for e in executors.values() if e.busy()]
    timeout = None if len(busy) == 1 else POLL_S
    ended: list[Outcome] = []
    for executor in busy:
        ended += executor.wait(0 if ended else timeout)
    return ended
