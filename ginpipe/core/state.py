"""The state that flows from task to task, and the narrow view each task gets of it.

A task sees only the keys it declared in ``@task(reads=...)`` and hands back exactly the
keys it declared in ``writes`` (by returning a dict). That keeps the declarations true,
which the cache keys and the wiring check depend on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ginpipe.base.errors import UndeclaredKeyError
from ginpipe.core.shares import Share
from ginpipe.core.store import CACHE_DIR

T = TypeVar("T")


@dataclass(frozen=True)
class RunContext:
    """Where the run lives and who this process is in it."""

    dir: Path
    name: str
    project: str
    rank: int = 0
    world_size: int = 1
    # ROOT, whose .cache the run shares (None outside the runner: ROOT is dir/../..).
    root: Path | None = None
    # What the run hands its tasks' helpers (a callback, a logger): its observers in this
    # process and what its caller attached (a sweep's trial, ginpipe/sweep/pruning.py).
    attached: tuple[Any, ...] = ()

    def attached_of(self, kind: type[T]) -> T | None:
        """The first attached object of type ``kind``; None if the run has none."""
        return next((a for a in self.attached if isinstance(a, kind)), None)

    @property
    def is_main(self) -> bool:
        """Only the global rank 0 writes run files, metrics and plots."""
        return self.rank == 0

    @property
    def cache_dir(self) -> Path:
        """ROOT/.cache, the artifact store every run of the root shares: a task keeps its
        own caches beside the store (``extract_features``: ROOT/.cache/features)."""
        root = self.root if self.root is not None else Path(self.dir).absolute().parent.parent
        return Path(root).absolute() / CACHE_DIR


class State(Mapping[str, Any]):
    """All keys written so far. Values from cached steps load on first access."""

    def __init__(self, run: RunContext | None = None) -> None:
        self.run = run
        self._values: dict[str, Any] = {}
        self._loaders: dict[str, Callable[[], Any]] = {}
        # task name -> parameters the task said it did not use (see TaskView.not_used)
        self.unused: dict[str, set[str]] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._values and key in self._loaders:
            self._values[key] = self._loaders.pop(key)()
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._values), **dict.fromkeys(self._loaders)})

    def __len__(self) -> int:
        return len(set(self._values) | set(self._loaders))

    def __contains__(self, key: object) -> bool:
        return key in self._values or key in self._loaders

    def set(self, key: str, value: Any) -> None:
        self._loaders.pop(key, None)
        self._values[key] = value

    def set_lazy(self, key: str, load: Callable[[], Any]) -> None:
        """Make ``key`` available, loading it with ``load()`` only if someone reads it."""
        self._values.pop(key, None)
        self._loaders[key] = load

    def is_loaded(self, key: str) -> bool:
        return key in self._values


class TaskView(Mapping[str, Any]):
    """Read-only view of the state restricted to one task's declared reads; with the run it
    belongs to and, for an element of a job array, its share of the work."""

    def __init__(
        self, state: State, task: str, reads: tuple[str, ...], share: Share | None = None
    ) -> None:
        self._state = state
        self._task = task
        self._reads = reads
        self._share = share

    @property
    def share(self) -> Share | None:
        """The share of the task's work this call does (``@task(array=True)``: an element of
        a job array); None when the call does all of it."""
        return self._share

    @property
    def run(self) -> RunContext:
        if self._state.run is None:
            raise RuntimeError(f"task '{self._task}' needs a run context, but none was given")
        return self._state.run

    def __getitem__(self, key: str) -> Any:
        if key not in self._reads:
            raise UndeclaredKeyError(
                f"task '{self._task}' read '{key}' but declares reads={self._reads!r}; "
                f"add '{key}' to its @task(reads=...)"
            )
        return self._state[key]

    def __iter__(self) -> Iterator[str]:
        return (k for k in self._reads if k in self._state)

    def __getattr__(self, name: str) -> Any:
        """``state.seed`` (GinPipe's form) is ``state["seed"]`` here: say so, with the keys."""
        if name.startswith("_"):
            raise AttributeError(name)
        readable = ", ".join(repr(k) for k in self._reads) or "none: declare @task(reads=...)"
        raise AttributeError(
            f"task '{self._task}': the state has no attribute '{name}'; read a state key as "
            f"state['{name}'] (this task reads {readable})"
        )

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def not_used(self, *parameters: str) -> None:
        """Say that these parameters of the task took no part in this call (e.g. ``fit``'s
        optimizer when the model is a LightningModule): ``operative.gin`` leaves them out,
        so it records only what was really used."""
        self._state.unused.setdefault(self._task, set()).update(parameters)

    def __setitem__(self, key: str, value: Any) -> None:
        raise UndeclaredKeyError(
            f"task '{self._task}' assigned state['{key}']; a task returns its outputs instead: "
            f"return {{'{key}': ...}} and declare it in @task(writes=...)"
        )
