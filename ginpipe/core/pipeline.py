"""Run the task list: check the wiring, decide what the cache can skip, run the rest.

Every cache key is computable before any task runs (it depends on code, parameters and
the keys of the inputs, never on their values), so the whole plan -- which tasks run and
which are read from the store -- is known up front and shown by ``--dry-run``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import inspect
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gin
from gin import REQUIRED
from loguru import logger

from ginpipe.base.errors import ConfigError, GinpipeError, Interrupted, TaskFailed, WiringError
from ginpipe.base.oserrors import is_storage_error
from ginpipe.base.suggest import did_you_mean
from ginpipe.config import ginapi
from ginpipe.core import fingerprint, graph, nesting
from ginpipe.core.events import Events, TaskEvent, TaskState
from ginpipe.core.nesting import Nested
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
    # A nested pipeline's task (``ginpipe/core/nesting.py``): its name, and how the keys
    # the task declares map to state keys (``renames``: its outputs renamed by the config).
    namespace: str = ""
    renames: Mapping[str, str] = field(default_factory=dict)
    extra_resources: Mapping[str, float] = field(default_factory=dict)
    # State key -> the key the task declares; set by ``resolve_keys`` (identity outside
    # nested pipelines).
    local: dict[str, str] = field(default_factory=dict)
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.local:
            self.reads, self.writes = self.spec.reads, self.spec.writes
            self.local = {k: k for k in (*self.reads, *self.writes)}

    @property
    def name(self) -> str:
        """The task's name in logs and records: ``logreg/fit_sklearn`` inside a nested
        pipeline, else its own name."""
        return f"{self.namespace}/{self.spec.name}" if self.namespace else self.spec.name

    @property
    def resources(self) -> dict[str, float]:
        """What the task needs (``@task(resources=)``, or its nested pipeline's)."""
        return {**dict(self.spec.resources), **self.extra_resources}

    def state_key(self, own: str) -> str:
        """The state key of a key the task declares."""
        return next((k for k, v in self.local.items() if v == own), own)


@dataclass(frozen=True)
class Selection:
    """A partial run: which tasks to compute (``ginpipe/core/graph.py``, ``select``) and,
    from ``--inputs-from``, the cache keys an earlier run's tasks had (task name -> key
    prefix, as ``run.json`` records them)."""

    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    borrowed: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def describe(self) -> str:
        parts = [
            f"{option} {' '.join(names)}"
            for option, names in (("--from", self.start), ("--until", self.stop))
            if names
        ]
        parts += [f"--only {name}" for name in self.only]
        return " ".join(parts)


def task_steps(tasks: Sequence[Any]) -> list[Step]:
    """Pair each task callable from ``run.tasks`` with its gin selector and scope; a nested
    pipeline's tasks each become a step in its namespace."""
    refs = _task_references()
    if len(refs) != len(tasks):
        refs = [None] * len(tasks)
    steps: list[Step] = []
    for i, (call, ref) in enumerate(zip(tasks, refs, strict=True)):
        if isinstance(call, Nested):
            steps += _nested_steps(call, len(steps), f"run.tasks[{i}]")
            continue
        try:
            spec = spec_of(call)
        except TypeError as e:
            raise ConfigError(f"run.tasks[{i}]: {e}") from e
        if ref is not None:
            configurable, scope, _ = ginapi.reference_parts(ref)
            selector = configurable.selector
        else:
            selector, scope = f"{spec.fn.__module__}.{spec.name}", ""
        steps.append(Step(index=len(steps), spec=spec, call=call, selector=selector, scope=scope))
    return steps


def _nested_steps(nested: Nested, start: int, where: str, outer: str = "") -> list[Step]:
    """The steps of a nested pipeline (nested ones within it flattened too)."""
    nesting.check(nested, where)
    namespace = f"{outer}/{nested.name}" if outer else nested.name
    steps: list[Step] = []
    for j, call in enumerate(nested.tasks):
        if isinstance(call, Nested):
            steps += _nested_steps(call, start + len(steps), f"{where}.tasks[{j}]", namespace)
            continue
        try:
            spec = spec_of(call)
        except TypeError as e:
            raise ConfigError(f"{where} ({nested.name}/pipeline.tasks[{j}]): {e}") from e
        found = ginapi.registration_of(call)
        selector = found.selector if found else f"{spec.fn.__module__}.{spec.name}"
        steps.append(
            Step(
                index=start + len(steps),
                spec=spec,
                call=call,
                selector=selector,
                scope=namespace,
                namespace=namespace,
                renames=nested.keys,
                extra_resources=nested.resources,
            )
        )
    return steps


def resolve_keys(steps: Sequence[Step]) -> None:
    """Map each nested task's declared keys to state keys: what it writes goes under its
    namespace (or the name ``keys`` renames it to); what it reads is its namespace's own key
    when a task of the namespace writes it, else the key outside. A rename of a key no task
    of the namespace writes is refused."""
    written_in: dict[str, set[str]] = {}
    for step in steps:
        if step.namespace:
            written_in.setdefault(step.namespace, set()).update(step.spec.writes)
    for namespace, written in written_in.items():
        renames = next(s.renames for s in steps if s.namespace == namespace)
        unknown = sorted(set(renames) - written)
        if unknown:
            raise WiringError(
                f"{namespace}/pipeline.keys renames {', '.join(repr(k) for k in unknown)}, "
                f"which no task of '{namespace}' writes (they write "
                f"{', '.join(sorted(written)) or 'nothing'})"
            )
    for step in steps:
        if step.namespace:
            _namespace_keys(step, written_in[step.namespace])
    _expand_patterns(steps)


def _namespace_keys(step: Step, own: set[str]) -> None:
    """A nested task's reads and writes as state keys."""
    local: dict[str, str] = {}
    for key in step.spec.reads:
        local[_inner_key(step, key) if key in own else key] = key
    for key in step.spec.writes:
        local[_inner_key(step, key)] = key
    step.local = local
    step.reads = tuple(_inner_key(step, k) if k in own else k for k in step.spec.reads)
    step.writes = tuple(_inner_key(step, k) for k in step.spec.writes)


def _expand_patterns(steps: Sequence[Step]) -> None:
    """A read with ``*`` (``@task(reads=("*/metrics",))``) reads every key like it that
    another task writes, in the order of the list: one task comparing the branches of a
    run. A pattern no key matches is refused."""
    for step in steps:
        if not any("*" in key for key in step.spec.reads):
            continue
        others = [k for s in steps if s is not step for k in s.writes]
        reads: list[str] = []
        for key in step.reads:
            if "*" not in key:
                reads.append(key)
                continue
            matched = [k for k in others if fnmatch.fnmatchcase(k, key)]
            if not matched:
                raise WiringError(
                    f"task '{step.name}' reads '{key}', but no task in run.tasks writes a key "
                    f"like it"
                )
            reads += [k for k in matched if k not in reads]
            step.local.pop(key, None)
        step.reads = tuple(reads)
        step.local.update({k: k for k in reads if k not in step.local})


def _inner_key(step: Step, key: str) -> str:
    return step.renames.get(key) or f"{step.namespace}/{key}"


def _task_references() -> list[Any]:
    """The references bound to ``run.tasks`` with macros followed (never called)."""
    try:
        value = ginapi.follow_macros(ginapi.query("ginpipe.run.tasks"))
    except ValueError:
        return []
    if not isinstance(value, (list, tuple)):
        return []
    return [v if ginapi.is_reference(v) else None for v in value]


def check_wiring(steps: Sequence[Step]) -> list[Step]:
    """Refuse a read nobody writes, a key two tasks write and a cycle, naming the tasks and
    keys; the steps in the order they run (``ginpipe/core/graph.py``)."""
    return in_graph_order(steps)


def in_graph_order(steps: Sequence[Step]) -> list[Step]:
    """The steps in an order of their data dependencies (list order breaks ties), each
    ``index`` its position in that order."""
    resolve_keys(steps)
    ordered = graph.ordered(steps)
    for index, step in enumerate(ordered):
        step.index = index
    return ordered


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
    reporter = next((s for s in reversed(steps) if report_key in s.writes), None)
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
    selection: Selection | None = None,
) -> list[Step]:
    """Compute each key, then decide per task: run it, read it, or wait for rank 0."""
    steps = in_graph_order(steps)
    chosen = None
    if selection is not None:
        chosen = graph.select(
            steps, start=selection.start, stop=selection.stop, only=selection.only
        )
    artifact: dict[str, str] = {}
    unknown = set(rerun) - {s.spec.name for s in steps} - {s.name for s in steps}
    if unknown:
        names = [s.name for s in steps]
        raise ConfigError(f"--rerun names unknown task(s) {sorted(unknown)}; tasks are {names}")
    forced = False
    for step in steps:
        step.inputs = {step.local[k]: artifact[k] for k in step.reads}
        step.key = fingerprint.task_key(
            step.selector, step.spec.fn, step.scope, step.inputs, step.spec.uses
        )
        if chosen is not None and step.index not in chosen and selection is not None:
            step.key = _borrowed_key(step, selection, store) or step.key
        for name in step.writes:
            artifact[name] = fingerprint.artifact_key(step.key, step.local[name])
        forced = forced or step.spec.name in rerun or step.name in rerun
        step.action, step.reason = _decide(step, store, forced, use_cache, is_main)
    _run_producers_of_transient_inputs(steps)
    if chosen is not None and selection is not None:
        _restrict(steps, chosen, store, selection)
    return steps


def _borrowed_key(step: Step, selection: Selection, store: ArtifactStore | None) -> str | None:
    """The full cache key of what ``--inputs-from``'s run stored for this task, if stored."""
    prefix = selection.borrowed.get(step.name)
    if not prefix or store is None:
        return None
    return next((e.key for e in store.entries() if e.key.startswith(prefix)), None)


def _restrict(
    steps: list[Step], chosen: set[int], store: ArtifactStore | None, selection: Selection
) -> None:
    """A partial run: tasks outside the selection are skipped, except those whose outputs
    a computed task needs: read from the cache, or run again where never stored (a task
    declared ``cache=False``, an output without a safe format). A needed output that should
    be stored but is not is refused before any work, naming it."""
    needed: set[str] = set()
    for step in reversed(steps):
        if step.index in chosen:
            if step.action in (TaskState.RUN, TaskState.WAIT):
                needed |= set(step.reads)
            continue
        provides = needed & set(step.writes)
        if not provides:
            step.action, step.reason = TaskState.SKIPPED, "not selected"
            continue
        entry = store.lookup(step.key) if store is not None and step.spec.cache else None
        if entry is not None and not provides & {step.state_key(k) for k in entry.transient}:
            step.action, step.reason = TaskState.CACHED, "input of the selection"
            step.transient = tuple(entry.transient)
        elif not step.spec.cache or entry is not None:
            step.action, step.reason = TaskState.RUN, "input of the selection, never stored"
            needed |= set(step.reads)
        else:
            keys = ", ".join(f"'{k}'" for k in sorted(provides))
            where = (
                f"in neither the cache nor {selection.source}"
                if selection.source
                else "not in the cache"
            )
            raise ConfigError(
                f"{selection.describe()} needs {keys} from '{graph.label(step)}', which is "
                f"{where}: run up to it first (--until {graph.label(step)}), or name a run "
                f"that has it with --inputs-from RUN"
            )


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
        transient = {step.state_key(k) for k in step.transient}
        if step.action == TaskState.CACHED and needed & transient:
            step.action, step.reason = TaskState.RUN, "needed output was not storable"
        if step.action in (TaskState.RUN, TaskState.WAIT):
            needed |= set(step.reads)


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
        for step in self.steps:
            self.execute_step(step)
        return self.state

    def execute_step(self, step: Step) -> None:
        """One step in this process: run it, read it from the cache, or wait for rank 0."""
        total = len(self.steps)
        if step.action == TaskState.SKIPPED:
            logger.debug(f"[{step.index + 1}/{total}] {step.name}: skipped ({step.reason})")
            return
        if step.action == TaskState.RUN:
            self._materialize_inputs(step)
        event = self.start_event(step)
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
        self.end_event(step, event)

    def start_event(self, step: Step) -> TaskEvent:
        event = TaskEvent(task=step.name, index=step.index, total=len(self.steps), key=step.key)
        self.events.emit("on_task_start", event)
        return event

    def end_event(self, step: Step, event: TaskEvent) -> None:
        total = len(self.steps)
        if event.status == TaskState.CACHED:
            self._restore_run_files(step)
            producer = self._producer_run(step)
            event.detail = {"from_run": producer} if producer else {}
            logger.info(f"[{step.index + 1}/{total}] {step.name}: reused from cache")
        else:
            logger.info(f"[{step.index + 1}/{total}] {step.name}: done in {event.seconds:.2f}s")
        self.events.emit("on_task_end", event)

    def _context(self, step: Step) -> RunContext:
        """The run as a task sees it: a nested pipeline's tasks get a folder of their own
        (``RUN/logreg``), so two branches never write the same file."""
        if not step.namespace:
            return self.run
        root = self.run.root or Path(self.run.dir).absolute().parent.parent
        folder = self.run.dir / step.namespace
        if self.run.is_main:
            folder.mkdir(parents=True, exist_ok=True)
        return dataclasses.replace(self.run, dir=folder, root=root)

    def _state_for(self, step: Step) -> State:
        """The state as the task's own keys name it (a nested task's ``model`` is
        ``logreg/model``)."""
        if not step.namespace:
            return self.state
        return Namespaced(self.state, step.local, self._context(step))

    def _restore_run_files(self, step: Step) -> None:
        """A reused task's run files (``fit``'s checkpoints and training log) come with it:
        the run can then be resumed, fine-tuned and reported like the one that trained."""
        if not step.spec.run_files or self.store is None or not self.run.is_main:
            return
        restored = self.store.restore_run_files(step.key, self._context(step).dir)
        if restored:
            logger.debug(f"{step.name}: {', '.join(restored)} taken from the cache")

    def _materialize_inputs(self, step: Step) -> None:
        """Load what a task reads before it starts. A stored value that has to be recomputed
        (not storable, corrupt, vanished) then runs as its producer's own step -- its own
        events, timing and failure -- instead of inside the task that needed it."""
        for key in step.reads:
            self.state[key]

    def _run(self, step: Step, event: TaskEvent, t0: float, reason: str) -> None:
        logger.info(f"[{step.index + 1}/{len(self.steps)}] {step.name}: running ({reason})")
        try:
            outputs = self.call(step)
        except (Interrupted, KeyboardInterrupt):
            raise
        except BaseException as raised:
            e = ginapi.unwrap_call_error(raised)
            event.status, event.seconds = TaskState.FAILED, time.perf_counter() - t0
            event.error = _describe(e)
            self.events.emit("on_task_failed", event)
            if isinstance(e, GinpipeError) or is_storage_error(e):
                raise e from None  # a full disk is the runner's one line and exit 4, not 1
            raise TaskFailed(step.name, e) from e
        for name, value in outputs.items():
            self.state.set(step.state_key(name), value)
        self.save(step, outputs)

    def call(self, step: Step) -> dict[str, Any]:
        """Call the task under its scope with its view of the state; its checked outputs."""
        with _scope(step.namespace):
            reads = tuple(step.local[k] for k in step.reads)
            result = step.call(TaskView(self._state_for(step), step.spec.name, reads))
        return check_outputs(step.spec, result)

    def save(self, step: Step, outputs: dict[str, Any]) -> tuple[str, ...]:
        """Store a cached task's outputs; the names stored (none for an uncached task)."""
        if not (step.spec.cache and self.store is not None and self.run.is_main):
            return ()
        transient = self._save(step, outputs)
        return tuple(name for name in outputs if name not in transient)

    def _save(self, step: Step, outputs: dict[str, Any]) -> tuple[str, ...]:
        assert self.store is not None
        meta = {"run": str(self.run.dir.resolve()), "selector": step.selector}
        folder = self._context(step).dir
        files = [
            (relative, folder / relative, mode)
            for relative, mode in step.spec.run_files
            if (folder / relative).exists()
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
                    f"{step.name}: output '{name}' has no safe storage format; it is kept "
                    f"in memory and recomputed when needed (opt in with @task(pickle_ok=...))"
                )
        return tuple(result.transient)

    def expose_stored_output(self, step: Step, name: str) -> None:
        """Make one stored output of ``step`` readable, loaded on first use."""
        self.state.set_lazy(step.state_key(name), functools.partial(self._load, step, name))

    def _expose_stored(self, step: Step) -> None:
        for name in step.writes:
            self.state.set_lazy(name, functools.partial(self._load, step, step.local[name]))

    def _load(self, step: Step, name: str) -> Any:
        """Read one stored output; a corrupt or vanished artifact is recomputed, not fatal."""
        assert self.store is not None
        try:
            if name in step.transient:
                raise KeyError(name)
            return self.store.load(step.key, name, allow_pickle=name in step.spec.pickle_ok)
        except KeyError:
            reason = f"'{name}' was not storable"
            logger.info(f"{step.name}: {reason}; recomputing it")
        except CorruptArtifact as e:
            reason = f"stored '{name}' unusable"
            logger.warning(f"{step.name}: {reason} ({e}); recomputing")
        event = TaskEvent(
            task=step.name,
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
        return self.state[step.state_key(name)]

    def _wait_for(self, step: Step) -> None:
        """Ranks > 0 wait for rank 0 to commit a shared task's outputs."""
        assert self.store is not None
        deadline = time.monotonic() + self.wait_timeout
        delay = 0.05
        logger.info(f"{step.name}: waiting for rank 0's result")
        while self.store.lookup(step.key) is None:
            if time.monotonic() > deadline:
                raise TaskFailed(step.name, TimeoutError("rank 0 did not commit in time"))
            failure = self.rank0_failure()
            if failure:
                raise TaskFailed(step.name, RuntimeError(f"rank 0 stopped ({failure})"))
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


class Namespaced(State):
    """The state under a nested task's own key names; its run is the namespace's folder."""

    def __init__(self, state: State, local: Mapping[str, str], run: RunContext) -> None:
        super().__init__(run)
        self._state = state
        self._outer = {own: key for key, own in local.items()}
        self.unused = state.unused

    def __getitem__(self, key: str) -> Any:
        return self._state[self._outer.get(key, key)]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._outer.get(key, key) in self._state

    def __iter__(self) -> Iterator[str]:
        return (own for own, key in self._outer.items() if key in self._state)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@contextmanager
def _scope(namespace: str) -> Iterator[None]:
    """A nested task runs under its pipeline's gin scope: its scoped bindings apply."""
    if not namespace:
        yield
        return
    with gin.config_scope(namespace):
        yield


def _describe(e: BaseException) -> str:
    return str(e) if isinstance(e, GinpipeError) else f"{type(e).__name__}: {e}"
