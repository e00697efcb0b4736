"""Tasks run as submitit jobs: ``@task(executor="slurm")`` or ``executors.tasks`` in a config.

The job works in the run's own directory on the shared file system: it composes the run's
``config.gin``, plans it against the run root's cache, checks that its task has the cache
key the main process planned (else the config changed under it), loads the task's inputs
from the cache (what was never stored is recomputed there), runs the task and stores its
outputs in the artifact store, as a forked ``--jobs`` process does. Only names travel back
through submitit; submitit's own files (its pickled call, logs) stay in ``RUN/slurm/``.

A task over shards (``@task(array=True)``, ``executors.array``) becomes a job array: each
element computes its share of the units of work, which the task caches itself
(``extract_features``: its shards), then the task runs once more in the main process and
finds them all done. ``ginpipe/core/parallel.py`` submits, waits and records; submitit is
imported only here, only when a job is sent.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from ginpipe.base.errors import ConfigError, GinpipeError, TaskFailed
from ginpipe.base.install import install_line
from ginpipe.base.suggest import did_you_mean
from ginpipe.config import ginapi
from ginpipe.config.executors import (
    ExecutorSettings,
    check_executor,
    executor_settings,
    submitit_parameters,
)
from ginpipe.core.events import Events, TaskEvent, TaskState
from ginpipe.core.graph import dependencies
from ginpipe.core.pipeline import Pipeline, Step, _describe
from ginpipe.core.shares import Share, sharing
from ginpipe.core.state import RunContext
from ginpipe.core.store import CACHE_DIR, ArtifactStore

JOBS_DIR = "slurm"  # RUN/slurm/: submitit's files (<job id>_*: its pickles, logs)
CLUSTERS = {"slurm": "slurm", "local": "local"}  # executor -> submitit cluster
DEFAULT_TIMEOUT_MIN = 60
POLL_S = 0.2


@dataclass(frozen=True)
class Placement:
    """Where a task runs: its executor, and the size of its array (0: one plain job)."""

    executor: str
    array: int = 0


@dataclass
class Submitted:
    """A task's job(s) in flight."""

    step: Step
    placement: Placement
    jobs: list[Any]
    event: TaskEvent
    started: float
    ids: list[str] = field(default_factory=list)


def settings() -> ExecutorSettings:
    """The bound ``executors`` settings (an error inside gin's call, unwrapped)."""
    try:
        return executor_settings()
    except Exception as raised:
        raise ginapi.unwrap_call_error(raised) from None


def placements(steps: Sequence[Step]) -> dict[int, Placement]:
    """Step index -> where it runs, for the steps that leave this process; everything a
    user can get wrong refused before work, in one line naming the task."""
    bound = settings()
    names = sorted({s.name for s in steps} | {s.spec.name for s in steps})
    for option, table in (("tasks", bound.tasks), ("array", bound.array)):
        for name in table:
            if name not in names:
                raise ConfigError(
                    f"executors.{option} names {name!r}, which is no task of run.tasks"
                    f"{did_you_mean(name, names)}",
                    binding=f"ginpipe.executors.{option}",
                )
    found: dict[int, Placement] = {}
    for step in steps:
        executor = _named(bound.tasks, step) or step.spec.executor
        count = _named(bound.array, step)
        if executor:
            check_executor(executor, f"task '{step.name}'")
        if count and not step.spec.array:
            raise ConfigError(
                f"executors.array[{step.name!r}]: task '{step.name}' cannot split its work "
                f"over an array (it does not declare @task(array=True))",
                binding="ginpipe.executors.array",
            )
        if count and not executor:
            raise ConfigError(
                f"executors.array[{step.name!r}] needs an executor for the task: "
                f"executors.tasks = {{{step.name!r}: 'slurm'}}",
                binding="ginpipe.executors.array",
            )
        if executor and not step.spec.cache and not step.spec.array:
            raise ConfigError(
                f"task '{step.name}' cannot run as a job: it is not cached (cache=False), so "
                f"what it computes could not come back from the job"
            )
        if executor:
            found[step.index] = Placement(executor, int(count or 1) if step.spec.array else 0)
    sent = next((s.name for s in steps if s.index in found), "")
    if sent and importlib.util.find_spec("submitit") is None:
        raise ConfigError(
            f"task '{sent}' is sent to a job scheduler, which needs submitit: "
            f"{install_line('sweep')}"
        )
    if any(p.executor == "slurm" for p in found.values()) and shutil.which("sbatch") is None:
        task = next(s.name for s in steps if found.get(s.index, Placement("")).executor == "slurm")
        raise ConfigError(
            f"task '{task}' is sent to slurm, which submits with sbatch, not on this machine's "
            f"PATH: run from a SLURM login node, or use executors.tasks = {{{task!r}: 'local'}}"
        )
    return found


def _named(table: dict[str, Any], step: Step) -> Any:
    """A setting by the task's full name (``resnet/fit``), else by its own (``fit``)."""
    return table.get(step.name, table.get(step.spec.name))


def submit(pipeline: Pipeline, step: Step, placement: Placement) -> Submitted:
    """Send ``step`` as one job, or as an array of ``placement.array`` jobs."""
    pipeline._materialize_inputs(step)  # a value to recompute is recomputed here, once
    event = pipeline.start_event(step)
    run = pipeline.run
    job = StepJob(
        run_dir=str(Path(run.dir).resolve()),
        root=str(Path(run.cache_dir).parent),
        name=run.name,
        project=run.project,
        cwd=os.getcwd(),
        step=step.name,
        key=step.key,
    )
    try:
        jobs = _send(job, Path(run.dir).resolve() / JOBS_DIR, step, placement)
    except Exception as error:  # no srun, sbatch refused it, the scheduler unreachable, ...
        event.status, event.error = TaskState.FAILED, f"could not submit: {_describe(error)}"
        pipeline.events.emit("on_task_failed", event)
        raise TaskFailed(step.name, JobError(event.error)) from error
    ids = [str(j.job_id) for j in jobs]
    event.detail = {"executor": placement.executor, "jobs": ids}
    what = f"an array of {len(jobs)} jobs" if placement.array else "a job"
    logger.info(
        f"[{step.index + 1}/{len(pipeline.steps)}] {step.name}: sent to {placement.executor} "
        f"as {what} ({', '.join(ids)})"
    )
    return Submitted(step, placement, jobs, event, time.perf_counter(), ids)


def _send(job: StepJob, folder: Path, step: Step, placement: Placement) -> list[Any]:
    """The submitit jobs of one task, submitted."""
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster=CLUSTERS[placement.executor])
    options = dict(settings().slurm)
    if placement.executor == "local":
        options.pop("gpus_per_node", None)  # the local executor refuses GPUs it cannot see
    executor.update_parameters(
        name=f"ginpipe-{step.spec.name}",
        timeout_min=DEFAULT_TIMEOUT_MIN,
        **submitit_parameters(options),
    )
    if placement.array:
        count = placement.array
        return list(executor.map_array(job, list(range(count)), [count] * count))
    return [executor.submit(job, 0, 0)]


def finished(submitted: Iterable[Submitted]) -> list[Submitted]:
    """Those whose every job has ended."""
    return [s for s in submitted if all(job.done() for job in s.jobs)]


def collect(pipeline: Pipeline, submitted: Submitted) -> BaseException | None:
    """Take a finished task's results into the state and the records; its error, if any."""
    step, event = submitted.step, submitted.event
    outcomes = [_outcome(job) for job in submitted.jobs]
    failed = next((o for o in outcomes if o["status"] != "ok"), None)
    if failed is None and submitted.placement.array:
        failed = _gather(pipeline, step)
    event.seconds = time.perf_counter() - submitted.started
    if failed is not None:
        event.status, event.error = TaskState.FAILED, failed["error"]
        pipeline.events.emit("on_task_failed", event)
        if failed.get("code", 1) != 1:
            error = GinpipeError(f"task '{step.name}': {failed['error']}")
            error.exit_code = int(failed["code"])
            return error
        return TaskFailed(step.name, JobError(failed["error"]))
    if not submitted.placement.array:
        (outcome,) = outcomes
        stored = set(outcome["stored"])
        for name in outcome["stored"]:
            pipeline.expose_stored_output(step, name)
        # What could not be stored is recomputed here when a later task reads it.
        step.transient = tuple(name for name in step.spec.writes if name not in stored)
        for name in step.transient:
            pipeline.expose_stored_output(step, name)
        if outcome["unused"]:
            pipeline.state.unused.setdefault(step.spec.name, set()).update(outcome["unused"])
    event.status = TaskState.COMPLETED
    pipeline.end_event(step, event)
    return None


class JobError(Exception):
    """A task's error as its job described it."""


def _outcome(job: Any) -> dict[str, Any]:
    """What a finished job answered; a job that died says where its log is."""
    log = job.paths.stderr
    error = job.exception()
    if error is None:
        answer = job.result()
        if answer.get("status") == "ok":
            return dict(answer)
        return {**answer, "error": f"{answer['error']} (job {job.job_id}, log: {log})"}
    last = [line for line in str(error).splitlines() if line.strip(" -")]
    reason = last[-1].strip() if last else type(error).__name__
    message = f"job {job.job_id} ended without a result: {reason} (log: {log})"
    return {"status": "error", "error": message, "code": 1}


def _gather(pipeline: Pipeline, step: Step) -> dict[str, Any] | None:
    """After an array: the task once more here, which finds its work done and assembles
    its outputs; its error, if any."""
    logger.info(f"{step.name}: the array is done; gathering its outputs here")
    try:
        outputs = pipeline.call(step)
    except Exception as raised:
        error = ginapi.unwrap_call_error(raised)
        code = error.exit_code if isinstance(error, GinpipeError) else 1
        return {"status": "error", "error": _describe(error), "code": code}
    for name, value in outputs.items():
        pipeline.state.set(step.state_key(name), value)
    pipeline.save(step, outputs)
    return None


def cancel(submitted: Iterable[Submitted]) -> None:
    """Cancel jobs still running (an interrupt of the run)."""
    for item in submitted:
        for job in item.jobs:
            if not job.done():
                try:
                    job.cancel(check=False)
                except Exception as error:  # a scheduler that cannot be reached
                    logger.warning(f"{item.step.name}: could not cancel job {job.job_id}: {error}")


@dataclass(frozen=True)
class StepJob:
    """What submitit runs: one task of a run, in the run's directory (plain strings only)."""

    run_dir: str
    root: str
    name: str
    project: str
    cwd: str
    step: str
    key: str

    def __call__(self, index: int, count: int) -> dict[str, Any]:
        try:
            return self._run(index, count)
        except BaseException as raised:
            error = ginapi.unwrap_call_error(raised)
            traceback.print_exc()
            code = error.exit_code if isinstance(error, GinpipeError) else 1
            return {"status": "error", "error": _describe(error), "code": code}

    def _run(self, index: int, count: int) -> dict[str, Any]:
        from ginpipe.config.compose import bind_run_macros, compose_text
        from ginpipe.config.settings import run_settings
        from ginpipe.core.pipeline import plan, task_steps

        if Path(self.cwd).is_dir():  # the project's own modules, as the run imported them
            os.chdir(self.cwd)
            if self.cwd not in sys.path:
                sys.path.insert(0, self.cwd)
        config = Path(self.run_dir) / "config.gin"
        compose_text(config.read_text(), str(config))
        bind_run_macros(Path(self.run_dir))
        store = ArtifactStore(Path(self.root) / CACHE_DIR)
        steps = plan(task_steps(run_settings().tasks), store)
        step = next((s for s in steps if s.name == self.step), None)
        if step is None or step.key != self.key:
            raise GinpipeError(
                f"{config} does not plan task '{self.step}' with the cache key the run did: "
                f"the config changed since the job was submitted (resume the run to submit "
                f"it again), or the run took inputs --inputs-from another run, which a job "
                f"cannot follow"
            )
        context = RunContext(Path(self.run_dir), self.name, self.project, root=Path(self.root))
        pipeline = Pipeline(steps, store=store, run=context, events=Events([]))
        for earlier in _upstream(steps, step, dependencies(steps)):
            if earlier.action == TaskState.CACHED:
                pipeline._expose_stored(earlier)
            elif earlier.action == TaskState.RUN:
                pipeline.execute_step(earlier)  # never stored (seeding, cache=False): again
        pipeline._materialize_inputs(step)
        with sharing(Share(index, count)) if count else nullcontext():
            part = f" (share {index + 1} of {count})" if count else ""
            logger.info(f"{step.name}: running{part}")
            outputs = pipeline.call(step)
        unused = sorted(pipeline.state.unused.get(step.spec.name, set()))
        if count:  # an array element: its work is cached by the task; the run gathers it
            return {"status": "ok", "stored": [], "unused": unused}
        stored = pipeline.save(step, outputs)
        return {"status": "ok", "stored": list(stored), "unused": unused}


def _upstream(steps: Sequence[Step], step: Step, needs: dict[int, set[int]]) -> list[Step]:
    """The steps ``step`` waits for, directly or not, in the order they run."""
    wanted: set[int] = set()
    todo = list(needs[step.index])
    while todo:
        index = todo.pop()
        if index not in wanted:
            wanted.add(index)
            todo += needs[index]
    return [s for s in steps if s.index in wanted]
