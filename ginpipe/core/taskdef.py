"""The ``@task`` decorator: a plain function becomes a configurable pipeline step.

    @task(reads=("dataset",), writes=("splits",))
    def split_dataset(state, *, method="stratified", test_size=0.2, seed=0):
        ...
        return {"splits": splits}

The function stays an ordinary function (gin fills its keyword parameters). Declaring
what it reads and writes lets the runner check the wiring before any work, compute cache
keys before running, and refuse undeclared access.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gin

from ginpipe.base.errors import UndeclaredKeyError
from ginpipe.config.executors import EXECUTORS

SPEC_ATTR = "__ginpipe_task__"
RUN_FILE_MODES = ("link", "copy")
RESOURCES = ("cpus", "gpus")


@dataclass(frozen=True)
class Caching:
    """What is kept of a task's result, and what its key covers besides its parameters."""

    enabled: bool = True
    pickle_ok: tuple[str, ...] = ()
    run_files: tuple[tuple[str, str], ...] = ()
    pinned: bool = False
    uses: tuple[str, ...] = ()


@dataclass(frozen=True)
class RankPolicy:
    """Which processes of a distributed run run the task."""

    main_only: bool = False
    all_ranks: bool = False


@dataclass(frozen=True)
class Checks:
    """What is checked against the config before any task runs."""

    hints: tuple[tuple[str, str], ...] = ()
    check: Callable[[], None] | None = None
    metrics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Needs:
    """What the task needs to run, and its default place: the config's ``executors``
    overrides ``executor`` (``ginpipe/core/placement.py``)."""

    resources: tuple[tuple[str, float], ...] = ()
    executor: str = ""
    array: bool = False


@dataclass(frozen=True)
class TaskSpec:
    """What the runner knows about a task besides its parameters: its data, and its options
    in four small records."""

    name: str
    fn: Callable[..., Any]
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    caching: Caching = Caching()
    ranks: RankPolicy = RankPolicy()
    checks: Checks = Checks()
    needs: Needs = Needs()

    @property
    def qualname(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"


def task(
    reads: tuple[str, ...] | list[str] = (),
    writes: tuple[str, ...] | list[str] = (),
    *,
    cache: bool = True,
    main_only: bool = False,
    all_ranks: bool = False,
    pinned: bool = False,
    run_files: Mapping[str, str] | None = None,
    pickle_ok: tuple[str, ...] | list[str] = (),
    hints: dict[str, str] | None = None,
    uses: tuple[str, ...] | list[str] = (),
    check: Callable[[], None] | None = None,
    metrics: tuple[str, ...] | list[str] = (),
    resources: Mapping[str, float] | None = None,
    executor: str = "",
    array: bool = False,
    name: str | None = None,
    module: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn`` as a gin-configurable task.

    Args:
        reads: state keys the task reads (``state[key]``).
        writes: state keys the task returns, as a dict.
        cache: store the outputs and skip the task when its inputs are unchanged.
            Use ``False`` for cheap steps whose value is files written to the run dir.
        main_only: run only on global rank 0 (reports, plots); other ranks stop before it.
        all_ranks: under DDP every rank runs it together (training); by default rank 0
            computes a cached task and the other ranks read its stored outputs.
        pinned: the task's results in the run directory (checkpoints, the model) hold only
            for the inputs it was first given: a resume or re-run that would give it other
            inputs is refused before any work (``inputs.json``, docs/architecture.md).
        run_files: files or folders of the run directory the task writes besides its outputs
            (``{"checkpoints": "link", "logs": "copy"}``): kept with its cache entry and put
            into every run that reuses it, so that run is as complete as the one that
            computed it. ``link`` hard-links (their writers only ever replace files, never
            edit them in place), falling back to a copy; ``copy`` copies.
        pickle_ok: output keys that may be stored with pickle when no safe codec fits.
        hints: parameters the config must set (their default is ``gin.REQUIRED`` or None),
            each with what to tell a user who did not set it; checked before any task runs.
        uses: configurables the task calls itself rather than receiving them as parameters
            (``fit`` builds the ``Trainer``): their bindings join the task's cache key.
        check: called without arguments once the config is final, before any task runs;
            raises ``ConfigError`` for a setting the task cannot honour (with
            ``binding="task.param"`` the error is reported at the line that sets it).
        metrics: names of the numbers in the dict the task writes under ``run.report_key``
            (``*`` matches any characters: ``"recall/*"``); a ``run.main_metric`` that
            matches none is refused before any task runs. Empty: not known up front.
        resources: what the task needs to run (``{"cpus": 2, "gpus": 1}``): under
            ``ginpipe run --jobs N`` a task that declares CPU or GPU work runs in a process
            of its own, alongside independent tasks, each GPU task on its own device
            (``ginpipe/core/processes.py``).
        executor: the task's default place: ``"slurm"`` (or ``"local"``: submitit's local
            executor) runs it as a submitit job on the run's shared file system, the rest of
            the graph waiting for it. The config decides: ``executors.tasks`` overrides this
            default for any task (``ginpipe/config/executors.py``).
        array: the task can split its work over a job array (``executors.array``): each
            job runs it with its share (``state.share`` in the task) and caches
            what it computed itself; the task then runs once more here to gather it.
        name, module: the gin name (defaults: the function name and its module).
    """
    reads, writes, pickle_ok = tuple(reads), tuple(writes), tuple(pickle_ok)
    kept = tuple((run_files or {}).items())
    for path, mode in kept:
        if mode not in RUN_FILE_MODES or Path(path).is_absolute() or ".." in Path(path).parts:
            raise ValueError(f"run_files: {path!r}: {mode!r} must be link or copy, path relative")
    resources_needed = tuple(check_resources(resources or {}, "resources").items())
    if executor and executor not in EXECUTORS:
        raise ValueError(f"executor: {executor!r} is not one of {', '.join(EXECUTORS)}")
    unknown = set(pickle_ok) - set(writes)
    if unknown:
        raise ValueError(f"pickle_ok names keys the task does not write: {sorted(unknown)}")

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        spec = TaskSpec(
            name=name or fn.__name__,
            fn=fn,
            reads=reads,
            writes=writes,
            caching=Caching(cache, pickle_ok, kept, pinned, tuple(uses)),
            ranks=RankPolicy(main_only, all_ranks),
            checks=Checks(tuple((hints or {}).items()), check, tuple(metrics)),
            needs=Needs(resources_needed, executor, array),
        )
        wrapper = gin.configurable(name or fn.__name__, module=module)(fn)
        setattr(wrapper, SPEC_ATTR, spec)
        return wrapper

    return decorate


def check_resources(resources: Mapping[str, float], where: str) -> dict[str, float]:
    """``{"cpus": n, "gpus": m}`` with known names and non-negative numbers."""
    for key, value in resources.items():
        if key not in RESOURCES:
            raise ValueError(f"{where}: unknown resource {key!r}; known: {', '.join(RESOURCES)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{where}: {key} must be a number >= 0, got {value!r}")
    return dict(resources)


def spec_of(obj: Any) -> TaskSpec:
    """The TaskSpec of a task reference from the config (``@my_task``)."""
    spec = getattr(obj, SPEC_ATTR, None)
    if spec is None:
        name = getattr(obj, "__name__", repr(obj))
        raise TypeError(f"'{name}' is not a task; decorate it with @ginpipe.task(...)")
    return spec


def check_outputs(spec: TaskSpec, result: Any) -> dict[str, Any]:
    """A task returns a dict of exactly its declared writes (or None if it writes nothing)."""
    if result is None:
        result = {}
    if not isinstance(result, Mapping):
        raise UndeclaredKeyError(
            f"task '{spec.name}' returned {type(result).__name__}; "
            f"a task returns a dict of its writes {spec.writes!r}"
        )
    extra = [k for k in result if k not in spec.writes]
    missing = [k for k in spec.writes if k not in result]
    if extra:
        raise UndeclaredKeyError(
            f"task '{spec.name}' wrote {extra} but declares writes={spec.writes!r}"
        )
    if missing:
        raise UndeclaredKeyError(
            f"task '{spec.name}' declares writes={spec.writes!r} but did not return {missing}"
        )
    return dict(result)


def pin_inputs(task_fn: Callable[..., Any]) -> Callable[..., Any]:
    """Before 0.2: mark a task as ``@task(pinned=True)`` after the fact. Kept for one release."""
    spec = getattr(task_fn, SPEC_ATTR, None)
    if spec is None:
        raise TypeError(f"pin_inputs: {task_fn!r} is not a @task; declare @task(pinned=True)")
    pinned = dataclasses.replace(spec.caching, pinned=True)
    setattr(task_fn, SPEC_ATTR, dataclasses.replace(spec, caching=pinned))
    return task_fn
