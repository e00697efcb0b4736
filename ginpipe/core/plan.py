"""The plan: for every step, its cache key and what happens to it, decided before any work.

Every cache key is computable before any task runs (it depends on code, parameters and
the keys of the inputs, never on their values), so the whole plan -- which tasks run, which
are read from the store, which wait for rank 0, which a partial run skips -- is known up
front and shown by ``--dry-run``. The plan is a list of immutable ``PlannedStep`` records;
where a task that runs is executed (here, in a process of its own, as a cluster job) is
added by ``ginpipe/core/placement.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from ginpipe.base.errors import ConfigError
from ginpipe.core import fingerprint, graph
from ginpipe.core.events import TaskState
from ginpipe.core.steps import Step, in_graph_order
from ginpipe.core.store import ArtifactStore
from ginpipe.core.taskdef import TaskSpec


class _Word(str, Enum):
    """An enum whose members are their words, in f-strings and JSON alike."""

    def __str__(self) -> str:
        return str(self.value)


class Action(_Word):
    """What the plan does with a step (the words of ``TaskState``, so logs, ``--dry-run``
    and ``run.json`` keep one vocabulary)."""

    RUN = TaskState.RUN  # compute it
    CACHED = TaskState.CACHED  # read its outputs from the cache
    WAIT = TaskState.WAIT  # ranks > 0: wait for rank 0 to store it, then read
    SKIPPED = TaskState.SKIPPED  # not on this rank, or outside a partial run


class Place(_Word):
    """Where a step that runs is executed (``ginpipe/core/executors.py``)."""

    HERE = "here"  # in the run's own process
    PROCESS = "process"  # a forked process of its own (``--jobs N``, a task declaring work)
    JOB = "job"  # a submitit job (``executors.tasks``)


@dataclass(frozen=True)
class JobPlacement:
    """A task sent to a job scheduler: its executor, and the size of its array (0: one
    plain job)."""

    executor: str
    array: int = 0


@dataclass(frozen=True)
class PlannedStep:
    """One step of the plan: the wired step, its cache key, the keys of its inputs, what
    happens to it and why, and where it runs."""

    step: Step
    key: str
    inputs: Mapping[str, str]
    action: Action
    reason: str
    # Outputs its cache entry could not store: recomputed when read (``Pipeline``).
    transient: tuple[str, ...] = ()
    place: Place = Place.HERE
    job: JobPlacement | None = None  # the config's placement, shown whatever the action

    # The wired step's parts, read everywhere the plan is.
    @property
    def index(self) -> int:
        return self.step.index

    @property
    def spec(self) -> TaskSpec:
        return self.step.spec

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def selector(self) -> str:
        return self.step.selector

    @property
    def scope(self) -> str:
        return self.step.scope

    @property
    def namespace(self) -> str:
        return self.step.namespace

    @property
    def reads(self) -> tuple[str, ...]:
        return self.step.reads

    @property
    def writes(self) -> tuple[str, ...]:
        return self.step.writes

    @property
    def local(self) -> Mapping[str, str]:
        return self.step.local

    @property
    def resources(self) -> dict[str, float]:
        return self.step.resources

    def state_key(self, own: str) -> str:
        return self.step.state_key(own)

    def numbered(self, index: int) -> PlannedStep:
        """The same decision at another position (a plan cut down to what one answer needs)."""
        return dataclasses.replace(self, step=dataclasses.replace(self.step, index=index))


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


def plan(
    steps: Sequence[Step],
    store: ArtifactStore | None,
    *,
    rerun: Sequence[str] = (),
    use_cache: bool = True,
    is_main: bool = True,
    selection: Selection | None = None,
) -> list[PlannedStep]:
    """Compute each key, then decide per task: run it, read it, or wait for rank 0."""
    ordered = in_graph_order(steps)
    chosen = None
    if selection is not None:
        chosen = graph.select(
            ordered, start=selection.start, stop=selection.stop, only=selection.only
        )
    unknown = set(rerun) - {s.spec.name for s in ordered} - {s.name for s in ordered}
    if unknown:
        names = [s.name for s in ordered]
        raise ConfigError(f"--rerun names unknown task(s) {sorted(unknown)}; tasks are {names}")
    artifact: dict[str, str] = {}
    planned: list[PlannedStep] = []
    forced = False
    for step in ordered:
        inputs = {step.local[k]: artifact[k] for k in step.reads}
        key = fingerprint.task_key(
            step.selector, step.spec.fn, step.scope, inputs, step.spec.caching.uses
        )
        if chosen is not None and step.index not in chosen and selection is not None:
            key = _borrowed_key(step, selection, store) or key
        for name in step.writes:
            artifact[name] = fingerprint.artifact_key(key, step.local[name])
        forced = forced or step.spec.name in rerun or step.name in rerun
        planned.append(_decide(step, key, inputs, store, forced, use_cache, is_main))
    planned = _run_producers_of_transient_inputs(planned)
    if chosen is not None and selection is not None:
        planned = _restrict(planned, chosen, store, selection)
    return planned


def _decide(
    step: Step,
    key: str,
    inputs: dict[str, str],
    store: ArtifactStore | None,
    forced: bool,
    use_cache: bool,
    is_main: bool,
) -> PlannedStep:
    def decided(action: Action, reason: str, transient: tuple[str, ...] = ()) -> PlannedStep:
        return PlannedStep(step, key, inputs, action, reason, transient)

    spec = step.spec
    if spec.ranks.main_only and not is_main:
        return decided(Action.SKIPPED, "runs on rank 0 only")
    if not spec.caching.enabled:
        return decided(Action.RUN, "not cached")
    if not spec.writes:
        # Nothing to reuse: a task that returns nothing is there for its side effects
        # (seeding, a file it writes), which skipping it would silently drop.
        return decided(Action.RUN, "writes nothing")
    if forced:
        return decided(Action.RUN, "--rerun")
    if not use_cache or store is None:
        return decided(Action.RUN, "cache off")
    entry = store.lookup(key)
    if entry is not None:
        return decided(Action.CACHED, "unchanged", tuple(entry.transient))
    if not is_main and not spec.ranks.all_ranks:
        return decided(Action.WAIT, "rank 0 computes it")
    return decided(Action.RUN, "new or changed")


def _borrowed_key(step: Step, selection: Selection, store: ArtifactStore | None) -> str | None:
    """The full cache key of what ``--inputs-from``'s run stored for this task, if stored."""
    prefix = selection.borrowed.get(step.name)
    if not prefix or store is None:
        return None
    return next((e.key for e in store.entries() if e.key.startswith(prefix)), None)


def _run_producers_of_transient_inputs(steps: list[PlannedStep]) -> list[PlannedStep]:
    """A cached task whose output was not storable must run again if a running task needs it."""
    needed: set[str] = set()
    decided: list[PlannedStep] = []
    for step in reversed(steps):
        transient = {step.state_key(k) for k in step.transient}
        if step.action == Action.CACHED and needed & transient:
            step = _changed(step, Action.RUN, "needed output was not storable")
        if step.action in (Action.RUN, Action.WAIT):
            needed |= set(step.reads)
        decided.append(step)
    return decided[::-1]


def _restrict(
    steps: list[PlannedStep], chosen: set[int], store: ArtifactStore | None, selection: Selection
) -> list[PlannedStep]:
    """A partial run: tasks outside the selection are skipped, except those whose outputs
    a computed task needs: read from the cache, or run again where never stored (a task
    declared ``cache=False``, an output without a safe format). A needed output that should
    be stored but is not is refused before any work, naming it."""
    needed: set[str] = set()
    decided: list[PlannedStep] = []
    for step in reversed(steps):
        decided.append(_restricted(step, chosen, store, selection, needed))
    return decided[::-1]


def _restricted(
    step: PlannedStep,
    chosen: set[int],
    store: ArtifactStore | None,
    selection: Selection,
    needed: set[str],
) -> PlannedStep:
    """One step of a partial run (walked from the last); adds what it needs to ``needed``."""
    if step.index in chosen:
        if step.action in (Action.RUN, Action.WAIT):
            needed |= set(step.reads)
        return step
    provides = needed & set(step.writes)
    if not provides:
        return _changed(step, Action.SKIPPED, "not selected")
    cached = step.spec.caching.enabled
    entry = store.lookup(step.key) if store is not None and cached else None
    if entry is not None and not provides & {step.state_key(k) for k in entry.transient}:
        return _changed(step, Action.CACHED, "input of the selection", tuple(entry.transient))
    if not cached or entry is not None:
        needed |= set(step.reads)
        return _changed(step, Action.RUN, "input of the selection, never stored")
    keys = ", ".join(f"'{k}'" for k in sorted(provides))
    where = (
        f"in neither the cache nor {selection.source}" if selection.source else "not in the cache"
    )
    raise ConfigError(
        f"{selection.describe()} needs {keys} from '{graph.label(step)}', which is "
        f"{where}: run up to it first (--until {graph.label(step)}), or name a run "
        f"that has it with --inputs-from RUN"
    )


def _changed(
    step: PlannedStep, action: Action, reason: str, transient: tuple[str, ...] | None = None
) -> PlannedStep:
    """The step with another decision (and, when given, the outputs its entry lacks)."""
    kept = step.transient if transient is None else transient
    return dataclasses.replace(step, action=action, reason=reason, transient=kept)
