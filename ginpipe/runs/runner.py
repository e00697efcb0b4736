"""``ginpipe run`` and ``ginpipe resume``: config -> plan -> run directory -> pipeline.

The order matters: everything a user can get wrong (files, syntax, names, mods, wiring,
required parameters, a locked or conflicting run directory) is checked before any task
runs and before anything in an existing run directory is touched.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from ginpipe.base.atomic import atomic_write_text
from ginpipe.base.errors import EXIT_OK, ConfigError, GinpipeError, Interrupted, TaskFailed
from ginpipe.base.oserrors import check_component, path_error
from ginpipe.base.signals import signals_raise_interrupted
from ginpipe.config import checks, ginapi, operative
from ginpipe.config.compose import MOD_SOURCE, Composition, bind_run_macros, compose, compose_text
from ginpipe.config.settings import RUN, run_settings
from ginpipe.core.events import Events, check_observer
from ginpipe.core.pipeline import (
    Pipeline,
    Step,
    check_main_metric,
    check_required,
    check_tasks,
    check_wiring,
    plan,
    task_steps,
)
from ginpipe.core.state import RunContext
from ginpipe.core.store import CACHE_DIR, ArtifactStore
from ginpipe.runs import continuation, distributed, rundir, startup
from ginpipe.runs.log import add_run_log
from ginpipe.runs.provenance import (
    ENVIRONMENT_FILE,
    environment,
    git_diff,
    git_state,
    installed_distributions,
)


@dataclass
class RunRequest:
    files: list[str] = field(default_factory=list)
    mods: list[str] = field(default_factory=list)
    name: str | None = None
    project: str | None = None
    # A folder of runs inside the project (a sweep's trials): ROOT/PROJECT/GROUP/NAME.
    group: str | None = None
    root: Path = Path("experiments")
    resume: Path | None = None
    dry_run: bool = False
    use_cache: bool = True
    rerun: list[str] = field(default_factory=list)
    argv: list[str] = field(default_factory=lambda: list(sys.argv))


@dataclass
class Prepared:
    composition: Composition
    settings: dict[str, Any]
    steps: list[Step]


def default_project() -> str:
    """The current folder's name: a run belongs to the code it was started from."""
    name = Path.cwd().name or "default"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def prepare(request: RunRequest) -> Prepared:
    """Compose and validate the config; nothing is written."""
    with startup.importing():  # where the modules a config names are imported
        return _compose_and_check(request)


def _compose_and_check(request: RunRequest) -> Prepared:
    if request.resume is not None:
        run = rundir.RunDir(request.resume)
        if not run.exists():
            raise ConfigError(f"not a run directory (no {rundir.CONFIG}): {request.resume}")
        rundir.check_intact(run)
        composition = compose_text(run.config_text(), str(run.file(rundir.CONFIG)), request.mods)
    else:
        composition = compose(request.files, request.mods)
    if not ginapi.is_bound(RUN, "tasks", {""}):
        raise ConfigError(
            "no task list: these configs set no run.tasks; start with one that does, "
            "e.g. ginpipe run base models/resnet (ginpipe configs lists them)"
        )
    settings = run_settings()
    steps = task_steps(settings["tasks"])
    sources = composition.sources
    check_wiring(steps)
    check_required(steps)
    checks.check_values(sources)
    reached = _reached(steps)
    checks.check_requirements(reached, sources)
    with _located(sources):
        check_tasks(steps)
        if ginapi.is_bound(RUN, "main_metric", {""}):
            check_main_metric(steps, settings["report_key"], settings["main_metric"])
    for observer in settings["observers"]:
        check_observer(observer)
    _warn_about_mods_that_change_nothing(composition, reached)
    return Prepared(composition, settings, steps)


@contextmanager
def _located(sources: list[Any]) -> Iterator[None]:
    """A ``ConfigError`` that names its binding gets the file and line that set it."""
    try:
        yield
    except ConfigError as e:
        source = checks.binding_source(sources, e.binding) if e.binding else None
        if source is None:
            raise
        raise ConfigError(f"{source.where}: {e}") from e


def _reached(steps: list[Step], unused: dict[str, set[str]] | None = None) -> set[str]:
    """Selectors the pipeline reaches: the tasks and observers of ``run``, everything their
    bindings reference (macros followed), and what tasks declare they build themselves
    (``uses``). ``unused``: parameters tasks said they did not use, not followed."""
    roots = [ginapi.query("ginpipe.run.tasks")]
    with suppress(ValueError):  # no observers bound
        roots.append(ginapi.query("ginpipe.run.observers"))
    reached = ginapi.referenced_selectors(roots, unused)
    for step in steps:
        for used in step.spec.uses:
            found = ginapi.find(used)
            if found is not None:
                reached |= {found.selector} | ginapi.referenced_selectors(
                    [v for _, _, v in ginapi.bound_values(found.selector, {""})], unused
                )
    return reached


def _operative(steps: list[Step], unused: dict[str, set[str]]) -> str:
    """What ran: gin's operative config plus what ginpipe built without gin's wrappers
    (``ginpipe/config/operative.py``)."""
    reached = _reached(steps, unused)
    return operative.complete(ginapi.operative_text(), ginapi.config_text(), reached)


def _warn_about_mods_that_change_nothing(composition: Composition, reached: set[str]) -> None:
    """A --mod binding a configurable that nothing in the pipeline reaches does nothing."""
    for source in composition.sources:
        stmt = source.statement
        if not source.origin.startswith(MOD_SOURCE) or not stmt.configurable:
            continue
        found = ginapi.find(stmt.configurable)
        if found is not None and found.selector not in reached and found.selector != RUN:
            logger.warning(
                f"{source.origin} changes nothing that runs: no task uses {stmt.configurable}"
            )


def run_path(request: RunRequest, composition: Composition, ranks: distributed.Ranks) -> Path:
    """Decide the run directory once; children and requeued jobs reuse it."""
    if request.resume is not None:
        return request.resume
    inherited = distributed.inherited_run_dir(ranks)
    if inherited is not None:
        return inherited
    if request.project is not None:
        check_component(request.project, "--project")
    project_dir = request.root / (request.project or default_project())
    if request.group is not None:
        check_component(request.group, "group")
        project_dir = project_dir / request.group
    rundir.check_contained(request.root, project_dir)
    name = request.name or distributed.scheduler_run_name() or distributed.launcher_run_name()
    if name:
        check_component(name, "--name")
        return project_dir / name
    if request.dry_run:
        return project_dir / rundir.generated_name(composition.digest)

    def create() -> str:
        return str(rundir.create_unique(project_dir, rundir.generated_name(composition.digest)))

    if ranks.world_size > 1 and distributed.uses_agent_store():
        return Path(distributed.share_from_rank0("run_dir", create))
    if not ranks.is_main:
        raise ConfigError(
            "ranks started together need one run name: pass --name NAME (or use torchrun)"
        )
    return Path(create())


@dataclass(frozen=True)
class RunOutcome:
    exit_code: int
    run_dir: Path


def execute(request: RunRequest) -> int:
    """Run (or resume) and return the process exit code."""
    return execute_run(request).exit_code


def execute_run(request: RunRequest) -> RunOutcome:
    """Run (or resume); the exit code and the run directory."""
    ranks = distributed.detect()
    try:
        outcome = _execute(request, ranks)
    except BaseException as e:
        _stop_waiting_ranks(ranks, f"{type(e).__name__}: {e}")
        raise
    if outcome.exit_code != EXIT_OK:
        _stop_waiting_ranks(ranks, f"exit code {outcome.exit_code}")
    return outcome


def _stop_waiting_ranks(ranks: distributed.Ranks, reason: str) -> None:
    """Ranks > 0 may be waiting for rank 0's results; a rank 0 that stops tells them."""
    if ranks.is_main and ranks.world_size > 1:
        distributed.announce_rank0_failure(reason)


def _execute(request: RunRequest, ranks: distributed.Ranks) -> RunOutcome:
    prepared = prepare(request)
    # The cache is always ROOT/.cache; the plan is checked before a run directory exists,
    # so a refused request leaves nothing behind.
    root = rundir.root_of(request.resume) if request.resume is not None else request.root
    store = ArtifactStore(root / CACHE_DIR)
    store.check_usable()
    steps = plan(
        prepared.steps,
        store,
        rerun=request.rerun,
        use_cache=request.use_cache,
        is_main=ranks.is_main,
    )
    path = run_path(request, prepared.composition, ranks)
    if bind_run_macros(path.resolve()):  # keys of tasks that use %RUN_DIR depend on it
        steps = plan(
            prepared.steps,
            store,
            rerun=request.rerun,
            use_cache=request.use_cache,
            is_main=ranks.is_main,
        )
    run = rundir.RunDir(path)
    if ranks.is_main and run.exists():
        continuation.check_pinned_inputs(run, steps, prepared.composition.bindings, request.mods)
        if _nothing_to_do(run, request, prepared.composition.digest):
            logger.info(f"run already completed with this config, left as it is: {path}")
            return RunOutcome(EXIT_OK, path)
    if request.dry_run:
        print_plan(path, steps)
        return RunOutcome(EXIT_OK, path)
    lock = rundir.RunLock(run) if ranks.is_main else None
    if not ranks.is_main:
        # A rank started with the run's name may get here before rank 0 made the folder;
        # its own log file goes there (mkdir -p: rank 0's later mkdir is unaffected).
        rundir.make_run_dir(path)
    if ranks.is_main:
        rundir.make_run_dir(path)
        rundir.check_no_symlinks(run)
        lock.acquire()
    previous = rundir.read_config_files(run) if request.resume and ranks.is_main else None
    try:
        if ranks.is_main:
            rundir.remove_leftovers(run)
            store.clean_temp()
            _write_run_files(run, request, prepared.composition)
            distributed.hand_down_run_dir(path)
        return RunOutcome(_run_pipeline(run, request, prepared, steps, store, ranks), path)
    except GinpipeError:
        # A resume refused on the way (e.g. its --mod does not fit the checkpoint) must
        # leave the run as it was: the saved config is what the next resume reads.
        if previous:
            rundir.restore_config_files(run, previous)
        raise
    finally:
        if lock is not None:
            lock.release()


def _nothing_to_do(run: rundir.RunDir, request: RunRequest, digest: str) -> bool:
    """A resume of a completed run with its own config changes nothing already there."""
    resumed = request.resume is not None and not request.rerun and request.use_cache
    return resumed and continuation.is_complete(run, digest)


def _write_run_files(run: rundir.RunDir, request: RunRequest, composition: Composition) -> None:
    if request.resume is not None:
        old = (
            run.file(rundir.OVERRIDES).read_text().splitlines()
            if run.file(rundir.OVERRIDES).exists()
            else []
        )
        rundir.write_config_files(run, composition.text, composition.bindings, old + request.mods)
        return
    if run.exists():
        rundir.check_same_config(run, composition.digest, composition.bindings)
        return
    rundir.write_config_files(run, composition.text, composition.bindings, request.mods)


def _run_pipeline(
    run: rundir.RunDir,
    request: RunRequest,
    prepared: Prepared,
    steps: list[Step],
    store: ArtifactStore,
    ranks: distributed.Ranks,
) -> int:
    """Run the planned steps in the run directory; record the outcome however it ends."""
    sink = add_run_log(run.path, ranks.rank)
    record = _open_record(run, request, prepared, ranks) if ranks.is_main else None
    pinned = [continuation.InputsRecorder(run, steps)] if ranks.is_main else []
    observers = [record, *pinned, *prepared.settings["observers"]] if record is not None else []
    events = Events(observers)
    logger.info(f"run directory: {run.path}")
    outcome: dict[str, Any] = {"status": "failed", "exit_code": 1}
    try:
        state = _run_steps(run, steps, store, ranks, events)
        metrics = _report(state, prepared.settings["report_key"])
        outcome = {"status": "completed", "exit_code": EXIT_OK, "metrics": metrics}
        if ranks.is_main:
            continuation.write_operative(run, _operative(steps, state.unused), state.unused)
            _summary(run, metrics, prepared.settings["main_metric"])
        return EXIT_OK
    except Interrupted as e:
        outcome = {"status": "interrupted", "exit_code": e.exit_code, "error": str(e)}
        logger.warning(f"{e}; continue with: ginpipe resume {run.path}")
        return e.exit_code
    except (TaskFailed, GinpipeError) as e:
        outcome = {"status": "failed", "exit_code": e.exit_code, "error": str(e)}
        raise
    except OSError as e:
        error = path_error(e)
        outcome = {"status": "failed", "exit_code": error.exit_code, "error": str(error)}
        raise error from e
    finally:
        if record is not None:
            world = distributed.trained_world(ranks)
            record.data.update(world_size=world.world_size, launcher=world.launcher)
        events.emit("on_run_end", outcome)
        logger.remove(sink)


def _open_record(
    run: rundir.RunDir, request: RunRequest, prepared: Prepared, ranks: distributed.Ranks
) -> rundir.RunRecord:
    """run.json's fixed part (argv, config, provenance); the record then follows events."""
    git = git_state()
    if git and git["dirty"]:
        atomic_write_text(run.file(rundir.GIT_DIFF), git_diff())
    atomic_write_text(run.file(ENVIRONMENT_FILE), installed_distributions())
    base = {
        "name": run.name,
        "project": run.project,
        "dir": str(run.path.resolve()),
        "argv": request.argv,
        "cwd": os.getcwd(),
        "config_files": prepared.composition.files,
        "overrides": _all_overrides(run),
        "config_digest": prepared.composition.digest,
        "main_metric": prepared.settings["main_metric"],
        "git": git,
        **environment(),
        "world_size": ranks.world_size,
        "launcher": ranks.launcher,
    }
    return rundir.RunRecord(run, base)


def _run_steps(
    run: rundir.RunDir,
    steps: list[Step],
    store: ArtifactStore,
    ranks: distributed.Ranks,
    events: Events,
) -> Any:
    """The pipeline itself, with SIGINT/SIGTERM turned into ``Interrupted``."""
    context = RunContext(
        run.path, run.name, run.project, ranks.rank, ranks.world_size, root=rundir.root_of(run.path)
    )
    with signals_raise_interrupted():
        events.emit("on_run_start", {"dir": str(run.path), "name": run.name})
        pipeline = Pipeline(steps, store=store, run=context, events=events)
        if ranks.world_size > 1:
            pipeline.rank0_failure = distributed.rank0_failure
        return pipeline.execute()


def _all_overrides(run: rundir.RunDir) -> list[str]:
    """Every --mod the run has had (first start and resumes), as overrides.txt holds them."""
    path = run.file(rundir.OVERRIDES)
    return path.read_text().splitlines() if path.exists() else []


def _report(state: Any, key: str) -> dict[str, float] | None:
    if key not in state:
        return None
    value = state[key]
    if not isinstance(value, dict):
        return None
    return {k: float(v) for k, v in value.items() if isinstance(v, (int, float))}


def _summary(run: rundir.RunDir, metrics: dict[str, float] | None, main_metric: str) -> None:
    shown = ""
    if metrics and main_metric in metrics:
        shown = f" ({main_metric} {metrics[main_metric]:.4f})"
    logger.success(f"run completed: {run.path}{shown}")


def print_plan(path: Path, steps: list[Step]) -> None:
    """What ``--dry-run`` shows: the run directory and, per task, run or reuse."""
    print(f"run directory: {path}")
    for step in steps:
        reads = ", ".join(step.spec.reads) or "-"
        writes = ", ".join(step.spec.writes) or "-"
        print(
            f"  {step.index + 1}. {step.spec.name:<20} {step.action:<7} ({step.reason})  "
            f"reads: {reads}  writes: {writes}"
        )
