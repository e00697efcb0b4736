"""``ginpipe run`` and ``ginpipe resume``: config -> plan -> run directory -> pipeline.

The order matters: everything a user can get wrong (files, syntax, names, mods, wiring,
required parameters, a locked or conflicting run directory) is checked before any task
runs and before anything in an existing run directory is touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from loguru import logger

from ginpipe.base.errors import EXIT_OK, ConfigError, GinpipeError, Interrupted, TaskFailed
from ginpipe.base.oserrors import check_component, path_error
from ginpipe.base.prestart import Prestarted
from ginpipe.base.signals import signals_raise_interrupted
from ginpipe.config import checks, ginapi, operative
from ginpipe.config.compose import MOD_SOURCE, Composition, bind_run_macros, compose, compose_text
from ginpipe.config.executors import SELECTOR as EXECUTORS
from ginpipe.config.settings import RUN, run_settings
from ginpipe.core import placement, schedule
from ginpipe.core.events import Events, TaskState, check_observer
from ginpipe.core.pipeline import Pipeline
from ginpipe.core.plan import PlannedStep, Selection, plan
from ginpipe.core.state import RunContext
from ginpipe.core.steps import (
    Step,
    check_main_metric,
    check_required,
    check_tasks,
    in_graph_order,
    task_steps,
)
from ginpipe.core.store import CACHE_DIR, ArtifactStore
from ginpipe.runs import distributed, rundir, startup
from ginpipe.runs.graphs import plan_text
from ginpipe.runs.log import add_run_log
from ginpipe.runs.request import Prepared, RunRequest
from ginpipe.runs.roles import RankRole, role_of


def default_project() -> str:
    """The current folder's name: a run belongs to the code it was started from."""
    name = Path.cwd().name or "default"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def prepare(request: RunRequest, *, helpers: Prestarted | None = None) -> Prepared:
    """Compose and validate the config; nothing is written. With ``helpers`` (the run's), the
    helper processes the config's observers want start as soon as it is read, and those
    observers are handed them (``ginpipe/base/prestart.py``)."""
    on_read = helpers.start if helpers is not None else None
    with startup.importing():  # where the modules a config names are imported
        prepared = _compose_and_check(request, on_read)
    if helpers is not None:
        _hand_helpers(prepared.settings.observers, helpers)
    return prepared


def _hand_helpers(observers: list[Any], helpers: Prestarted) -> None:
    """An observer that works through a helper process says so with a ``helpers`` attribute
    (``MlflowTracker``); it takes its process from the run's."""
    for observer in observers:
        if hasattr(observer, "helpers"):
            observer.helpers = helpers


def _compose_and_check(
    request: RunRequest, on_read: Callable[[list[str]], None] | None = None
) -> Prepared:
    if request.resume is not None:
        run = rundir.RunDir(request.resume)
        if not run.exists():
            raise ConfigError(f"not a run directory (no {rundir.CONFIG}): {request.resume}")
        rundir.check_intact(run)
        text, origin = run.config_text(), str(run.file(rundir.CONFIG))
        composition = compose_text(text, origin, request.mods, on_read=on_read)
    else:
        composition = compose(request.files, request.mods, on_read=on_read)
    if not ginapi.is_bound(RUN, "tasks", {""}):
        raise ConfigError(
            "no task list: these configs set no run.tasks; start with one that does, "
            "e.g. ginpipe run base models/resnet (ginpipe configs lists them)"
        )
    settings = run_settings()
    steps = task_steps(settings.tasks)
    sources = composition.sources
    steps = in_graph_order(steps)
    check_required(steps)
    checks.check_values(sources)
    reached = _reached(steps)
    checks.check_requirements(reached, sources)
    with _located(sources):
        check_tasks(steps)
        placement.job_placements(steps)
        if ginapi.is_bound(RUN, "main_metric", {""}):
            check_main_metric(steps, settings.report_key, settings.main_metric)
    for observer in settings.observers:
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


def _reached(
    steps: Sequence[Step | PlannedStep], unused: dict[str, set[str]] | None = None
) -> set[str]:
    """Selectors the pipeline reaches: the tasks and observers of ``run``, everything their
    bindings reference (macros followed), and what tasks declare they build themselves
    (``uses``). ``unused``: parameters tasks said they did not use, not followed."""
    roots = [ginapi.query("ginpipe.run.tasks")]
    with suppress(ValueError):  # no observers bound
        roots.append(ginapi.query("ginpipe.run.observers"))
    reached = ginapi.referenced_selectors(roots, unused)
    for step in steps:
        for used in step.spec.caching.uses:
            found = ginapi.find(used)
            if found is not None:
                reached |= {found.selector} | ginapi.referenced_selectors(
                    [v for _, _, v in ginapi.bound_values(found.selector, {""})], unused
                )
    return reached


def _operative(steps: list[PlannedStep], unused: dict[str, set[str]]) -> str:
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
        if found is not None and found.selector not in reached | {RUN, EXECUTORS}:
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
    return role_of(ranks).unnamed_run_dir(create)


@dataclass(frozen=True)
class RunOutcome:
    exit_code: int
    run_dir: Path


def execute(request: RunRequest) -> int:
    """Run (or resume) and return the process exit code."""
    return execute_run(request).exit_code


def execute_run(request: RunRequest) -> RunOutcome:
    """Run (or resume); the exit code and the run directory."""
    role = role_of(distributed.detect())
    try:
        outcome = _execute(request, role)
    except BaseException as e:
        role.stop_waiting_ranks(f"{type(e).__name__}: {e}")
        raise
    if outcome.exit_code != EXIT_OK:
        role.stop_waiting_ranks(f"exit code {outcome.exit_code}")
    return outcome


def _execute(request: RunRequest, role: RankRole) -> RunOutcome:
    helpers = Prestarted()
    try:
        return _prepare_and_run(request, role, helpers)
    finally:
        helpers.discard()  # the helpers no observer took (a refused or finished run)


def _prepare_and_run(request: RunRequest, role: RankRole, helpers: Prestarted) -> RunOutcome:
    prepared = prepare(request, helpers=helpers if role.is_main and not request.dry_run else None)
    _check_jobs_take_no_borrowed_inputs(request, prepared.steps)
    # The cache is always ROOT/.cache; the plan is checked before a run directory exists,
    # so a refused request leaves nothing behind.
    root = rundir.root_of(request.resume) if request.resume is not None else request.root
    store = ArtifactStore(root / CACHE_DIR)
    store.check_usable()
    steps = _plan(request, prepared, store, role)
    if request.jobs != 1:
        placement.check_fits(steps, request.jobs)
    path = run_path(request, prepared.composition, role.ranks)
    if bind_run_macros(path.resolve()):  # keys of tasks that use %RUN_DIR depend on it
        steps = _plan(request, prepared, store, role)
    run = rundir.RunDir(path)
    if role.leaves_as_it_is(run, request, prepared, steps):
        logger.info(f"run already completed with this config, left as it is: {path}")
        return RunOutcome(EXIT_OK, path)
    if request.dry_run:
        print_plan(path, steps)
        return RunOutcome(EXIT_OK, path)
    with role.claim(run, request, prepared.composition, store):
        return RunOutcome(_run_pipeline(run, request, prepared, steps, store, role), path)


def _check_jobs_take_no_borrowed_inputs(request: RunRequest, steps: list[Step]) -> None:
    """A job composes and plans the run's config itself (``ginpipe/core/job_main.py``), so
    it cannot see inputs borrowed from another run: refused before work."""
    if request.inputs_from is None:
        return
    sent = sorted(steps[i].name for i in placement.job_placements(steps))
    if sent:
        raise ConfigError(
            f"--inputs-from cannot feed a task sent to a job scheduler ({', '.join(sent)}: "
            "executors.tasks or @task(executor=)); run without --inputs-from, or the task here"
        )


def _plan(
    request: RunRequest, prepared: Prepared, store: ArtifactStore, role: RankRole
) -> list[PlannedStep]:
    """Each task's cache key and action (run, reuse, or wait for rank 0's result), and
    where the tasks that run are executed."""
    planned = plan(
        prepared.steps,
        store,
        rerun=request.rerun,
        use_cache=request.use_cache,
        is_main=role.is_main,
        selection=selection(request),
    )
    return placement.place(planned, request.jobs, role.ranks.world_size)


def selection(request: RunRequest) -> Selection | None:
    """The partial run a request asks for; ``--inputs-from`` read from the run's record."""
    if not request.partial:
        return None
    if not (request.start or request.stop or request.only):
        raise ConfigError("--inputs-from needs --from, --until or --only: it feeds a partial run")
    borrowed: dict[str, str] = {}
    source = ""
    if request.inputs_from is not None:
        earlier = rundir.RunDir(request.inputs_from)
        if not earlier.file(rundir.RUN_JSON).is_file():
            raise ConfigError(f"--inputs-from {request.inputs_from}: not a run (no run.json)")
        for entry in earlier.read_json().get("tasks", []):
            if entry.get("status") in (TaskState.COMPLETED, TaskState.CACHED) and entry.get("key"):
                borrowed.setdefault(str(entry["name"]), str(entry["key"]))
        source = str(request.inputs_from)
    return Selection(
        tuple(request.start), tuple(request.stop), tuple(request.only), borrowed, source
    )


def _run_pipeline(
    run: rundir.RunDir,
    request: RunRequest,
    prepared: Prepared,
    steps: list[PlannedStep],
    store: ArtifactStore,
    role: RankRole,
) -> int:
    """Run the planned steps in the run directory; record the outcome however it ends."""
    sink = add_run_log(run.path, role.ranks.rank)
    observed = role.observe(run, request, prepared, steps)
    logger.info(f"run directory: {run.path}")
    outcome: dict[str, Any] = {"status": "failed", "exit_code": 1}
    try:
        attached = (*request.attached, *observed.events.observers)
        state = _run_steps(run, steps, store, role.ranks, observed.events, request.jobs, attached)
        metrics = _report(state, prepared.settings.report_key)
        outcome = {"status": "completed", "exit_code": EXIT_OK, "metrics": metrics}
        operative_text = partial(_operative, steps, state.unused)
        role.completed(run, operative_text, state.unused, metrics, prepared.settings.main_metric)
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
        observed.end(outcome)
        logger.remove(sink)


def _run_steps(
    run: rundir.RunDir,
    steps: list[PlannedStep],
    store: ArtifactStore,
    ranks: distributed.Ranks,
    events: Events,
    jobs: int = 1,
    attached: tuple[Any, ...] = (),
) -> Any:
    """The pipeline itself, with SIGINT/SIGTERM turned into ``Interrupted``."""
    context = RunContext(
        run.path,
        run.name,
        run.project,
        ranks.rank,
        ranks.world_size,
        root=rundir.root_of(run.path),
        attached=attached,
    )
    with signals_raise_interrupted():
        events.emit("on_run_start", {"dir": str(run.path), "name": run.name})
        several = ranks.world_size > 1
        pipeline = Pipeline(
            steps,
            store=store,
            run=context,
            events=events,
            rank0_failure=distributed.rank0_failure if several else lambda: None,
        )
        if several and (jobs > 1 or any(s.job for s in steps)):
            logger.warning(f"--jobs {jobs}, executors: ignored under {ranks.world_size} ranks")
        return schedule.execute(pipeline, jobs)


def _report(state: Any, key: str) -> dict[str, float] | None:
    if key not in state:
        return None
    value = state[key]
    if not isinstance(value, dict):
        return None
    return {k: float(v) for k, v in value.items() if isinstance(v, (int, float))}


def print_plan(path: Path, steps: list[PlannedStep]) -> None:
    """What ``--dry-run`` shows: the run directory and, per task, run or reuse, and the
    tasks it waits for (``ginpipe graph`` draws the same plan)."""
    print(f"run directory: {path}")
    for line in plan_text(steps):
        print(line)
