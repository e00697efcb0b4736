"""Run the task list: check the wiring, decide what the cache can skip, run the rest.

Every cache key is computable before any task runs (it depends on code, parameters and
the keys of the inputs, never on their values), so the whole plan -- which tasks run and
which are read from the store -- is known up front and shown by ``--dry-run``.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gin import REQUIRED
from loguru import logger

from ginpipe.base.errors import ConfigError, GinpipeError, Interrupted, TaskFailed, WiringError
from ginpipe.base.oserrors import is_storage_error
from ginpipe.base.suggest import did_you_mean
from ginpipe.config import ginapi
from ginpipe.core import fingerprint
from ginpipe.core.events import Events, TaskEvent, TaskState
from ginpipe.core.state import RunContext, State, TaskView
from ginpipe.core.store import ArtifactStore, CorruptArtifact
from ginpipe.core.taskdef import TaskSpec, check_outputs, spec_of


@dataclass
class Step:
    """One task in the plan."""

    index: int
    spec: TaskSpec
    call: Any  # the (possibly scoped) gin wrapper; calling it applies the bindings
    selector: str
    scope: str
    key: str = ""
    inputs: dict[str, str] = field(default_factory=dict)
    action: str = TaskState.RUN  # RUN | CACHED | WAIT | SKIPPED
    reason: str = ""
    transient: tuple[str, ...] = ()


def task_steps(tasks: Sequence[Any]) -> list[Step]:
    """Pair each task callable from ``run.tasks`` with its gin selector and scope."""
    refs = _task_references()
    if len(refs) != len(tasks):
        refs = [None] * len(tasks)
    steps = []
    for i, (call, ref) in enumerate(zip(tasks, refs, strict=True)):
        try:
            spec = spec_of(call)
        except TypeError as e:
            raise ConfigError(f"run.tasks[{i}]: {e}") from e
        if ref is not None:
            configurable, scope, _ = ginapi.reference_parts(ref)
            selector = configurable.selector
        else:
            selector, scope = f"{spec.fn.__module__}.{spec.name}", ""
        steps.append(Step(index=i, spec=spec, call=call, selector=selector, scope=scope))
    return steps


def _task_references() -> list[Any]:
    """The references bound to ``run.tasks`` with macros followed (never called)."""
    try:
        value = ginapi.follow_macros(ginapi.query("ginpipe.run.tasks"))
    except ValueError:
        return []
    if not isinstance(value, (list, tuple)):
        return []
    return [v if ginapi.is_reference(v) else None for v in value]


def check_wiring(steps: Sequence[Step]) -> None:
    """Every read must be written by an earlier task; say which task and which key."""
    if not steps:
        raise WiringError("run.tasks is empty: list at least one task")
    written: dict[str, str] = {}
    for step in steps:
        for key in step.spec.reads:
            if key not in written:
                later = next((s.spec.name for s in steps if key in s.spec.writes), None)
                where = (
                    f"'{later}' writes it only later; move it before"
                    if later
                    else "no task in run.tasks writes it"
                )
                raise WiringError(f"task '{step.spec.name}' reads '{key}', but {where}")
        for key in step.spec.writes:
            written[key] = step.spec.name


def check_required(steps: Sequence[Step]) -> None:
    """Fail before any work if a task's required parameter is not bound in the config."""
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    for step in steps:
        hints = dict(step.spec.hints)
        # The first parameter receives the state; gin fills the others from the config.
        for name, param in list(inspect.signature(step.spec.fn).parameters.items())[1:]:
            no_default = param.default is inspect.Parameter.empty and param.kind in keyword
            must_set = (
                no_default or param.default is REQUIRED or (name in hints and param.default is None)
            )
            if not must_set:
                continue
            scopes = fingerprint.scope_prefixes(step.scope)
            if not ginapi.is_bound(step.selector, name, scopes):
                hint = hints.get(
                    name, f"set it in a config file or with --mod {step.spec.name}.{name}=..."
                )
                raise ConfigError(f"{step.spec.name}.{name} is required but not set: {hint}")


def check_tasks(steps: Sequence[Step]) -> None:
    """Each task's own config check (``@task(check=...)``), before any task runs."""
    for step in steps:
        if step.spec.check is not None:
            step.spec.check()


def check_main_metric(steps: Sequence[Step], report_key: str, main_metric: str) -> None:
    """``run.main_metric`` must name a number the reporting task declares it writes
    (``@task(metrics=...)``); a task that declares none is not checked."""
    reporter = next((s for s in reversed(steps) if report_key in s.spec.writes), None)
    if reporter is None or not reporter.spec.metrics:
        return
    patterns = reporter.spec.metrics
    if any(fnmatch.fnmatchcase(main_metric, p) for p in patterns):
        return
    plain = [p for p in patterns if "*" not in p]
    raise ConfigError(
        f"run.main_metric={main_metric!r} is not a metric of '{reporter.spec.name}', which "
        f"reports {', '.join(patterns)}{did_you_mean(main_metric, plain)}",
        binding="ginpipe.run.main_metric",
    )


def plan(
    steps: list[Step],
    store: ArtifactStore | None,
    *,
    rerun: Sequence[str] = (),
    use_cache: bool = True,
    is_main: bool = True,
) -> list[Step]:
    """Compute each key, then decide per task: run it, read it, or wait for rank 0."""
    artifact: dict[str, str] = {}
    unknown = set(rerun) - {s.spec.name for s in steps}
    if unknown:
        names = [s.spec.name for s in steps]
        raise ConfigError(f"--rerun names unknown task(s) {sorted(unknown)}; tasks are {names}")
    forced = False
    for step in steps:
        step.inputs = {k: artifact[k] for k in step.spec.reads}
        step.key = fingerprint.task_key(
            step.selector, step.spec.fn, step.scope, step.inputs, step.spec.uses
        )
        for name in step.spec.writes:
            artifact[name] = fingerprint.artifact_key(step.key, name)
        forced = forced or step.spec.name in rerun
        step.action, step.reason = _decide(step, store, forced, use_cache, is_main)
    _run_producers_of_transient_inputs(steps)
    return steps


def _decide(
    step: Step, store: ArtifactStore | None, forced: bool, use_cache: bool, is_main: bool
) -> tuple[str, str]:
    spec = step.spec
    if spec.main_only and not is_main:
        return TaskState.SKIPPED, "runs on rank 0 only"
    if not spec.cache:
        return TaskState.RUN, "not cached"
    if not spec.writes:
        # Nothing to reuse: a task that returns nothing is there for its side effects
        # (seeding, a file it writes), which skipping it would silently drop.
        return TaskState.RUN, "writes nothing"
    if forced:
        return TaskState.RUN, "--rerun"
    if not use_cache or store is None:
        return TaskState.RUN, "cache off"
    entry = store.lookup(step.key)
    if entry is not None:
        step.transient = tuple(entry.transient)
        return TaskState.CACHED, "unchanged"
    if not is_main and not spec.all_ranks:
        return TaskState.WAIT, "rank 0 computes it"
    return TaskState.RUN, "new or changed"


def _run_producers_of_transient_inputs(steps: list[Step]) -> None:
    """A cached task whose output was not storable must run again if a running task needs it."""
    needed: set[str] = set()
    for step in reversed(steps):
        if step.action == TaskState.CACHED and needed & set(step.transient):
            step.action, step.reason = TaskState.RUN, "needed output was not storable"
        if step.action in (TaskState.RUN, TaskState.WAIT):
            needed |= set(step.spec.reads)


class Pipeline:
    """Executes a plan against a state, reporting to observers."""

    def __init__(
        self,
        steps: list[Step],
        *,
        store: ArtifactStore | None,
        run: RunContext,
        events: Events,
        wait_timeout: float = 3600.0,
    ) -> None:
        self.steps = steps
        self.store = store
        self.run = run
        self.events = events
        self.wait_timeout = wait_timeout
        self.state = State(run)
        self._warned_transient: set[str] = set()
        # Ranks > 0: returns rank 0's failure once it has announced one (see _wait_for).
        self.rank0_failure: Callable[[], str | None] = lambda: None

    def execute(self) -> State:
        total = len(self.steps)
        for step in self.steps:
            if step.action == TaskState.SKIPPED:
                logger.debug(
                    f"[{step.index + 1}/{total}] {step.spec.name}: skipped ({step.reason})"
                )
                continue
            if step.action == TaskState.RUN:
                self._materialize_inputs(step)
            event = TaskEvent(task=step.spec.name, index=step.index, total=total, key=step.key)
            self.events.emit("on_task_start", event)
            t0 = time.perf_counter()
            if step.action == TaskState.WAIT:
                self._wait_for(step)
            if step.action in (TaskState.CACHED, TaskState.WAIT):
                self._expose_stored(step)
                event.status = TaskState.CACHED
            else:
                self._run(step, event, t0, step.reason)
                event.status = TaskState.COMPLETED
            event.seconds = time.perf_counter() - t0
            if event.status == TaskState.CACHED:
                self._restore_run_files(step)
                producer = self._producer_run(step)
                event.detail = {"from_run": producer} if producer else {}
                logger.info(f"[{step.index + 1}/{total}] {step.spec.name}: reused from cache")
            else:
                logger.info(
                    f"[{step.index + 1}/{total}] {step.spec.name}: done in {event.seconds:.2f}s"
                )
            self.events.emit("on_task_end", event)
        return self.state

    def _restore_run_files(self, step: Step) -> None:
        """A reused task's run files (``fit``'s checkpoints and training log) come with it:
        the run can then be resumed, fine-tuned and reported like the one that trained."""
        if not step.spec.run_files or self.store is None or not self.run.is_main:
            return
        restored = self.store.restore_run_files(step.key, self.run.dir)
        if restored:
            logger.debug(f"{step.spec.name}: {', '.join(restored)} taken from the cache")

    def _materialize_inputs(self, step: Step) -> None:
        """Load what a task reads before it starts. A stored value that has to be recomputed
        (not storable, corrupt, vanished) then runs as its producer's own step -- its own
        events, timing and failure -- instead of inside the task that needed it."""
        for key in step.spec.reads:
            self.state[key]

    def _run(self, step: Step, event: TaskEvent, t0: float, reason: str) -> None:
        spec = step.spec
        logger.info(f"[{step.index + 1}/{len(self.steps)}] {spec.name}: running ({reason})")
        try:
            result = step.call(TaskView(self.state, spec.name, spec.reads))
            outputs = check_outputs(spec, result)
        except (Interrupted, KeyboardInterrupt):
            raise
        except BaseException as raised:
            e = ginapi.unwrap_call_error(raised)
            event.status, event.seconds = TaskState.FAILED, time.perf_counter() - t0
            event.error = _describe(e)
            self.events.emit("on_task_failed", event)
            if isinstance(e, GinpipeError) or is_storage_error(e):
                raise e from None  # a full disk is the runner's one line and exit 4, not 1
            raise TaskFailed(spec.name, e) from e
        for name, value in outputs.items():
            self.state.set(name, value)
        if spec.cache and self.store is not None and self.run.is_main:
            self._save(step, outputs)

    def _save(self, step: Step, outputs: dict[str, Any]) -> None:
        assert self.store is not None
        meta = {"run": str(self.run.dir.resolve()), "selector": step.selector}
        files = [
            (relative, self.run.dir / relative, mode)
            for relative, mode in step.spec.run_files
            if (self.run.dir / relative).exists()
        ]
        result = self.store.save(
            step.key,
            outputs,
            task=step.spec.name,
            meta=meta,
            pickle_ok=step.spec.pickle_ok,
            files=files,
        )
        for name in result.transient:
            if name not in self._warned_transient:
                self._warned_transient.add(name)
                logger.warning(
                    f"{step.spec.name}: output '{name}' has no safe storage format; it is kept "
                    f"in memory and recomputed when needed (opt in with @task(pickle_ok=...))"
                )

    def _expose_stored(self, step: Step) -> None:
        for name in step.spec.writes:
            self.state.set_lazy(name, functools.partial(self._load, step, name))

    def _load(self, step: Step, name: str) -> Any:
        """Read one stored output; a corrupt or vanished artifact is recomputed, not fatal."""
        assert self.store is not None
        try:
            if name in step.transient:
                raise KeyError(name)
            return self.store.load(step.key, name, allow_pickle=name in step.spec.pickle_ok)
        except KeyError:
            reason = f"'{name}' was not storable"
            logger.info(f"{step.spec.name}: {reason}; recomputing it")
        except CorruptArtifact as e:
            reason = f"stored '{name}' unusable"
            logger.warning(f"{step.spec.name}: {reason} ({e}); recomputing")
        event = TaskEvent(
            task=step.spec.name,
            index=step.index,
            total=len(self.steps),
            key=step.key,
            detail={"recomputed": name},
        )
        self.events.emit("on_task_start", event)
        t0 = time.perf_counter()
        self._run(step, event, t0, f"recomputing: {reason}")
        event.status, event.seconds = TaskState.COMPLETED, time.perf_counter() - t0
        self.events.emit("on_task_end", event)
        return self.state[name]

    def _wait_for(self, step: Step) -> None:
        """Ranks > 0 wait for rank 0 to commit a shared task's outputs."""
        assert self.store is not None
        deadline = time.monotonic() + self.wait_timeout
        delay = 0.05
        logger.info(f"{step.spec.name}: waiting for rank 0's result")
        while self.store.lookup(step.key) is None:
            if time.monotonic() > deadline:
                raise TaskFailed(step.spec.name, TimeoutError("rank 0 did not commit in time"))
            failure = self.rank0_failure()
            if failure:
                raise TaskFailed(step.spec.name, RuntimeError(f"rank 0 stopped ({failure})"))
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        entry = self.store.lookup(step.key)
        step.transient = tuple(entry.transient) if entry else ()

    def _producer_run(self, step: Step) -> str | None:
        if self.store is None:
            return None
        entry = self.store.lookup(step.key)
        run = (entry.meta or {}).get("run") if entry else None
        return run if run and run != str(self.run.dir.resolve()) else None


def _describe(e: BaseException) -> str:
    return str(e) if isinstance(e, GinpipeError) else f"{type(e).__name__}: {e}"
