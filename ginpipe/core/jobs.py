"""The ``Jobs`` executor: a step as a submitit job (``executors.tasks``), or a job array.

A step is submitted once its inputs are done, takes no local slot, and is polled while the
rest of the graph goes on; the steps that read its outputs wait for it. The job works in
the run's own directory on the shared file system (``ginpipe/core/job_main.py``) and stores
its outputs in the artifact store; only names travel back through submitit, whose own files
(its pickled call, logs) stay in ``RUN/slurm/``.

A task over shards (``@task(array=True)``, ``executors.array``) becomes a job array: each
element computes its share of the units of work, which the task caches itself
(``extract_features``: its shards), then the task runs once more here and finds them all
done. submitit is imported only here and in the job, only when a job is sent.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from ginpipe.base.errors import GinpipeError, TaskFailed
from ginpipe.config import ginapi
from ginpipe.config.executors import submitit_parameters
from ginpipe.core.events import TaskEvent, TaskState
from ginpipe.core.executors import POLL_S, Outcome
from ginpipe.core.job_main import StepJob
from ginpipe.core.pipeline import Pipeline, describe
from ginpipe.core.placement import settings
from ginpipe.core.plan import JobPlacement, PlannedStep

JOBS_DIR = "slurm"  # RUN/slurm/: submitit's files (<job id>_*: its pickles, logs)
CLUSTERS = {"slurm": "slurm", "local": "local"}  # executor -> submitit cluster
DEFAULT_TIMEOUT_MIN = 60


class JobError(Exception):
    """A task's error as its job described it."""


@dataclass
class Submitted:
    """A step's job(s) in flight."""

    step: PlannedStep
    placement: JobPlacement
    jobs: list[Any]
    event: TaskEvent
    started: float
    ids: list[str] = field(default_factory=list)


class Jobs:
    """Steps sent to a job scheduler through submitit, polled every ``POLL_S``."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.sent: dict[int, Submitted] = {}

    def fits(self, step: PlannedStep) -> bool:
        return True  # the scheduler queues what it cannot start

    def start(self, step: PlannedStep) -> None:
        """Send ``step`` as one job, or as an array of jobs."""
        assert step.job is not None
        pipeline, placement = self.pipeline, step.job
        pipeline.gather(step)  # a value to recompute is recomputed here, once
        event = pipeline.started(step)
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
        except Exception as error:  # no srun, sbatch refused it, the scheduler unreachable...
            pipeline.failed(step, event, f"could not submit: {describe(error)}")
            raise TaskFailed(step.name, JobError(event.error)) from error
        ids = [str(j.job_id) for j in jobs]
        event.detail = {"executor": placement.executor, "jobs": ids}
        what = f"an array of {len(jobs)} jobs" if placement.array else "a job"
        logger.info(
            f"{pipeline.position(step)} {step.name}: sent to {placement.executor} "
            f"as {what} ({', '.join(ids)})"
        )
        self.sent[step.index] = Submitted(step, placement, jobs, event, time.perf_counter(), ids)

    def busy(self) -> bool:
        return bool(self.sent)

    def wait(self, timeout: float | None) -> list[Outcome]:
        """Those whose every job has ended (after polling for up to ``timeout``, in steps
        of ``POLL_S``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ended = [s for s in self.sent.values() if all(job.done() for job in s.jobs)]
            if ended or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(POLL_S)
        outcomes = []
        for sent in ended:
            del self.sent[sent.step.index]
            outcomes.append(Outcome(sent.step, self._collect(sent)))
        return outcomes

    def _collect(self, submitted: Submitted) -> BaseException | None:
        """Take a finished step's results into the state and the records; its error."""
        pipeline, step, event = self.pipeline, submitted.step, submitted.event
        outcomes = [_outcome(job) for job in submitted.jobs]
        failed = next((o for o in outcomes if o["status"] != "ok"), None)
        if failed is None and submitted.placement.array:
            failed = _gather(pipeline, step)
        event.seconds = time.perf_counter() - submitted.started
        if failed is not None:
            pipeline.failed(step, event, failed["error"])
            if failed.get("code", 1) != 1:
                error = GinpipeError(f"task '{step.name}': {failed['error']}")
                error.exit_code = int(failed["code"])
                return error
            return TaskFailed(step.name, JobError(failed["error"]))
        if not submitted.placement.array:
            (outcome,) = outcomes
            # What could not be stored is recomputed here when a later task reads it.
            pipeline.adopt(step, outcome["stored"], {}, outcome["unused"])
        event.status = TaskState.COMPLETED
        pipeline.finished(step, event)
        return None

    def stop(self) -> None:
        """Cancel jobs still running (an interrupt of the run)."""
        for item in self.sent.values():
            for job in item.jobs:
                if not job.done():
                    try:
                        job.cancel(check=False)
                    except Exception as error:  # a scheduler that cannot be reached
                        logger.warning(
                            f"{item.step.name}: could not cancel job {job.job_id}: {error}"
                        )


def _send(job: StepJob, folder: Path, step: PlannedStep, placement: JobPlacement) -> list[Any]:
    """The submitit jobs of one step, submitted."""
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


def _gather(pipeline: Pipeline, step: PlannedStep) -> dict[str, Any] | None:
    """After an array: the task once more here, which finds its work done and assembles
    its outputs; its error, if any."""
    logger.info(f"{step.name}: the array is done; gathering its outputs here")
    try:
        outputs = pipeline.call(step)
    except Exception as raised:
        error = ginapi.unwrap_call_error(raised)
        code = error.exit_code if isinstance(error, GinpipeError) else 1
        return {"status": "error", "error": describe(error), "code": code}
    pipeline.keep(step, outputs)
    pipeline.store_outputs(step, outputs)
    return None
