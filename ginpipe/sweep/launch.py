"""Create a sweep (validated before any trial) and start its workers: in this process,
``--jobs N`` local processes, or a SLURM job array through submitit."""

from __future__ import annotations

import ast
import inspect
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gin
from loguru import logger

from ginpipe.base.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    ConfigError,
    GinpipeError,
)
from ginpipe.base.workdir import work_in
from ginpipe.config import ginapi
from ginpipe.config.bindings import bound_value
from ginpipe.runs.runner import RunRequest, default_project, prepare
from ginpipe.sweep import definition
from ginpipe.sweep.definition import Sweep
from ginpipe.sweep.pruning import CALLBACK_MOD
from ginpipe.sweep.results import draw_plots, write_results
from ginpipe.sweep.space import Space, SpaceError, build_space
from ginpipe.sweep.study import SAMPLERS, check_choices, open_study, parse_pruner, started
from ginpipe.sweep.worker import THREADS_ENV, run_worker

LAUNCHERS = ("local", "slurm")


def visible_gpus() -> list[str]:
    """The GPUs this machine offers workers (``CUDA_VISIBLE_DEVICES`` narrows them)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return []
    return [str(i) for i in range(torch.cuda.device_count())]


def check_values(space: Space) -> None:
    """Every grid and choice value is valid gin, checked before any trial (the first values
    are also composed for real; a later value's typo would otherwise fail only its trial)."""
    for param in space.params:
        for value in param.values:
            try:
                ginapi.check_syntax(f"{param.key} = {value}")
            except Exception as e:  # gin's parser raises several types; all mean syntax
                raise SpaceError(f"{param.origin}: cannot parse value {value!r}: {e}") from None


def validate(space: Space, prune: bool) -> tuple[tuple[str, str], list[str], bool]:
    """Compose the configs as a trial would, with every --mod check (did-you-mean): with the
    first value of every swept key, then with each other listed value in its place (a
    distribution's range is checked by its low end). The default objective (metric,
    direction), the task names and whether a trial trains on several devices."""
    extra = [CALLBACK_MOD] if prune else []
    first = {p.key: p.first() for p in space.params}
    try:
        prepared = prepare(RunRequest(files=space.configs, mods=[*space.mods(first), *extra]))
        for param in space.params:
            for value in param.values[1:]:
                mods = space.mods({**first, param.key: value})
                prepare(RunRequest(files=space.configs, mods=[*mods, *extra]))
        several = several_devices(prepared.composition.bindings)
        objective = default_objective(prepared.steps, str(prepared.settings.main_metric))
        return objective, [s.spec.name for s in prepared.steps], several
    finally:
        gin.clear_config()


def default_objective(steps: Sequence[Any], main_metric: str) -> tuple[str, str]:
    """What a sweep optimizes without ``--metric``: the validation metric ``fit`` ranks its
    checkpoints by (``fit.monitor``, in ``fit.monitor_mode``), never the test split's score
    by default: hyperparameters chosen on the test set make its score optimistic. A
    pipeline without ``fit`` (scikit-learn estimators) has only the run's main metric,
    which is said in one line."""
    for step in steps:
        if step.spec.name != "fit":
            continue
        parameters = inspect.signature(step.spec.fn).parameters
        defaults = {name: parameters[name].default for name in ("monitor", "monitor_mode")}
        if all(default is not inspect.Parameter.empty for default in defaults.values()):
            monitor = bound_value(step.spec.fn, "monitor", defaults["monitor"])
            mode = bound_value(step.spec.fn, "monitor_mode", defaults["monitor_mode"])
            if isinstance(monitor, str) and mode in ("min", "max"):
                return monitor, "maximize" if mode == "max" else "minimize"
    logger.warning(
        f"sweep: the objective is the run's main metric '{main_metric}', scored on the test "
        "split; choosing on it overfits the test set (--metric names a validation metric)"
    )
    return main_metric, "maximize"


def several_devices(bindings: str) -> bool:
    """Whether a trial trains on several devices or nodes (DDP). Lightning starts the
    other ranks by running the command line again, so such a trial runs as its own
    process (``ginpipe.sweep.trial``), never inside the worker."""
    for line in bindings.splitlines():
        match = re.match(r"^(?:\S+\.)?Trainer\.(devices|num_nodes) = (.+)$", line.strip())
        if not match:
            continue
        try:
            value = ast.literal_eval(match.group(2))
        except (ValueError, SyntaxError):
            continue
        if (isinstance(value, int) and value > 1) or (
            isinstance(value, (list, tuple)) and len(value) > 1
        ):
            return True
    return False


def _open_new_study(sweep: Sweep) -> None:
    """Create the study; a ``--storage`` URL that cannot hold one is one line, exit 2."""
    try:
        open_study(sweep, create=True)
    except GinpipeError:
        raise
    except Exception as e:
        if not sweep.storage:
            raise
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"--storage {sweep.storage}: cannot open a study there ({reason}); give a "
            "database URL Optuna can open, e.g. sqlite:///sweeps.db"
        ) from e


def create(
    configs: Sequence[str],
    mods: Sequence[str],
    *,
    trials: int | None,
    jobs: int,
    launcher: str,
    sampler: str | None,
    seed: int,
    pruner: str,
    metric: str | None,
    direction: str | None,
    storage: str | None,
    max_failure_rate: float,
    root: Path,
    project: str | None,
    slurm: dict[str, Any],
    argv: list[str],
    use_cache: bool = True,
) -> Sweep:
    """Make ``ROOT/PROJECT/sweep-<time>`` with its sweep.json and study; refused (and the
    folder removed) when anything is wrong, before any trial."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    if not 0 <= max_failure_rate <= 1:
        raise ConfigError(f"--max-failure-rate must be in [0, 1], got {max_failure_rate}")
    if launcher not in LAUNCHERS:
        raise ConfigError(f"unknown launcher {launcher!r}: one of {', '.join(LAUNCHERS)}")
    parse_pruner(pruner)
    if sampler is not None and sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}: one of {', '.join(SAMPLERS)}")
    if direction not in (None, "maximize", "minimize"):
        raise ConfigError(f"--direction must be maximize or minimize, got {direction!r}")
    if launcher == "local" and jobs > 1:
        check_gpus(jobs)
    if launcher == "slurm":
        require_sbatch()  # before the sweep folder exists
    build_space(configs, mods, copy_dir=None)  # refuse a malformed space before any folder
    path = definition.new_sweep_dir(root, project or default_project())
    try:
        space = build_space(configs, mods, copy_dir=path / "configs")
        space.configs = [str(Path(c).resolve()) if Path(c).is_file() else c for c in space.configs]
        check_values(space)
        budget = _budget(space, trials, sampler)
        (default_metric, default_direction), tasks, several = validate(space, prune=False)
        if several and launcher == "local" and jobs > 1:
            raise ConfigError(
                "a trial on several devices takes the whole machine: run it with --jobs 1 "
                "(or --launcher slurm, one array element per trial)"
            )
        prune = pruner.partition(":")[0] != "none" and "fit" in tasks
        if prune:
            validate(Space(space.configs, space.fixed, space.params[:0]), prune=True)
        sweep = Sweep(
            dir=path,
            space=space,
            trials=budget,
            sampler=sampler or ("grid" if space.is_grid else "tpe"),
            seed=seed,
            pruner=pruner,
            metric=metric or default_metric,
            direction=direction or (default_direction if metric is None else "maximize"),
            jobs=jobs,
            launcher=launcher,
            storage=storage,
            max_failure_rate=max_failure_rate,
            use_cache=use_cache,
            prune=prune,
            own_process=several,
            slurm=slurm,
            argv=argv,
            cwd=os.getcwd(),
        )
        check_choices(sweep)
        sweep.save()
        _open_new_study(sweep)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return sweep


def _budget(space: Space, trials: int | None, sampler: str | None) -> int:
    size = space.grid_size()
    if space.is_grid and sampler in (None, "grid"):
        if trials is not None and trials > size:
            raise ConfigError(f"the grid has {size} points; --trials {trials} would repeat them")
        return trials or size
    if trials is None:
        raise ConfigError("a search needs a budget: --trials N")
    return trials


def check_gpus(jobs: int) -> None:
    """One GPU per local worker: more jobs than GPUs are refused (on CPU, cores are split)."""
    gpus = visible_gpus()
    if gpus and jobs > len(gpus):
        raise ConfigError(
            f"--jobs {jobs} needs {jobs} GPUs (one per worker), this machine shows {len(gpus)}"
        )


def launch(sweep: Sweep, cluster: str = "slurm", wait: bool = True) -> int:
    """Run the sweep's workers; the exit code (0 once the budget is spent)."""
    if sweep.launcher == "slurm":
        code = launch_submitit(sweep, cluster=cluster, wait=wait)
    elif sweep.jobs == 1:
        folder = sweep.dir.resolve()  # named from here, run from where it was created
        code = _in_cwd(sweep, lambda: run_worker(folder))
    else:
        code = launch_processes(sweep)
    finish(sweep)
    return code


def _in_cwd(sweep: Sweep, fn: Any) -> int:
    """Trials run from the folder the sweep was created in (its relative config paths)."""
    cwd = os.getcwd()
    if sweep.cwd and Path(sweep.cwd).is_dir():
        os.chdir(sweep.cwd)
    try:
        return int(fn())
    finally:
        os.chdir(cwd)


def finish(sweep: Sweep) -> None:
    """Results into sweep.json and the plots; the best trial on the console."""
    study = open_study(sweep)
    found = write_results(sweep, study)
    draw_plots(sweep, found)
    best = next((r for r in found if r.value is not None), None)
    if best is not None:
        shown = " ".join(f"{k}={v}" for k, v in best.values.items())
        logger.success(
            f"sweep: best {definition.trial_name(best.number)} "
            f"({sweep.metric} {best.value:.4f}): {shown}; ginpipe runs --sweep {sweep.dir}"
        )


def worker_environments(sweep: Sweep) -> list[dict[str, str]]:
    """Per local worker: its share of the CPU cores, or its own GPU."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = str(max(1, (cores or 1) // sweep.jobs))
    gpus = visible_gpus()
    environments = []
    for index in range(sweep.jobs):
        env = dict(os.environ)
        env.update({THREADS_ENV: threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[index]
        environments.append(env)
    return environments


def launch_processes(sweep: Sweep) -> int:
    """``--jobs N`` worker processes sharing the study; signals are passed on to them once
    (they run in their own session, so a terminal's Ctrl-C reaches only this process)."""
    command = [sys.executable, "-m", "ginpipe.sweep.worker", str(sweep.dir.resolve())]
    cwd = sweep.cwd if sweep.cwd and Path(sweep.cwd).is_dir() else None
    processes = [
        subprocess.Popen(command, env=env, cwd=cwd, start_new_session=True)
        for env in worker_environments(sweep)
    ]
    received: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        received.append(signum)
        for process in processes:
            if process.poll() is None:
                process.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = [process.wait() for process in processes]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        return EXIT_INTERRUPTED if received[0] == signal.SIGINT else EXIT_TERMINATED
    stopped = [c for c in codes if c in (EXIT_INTERRUPTED, EXIT_TERMINATED)]
    if stopped:
        return stopped[0]
    return max(codes) if any(codes) else EXIT_OK


class TrialJob:
    """One element of the SLURM array: one trial (a new one, or one a preempted element
    left, resumed in its own directory). Requeued by submitit on preemption or timeout."""

    def __init__(self, cwd: str) -> None:
        self.cwd = cwd

    def __call__(self, sweep_dir: str) -> int:
        from ginpipe.runs.log import setup_console

        setup_console(False, 0)
        work_in(self.cwd)
        code = run_worker(Path(sweep_dir), max_trials=1)
        sweep = definition.load(Path(sweep_dir))
        if all_done(sweep):
            finish(sweep)  # the element that ends the sweep draws the plots
        return code

    def checkpoint(self, sweep_dir: str) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(TrialJob(self.cwd), sweep_dir)


def require_sbatch() -> None:
    if shutil.which("sbatch") is None:
        raise ConfigError(
            "--launcher slurm submits with sbatch, which is not on this machine's PATH: "
            "run the sweep from a SLURM login node"
        )


def launch_submitit(sweep: Sweep, cluster: str = "slurm", wait: bool = False) -> int:
    """One array element per remaining trial, at most ``--jobs`` at a time."""
    import submitit

    if cluster == "slurm":
        require_sbatch()
    study = open_study(sweep)
    remaining = sweep.trials - len(started(study)) + _stopped(sweep, study)
    if remaining <= 0:
        return EXIT_OK
    executor = submitit.AutoExecutor(folder=sweep.dir / "slurm" / "%j", cluster=cluster)
    options = sweep.slurm
    parameters: dict[str, Any] = {
        "name": f"ginpipe-{sweep.dir.name}",
        "timeout_min": int(options.get("time_min", 60)),
        "slurm_array_parallelism": sweep.jobs,
    }
    if options.get("gpus_per_trial"):
        parameters["gpus_per_node"] = int(options["gpus_per_trial"])
    if options.get("cpus_per_trial"):
        parameters["cpus_per_task"] = int(options["cpus_per_trial"])
    if options.get("partition"):
        parameters["slurm_partition"] = str(options["partition"])
    executor.update_parameters(**parameters)
    jobs = executor.map_array(TrialJob(sweep.cwd), [str(sweep.dir.resolve())] * remaining)
    logger.info(f"sweep: submitted {len(jobs)} trials as array {jobs[0].job_id.split('_')[0]}")
    if not wait:
        logger.info(f"follow it with: ginpipe runs --sweep {sweep.dir}")
        return EXIT_OK
    codes = [int(job.result()) for job in jobs]
    return max(codes) if any(codes) else EXIT_OK


def all_done(sweep: Sweep) -> bool:
    """Every trial of the budget has ended."""
    trials = open_study(sweep).get_trials(deepcopy=False)
    return sum(t.state.is_finished() for t in trials) >= sweep.trials


def _stopped(sweep: Sweep, study: Any) -> int:
    """RUNNING trials whose worker is gone: each needs an array element to finish it."""
    from optuna.trial import TrialState

    from ginpipe.sweep.study import Claim

    count = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.RUNNING:
            claim = Claim(sweep.dir, trial.number)
            if claim.try_acquire():
                claim.release()
                count += 1
    return count


def resume(sweep_dir: Path) -> Sweep:
    """The sweep a folder holds, to continue toward its budget."""
    if not sweep_dir.is_dir():
        raise ConfigError(f"no such sweep directory: {sweep_dir}")
    return definition.load(sweep_dir)
