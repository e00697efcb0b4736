"""A sweep worker: one process that runs trials, one after another, until the budget is spent.

Each trial is an ordinary run (``ginpipe.api.run``) in ``SWEEP/trial-NNNN``, so one process
start (interpreter, torch, Lightning, gin registrations) serves many trials, and all trials
share ``ROOT/.cache``. A trial left RUNNING by a dead worker is resumed in its own directory
(``ginpipe.api.resume``) before any new trial starts. ``python -m ginpipe.sweep.worker DIR``
is what ``--jobs N`` and the SLURM array start.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from loguru import logger
from optuna.trial import TrialState

from ginpipe.base.atomic import atomic_write_json
from ginpipe.base.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TASK_FAILED,
    ConfigError,
    GinpipeError,
    Interrupted,
    PathError,
    TaskFailed,
)
from ginpipe.base.suggest import did_you_mean
from ginpipe.runs import startup
from ginpipe.runs.rundir import RUN_JSON, load_run_json
from ginpipe.sweep import definition
from ginpipe.sweep.definition import Sweep, trial_name
from ginpipe.sweep.pruning import TrialReport, is_pruned
from ginpipe.sweep.results import write_results
from ginpipe.sweep.space import value_text
from ginpipe.sweep.study import Claim, ask_lock, open_study, sampler, started
from ginpipe.sweep.trial import command as trial_command
from ginpipe.sweep.trial import start_or_resume

THREADS_ENV = "GINPIPE_SWEEP_THREADS"


@dataclass
class Job:
    """A trial this worker holds the claim of: its number, Optuna trial and values."""

    number: int
    trial: optuna.Trial
    values: dict[str, str]
    claim: Claim
    resumed: bool


class FailureLimit(Exception):
    """More trials failed than the sweep allows; it stops (exit 1)."""


def next_job(sweep: Sweep, study: optuna.Study) -> Job | None:
    """A trial left by a dead worker, else a new one; None when the budget is spent.

    Under the ask lock, so that two workers never take the same trial or overshoot.
    """
    with ask_lock(sweep.dir):
        trials = study.get_trials(deepcopy=False)
        for frozen in trials:
            if frozen.state != TrialState.RUNNING:
                continue
            claim = Claim(sweep.dir, frozen.number)
            if claim.try_acquire():
                trial = optuna.Trial(study, frozen._trial_id)
                return Job(frozen.number, trial, _values(sweep, trial), claim, resumed=True)
        failed = sum(t.state == TrialState.FAIL for t in trials)
        if failed > sweep.max_failure_rate * sweep.trials:
            raise FailureLimit(
                f"{failed} of {sweep.trials} trials failed (more than --max-failure-rate "
                f"{sweep.max_failure_rate:g}); stopping. The failures are in their run.json"
            )
        if len(started(study)) >= sweep.trials:
            return None
        study.sampler = sampler(sweep, trial_number=len(trials))  # numbered in order
        trial = study.ask()
        claim = Claim(sweep.dir, trial.number)
        claim.try_acquire()  # a number never used before: free
        return Job(trial.number, trial, _values(sweep, trial), claim, resumed=False)


def mark_pruned(path: Path) -> None:
    """The trial's own ``run.json`` says ``pruned`` rather than ``failed``: the run stopped
    as the sweep meant it to (``ginpipe runs`` and ``diff`` read it too)."""
    record = load_run_json(path)
    if record.get("status") == "failed":
        record["status"] = "pruned"
        atomic_write_json(path / RUN_JSON, record)


def _values(sweep: Sweep, trial: optuna.Trial) -> dict[str, str]:
    """The trial's value of every swept key (already-suggested ones come back unchanged)."""
    return {p.key: value_text(p.suggest(trial)) for p in sweep.space.params}


def run_trial(sweep: Sweep, study: optuna.Study, job: Job) -> int | None:
    """Run (or resume) one trial and tell the study; an exit code when the sweep must stop."""
    path = sweep.trial_dir(job.number)
    verb = "resuming" if job.resumed else "starting"
    shown = " ".join(f"{k}={v}" for k, v in job.values.items())
    logger.info(f"sweep: {verb} {trial_name(job.number)}: {shown}")
    if sweep.own_process:
        return run_trial_process(sweep, study, job)
    try:
        run = start_or_resume(
            sweep, job.number, job.values, TrialReport(job.trial, sweep.direction)
        )
    except (TaskFailed, GinpipeError) as error:
        if is_pruned(error):
            tell_pruned(study, job.number, path)
            return None
        if isinstance(error, PathError):
            raise  # a full disk or a read-only folder fails every trial alike: stop
        study.tell(job.number, state=TrialState.FAIL)
        logger.warning(f"sweep: {trial_name(job.number)} failed: {error}")
        return None
    if run.status == "interrupted":
        code = run.record.get("exit_code")
        return int(code) if isinstance(code, int) else EXIT_INTERRUPTED
    value = objective(run.dir, run.metrics, sweep.metric, sweep.direction)
    if value is None:
        refuse_unknown_metric(study, job.number, run.dir, run.metrics, sweep.metric)
    tell_result(sweep, study, job.number, value, f"reported no {sweep.metric}")
    return None


def run_trial_process(sweep: Sweep, study: optuna.Study, job: Job) -> int | None:
    """A trial on several devices, as its own process (``ginpipe.sweep.trial``), which
    Lightning's DDP launcher can start again for the other ranks; the outcome is read
    from the trial's ``run.json``."""
    process = subprocess.Popen(trial_command(sweep, job.number, job.values))
    try:
        code = process.wait()
    except BaseException:
        # Ctrl-C and SIGTERM reach the trial's process group too: let it checkpoint first.
        process.wait()
        raise
    path = sweep.trial_dir(job.number)
    record = load_run_json(path)
    status = record.get("status")
    if status == "interrupted":
        return code or EXIT_INTERRUPTED
    error = str((record.get("error") or {}).get("message", ""))
    if status == "failed" and "TrialPruned" in error:
        tell_pruned(study, job.number, path)
        return None
    completed = status == "completed"
    metrics = record.get("metrics") or {}
    value = objective(path, metrics, sweep.metric, sweep.direction) if completed else None
    if completed and value is None:
        refuse_unknown_metric(study, job.number, path, metrics, sweep.metric)
    tell_result(sweep, study, job.number, value, f"failed (exit {code}): {error}")
    return None


def tell_pruned(study: optuna.Study, number: int, path: Path) -> None:
    """Record a pruned trial as pruned, in the study and in its own run.json."""
    mark_pruned(path)
    study.tell(number, state=TrialState.PRUNED)
    logger.info(f"sweep: {trial_name(number)} pruned")


def tell_result(
    sweep: Sweep, study: optuna.Study, number: int, value: float | None, failure: str
) -> None:
    """Tell the study a finished trial's value, or that it failed (saying ``failure``)."""
    if value is None:
        study.tell(number, state=TrialState.FAIL)
        logger.warning(f"sweep: {trial_name(number)} {failure}")
        return
    study.tell(number, value)
    logger.info(f"sweep: {trial_name(number)} done: {sweep.metric}={value:.4f}")


def objective(run_dir: Path, metrics: dict[str, Any], metric: str, direction: str) -> float | None:
    """The trial's value: a final metric of the run, else the best epoch of that column in
    ``logs/metrics.csv`` (``--metric val_acc`` selects on validation, not on the test split)."""
    value = metrics.get(metric)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return best_logged(run_dir, metric, direction)


def refuse_unknown_metric(
    study: optuna.Study, number: int, run_dir: Path, metrics: dict[str, Any], metric: str
) -> None:
    """A completed trial that has no ``metric`` anywhere: every trial would be the same, so
    the sweep stops at the first, naming what the run does report."""
    logged = _logged_columns(run_dir)
    known = sorted({f"{n.split('/')[0]}/*" if "/" in n else n for n in {*metrics, *logged}})
    if metric in logged:
        return  # logged, but never a finite number: that trial failed, not the sweep
    study.tell(number, state=TrialState.FAIL)
    raise ConfigError(
        f"--metric {metric}: {trial_name(number)} completed without it{did_you_mean(metric, known)}"
        f"; it reports {', '.join(known) or 'nothing'}"
    )


def _logged_columns(run_dir: Path) -> list[str]:
    path = run_dir / "logs" / "metrics.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        header = next(csv.reader(f), [])
    return [c for c in header if c not in ("epoch", "step")]


def best_logged(run_dir: Path, metric: str, direction: str) -> float | None:
    path = run_dir / "logs" / "metrics.csv"
    if not path.is_file():
        return None
    values = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                values.append(float(row.get(metric) or "nan"))
            except ValueError:
                continue
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return None
    return max(values) if direction == "maximize" else min(values)


@contextmanager
def _termination_interrupts() -> Iterator[None]:
    """Between trials SIGTERM stops the worker like Ctrl-C does (runs handle their own)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def set_threads() -> None:
    """Torch threads of this worker: its share of the cores (``--jobs`` splits them).

    A worker imports torch only when a trial needs it, and torch then takes its thread count
    from ``OMP_NUM_THREADS``, which the launcher set; a torch already imported is told here.
    """
    threads = os.environ.get(THREADS_ENV)
    if threads and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))


def run_worker(sweep_dir: Path, max_trials: int | None = None) -> int:
    """Run trials until the budget is spent (or ``max_trials`` ran); the exit code."""
    sweep = definition.load(sweep_dir)
    set_threads()
    study = open_study(sweep)
    done = 0
    try:
        with _termination_interrupts():
            while max_trials is None or done < max_trials:
                job = next_job(sweep, study)
                if job is None:
                    break
                try:
                    code = run_trial(sweep, study, job)
                finally:
                    job.claim.release()
                    write_results(sweep, study)  # also when the sweep stops at this trial
                done += 1
                if code is not None:
                    logger.warning(
                        f"sweep stopped; continue with: ginpipe sweep --resume {sweep.dir}"
                    )
                    return code
    except FailureLimit as e:
        logger.error(f"sweep: {e}")
        return EXIT_TASK_FAILED
    except (Interrupted, KeyboardInterrupt) as e:
        logger.warning(f"sweep stopped; continue with: ginpipe sweep --resume {sweep.dir}")
        return e.exit_code if isinstance(e, Interrupted) else EXIT_INTERRUPTED
    return EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """``python -m ginpipe.sweep.worker SWEEP_DIR``: one local worker of ``--jobs N``."""
    args = sys.argv[1:] if argv is None else argv
    code = startup.process_main(
        lambda: run_worker(Path(args[0])), console_rank=0, reported=(GinpipeError,)
    )
    sys.exit(code)


if __name__ == "__main__":
    main()
