"""One run's pipeline in this process: the state, and the public step interface every
executor drives.

A step is executed in four moves, each a method: ``gather`` its inputs (a stored value that
must be recomputed runs as its producer's own step), ``call`` the task under its scope with
its view of the state, ``store`` its cached outputs, and -- for a step run somewhere else --
``adopt`` what came back. ``run_here`` is the whole of it in this process (or a read from
the cache, or rank 0's result waited for); ``ginpipe/core/schedule.py`` decides what runs
when, and ``ginpipe/core/executors.py`` where.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gin
from loguru import logger

from ginpipe.base.errors import GinpipeError, Interrupted, TaskFailed
from ginpipe.base.oserrors import is_storage_error
from ginpipe.config import ginapi
from ginpipe.core.events import Events, TaskEvent, TaskState
from ginpipe.core.plan import Action, PlannedStep
from ginpipe.core.shares import Share
from ginpipe.core.state import RunContext, State, TaskView
from ginpipe.core.store import ArtifactStore, CorruptArtifact
from ginpipe.core.taskdef import check_outputs


class Pipeline:
    """A plan's state in this process, with the moves that execute one step of it,
    reporting to observers."""

    def __init__(
        self,
        steps: Sequence[PlannedStep],
        *,
        store: ArtifactStore | None,
        run: RunContext,
        events: Events,
        wait_timeout: float = 3600.0,
        rank0_failure: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.steps = list(steps)
        self.store = store
        self.run = run
        self.events = events
        self.wait_timeout = wait_timeout
        # Ranks > 0: rank 0's failure once it has announced one (see ``wait_for``).
        self.rank0_failure = rank0_failure
        self.state = State(run)
        # Outputs of a step its cache entry (or the process that ran it) could not store:
        # known from the plan, learnt again when a step runs elsewhere or rank 0 stores it.
        self.transient: dict[int, tuple[str, ...]] = {s.index: s.transient for s in steps}
        self._warned_transient: set[str] = set()

    # -- the whole step, here ------------------------------------------------------------

    def run_here(self, step: PlannedStep) -> None:
        """One step in this process: run it, read it from the cache, or wait for rank 0."""
        if step.action == Action.SKIPPED:
            logger.debug(f"{self.position(step)} {step.name}: skipped ({step.reason})")
            return
        if step.action == Action.RUN:
            self.gather(step)
        event = self.started(step)
        t0 = time.perf_counter()
        if step.action == Action.WAIT:
            self.wait_for(step)
        if step.action in (Action.CACHED, Action.WAIT):
            self.expose(step)
            event.status = TaskState.CACHED
        else:
            self._run(step, event, t0, step.reason)
            event.status = TaskState.COMPLETED
        event.seconds = time.perf_counter() - t0
        self.finished(step, event)

    # -- the moves -----------------------------------------------------------------------

    def gather(self, step: PlannedStep) -> None:
        """Load what a task reads before it starts. A stored value that has to be recomputed
        (not storable, corrupt, vanished) then runs as its producer's own step -- its own
        events, timing and failure -- instead of inside the task that needed it."""
        for key in step.reads:
            self.state[key]

    def call(self, step: PlannedStep, share: Share | None = None) -> dict[str, Any]:
        """Call the task under its scope with its view of the state (and its ``share`` of
        the work, in a job array); its checked outputs."""
        with _scope(step.namespace):
            reads = tuple(step.local[k] for k in step.reads)
            view = TaskView(self._state_for(step), step.spec.name, reads, share)
            result = step.step.call(view)
        return check_outputs(step.spec, result)

    def store_outputs(self, step: PlannedStep, outputs: dict[str, Any]) -> tuple[str, ...]:
        """Store a cached task's outputs; the names stored (none for an uncached task)."""
        if not (step.spec.caching.enabled and self.store is not None and self.run.is_main):
            return ()
        transient = self._save(step, outputs)
        return tuple(name for name in outputs if name not in transient)

    def keep(self, step: PlannedStep, outputs: Mapping[str, Any]) -> None:
        """Put outputs computed in this process into the state."""
        for name, value in outputs.items():
            self.state.set(step.state_key(name), value)

    def adopt(
        self,
        step: PlannedStep,
        stored: Sequence[str],
        values: Mapping[str, Any],
        unused: Sequence[str] = (),
    ) -> None:
        """Take what a step run elsewhere handed back: the outputs it stored (loaded when
        read), the values it could not store (``values``; what is in neither is recomputed
        here when read) and the parameters it did not use."""
        for name in stored:
            self._expose_output(step, name)
        self.keep(step, values)
        self.transient[step.index] = tuple(n for n in step.spec.writes if n not in stored)
        for name in step.spec.writes:
            if name not in stored and name not in values:
                self._expose_output(step, name)
        if unused:
            self.state.unused.setdefault(step.spec.name, set()).update(unused)

    def expose(self, step: PlannedStep) -> None:
        """Make every stored output of ``step`` readable, loaded on first use."""
        for name in step.writes:
            self._expose_output(step, step.local[name])

    def wait_for(self, step: PlannedStep) -> None:
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
        self.transient[step.index] = tuple(entry.transient) if entry else ()

    # -- what observers and the console see ------------------------------------------------

    def position(self, step: PlannedStep) -> str:
        return f"[{step.index + 1}/{len(self.steps)}]"

    def started(self, step: PlannedStep, detail: Mapping[str, Any] | None = None) -> TaskEvent:
        """The step's start, told to observers."""
        event = TaskEvent(task=step.name, index=step.index, total=len(self.steps), key=step.key)
        event.detail = dict(detail or {})
        self.events.emit("on_task_start", event)
        return event

    def finished(self, step: PlannedStep, event: TaskEvent) -> None:
        """The step's end (computed, or read from the cache), logged and told to observers."""
        if event.status == TaskState.CACHED:
            self._restore_run_files(step)
            producer = self._producer_run(step)
            event.detail = {"from_run": producer} if producer else {}
            logger.info(f"{self.position(step)} {step.name}: reused from cache")
        else:
            logger.info(f"{self.position(step)} {step.name}: done in {event.seconds:.2f}s")
        self.events.emit("on_task_end", event)

    def failed(self, step: PlannedStep, event: TaskEvent, description: str) -> None:
        """The step's failure, told to observers."""
        event.status, event.error = TaskState.FAILED, description
        self.events.emit("on_task_failed", event)

    # -- inside ------------------------------------------------------------------------------

    def _context(self, step: PlannedStep) -> RunContext:
        """The run as a task sees it: a nested pipeline's tasks get a folder of their own
        (``RUN/logreg``), so two branches never write the same file."""
        if not step.namespace:
            return self.run
        root = self.run.root or Path(self.run.dir).absolute().parent.parent
        folder = self.run.dir / step.namespace
        if self.run.is_main:
            folder.mkdir(parents=True, exist_ok=True)
        return dataclasses.replace(self.run, dir=folder, root=root)

    def _state_for(self, step: PlannedStep) -> State:
        """The state as the task's own keys name it (a nested task's ``model`` is
        ``logreg/model``)."""
        if not step.namespace:
            return self.state
        return Namespaced(self.state, step.local, self._context(step))

    def _restore_run_files(self, step: PlannedStep) -> None:
        """A reused task's run files (``fit``'s checkpoints and training log) come with it:
        the run can then be resumed, fine-tuned and reported like the one that trained."""
        if not step.spec.caching.run_files or self.store is None or not self.run.is_main:
            return
        restored = self.store.restore_run_files(step.key, self._context(step).dir)
        if restored:
            logger.debug(f"{step.name}: {', '.join(restored)} taken from the cache")

    def _run(self, step: PlannedStep, event: TaskEvent, t0: float, reason: str) -> None:
        logger.info(f"{self.position(step)} {step.name}: running ({reason})")
        try:
            outputs = self.call(step)
        except (Interrupted, KeyboardInterrupt):
            raise
        except BaseException as raised:
            e = ginapi.unwrap_call_error(raised)
            event.seconds = time.perf_counter() - t0
            self.failed(step, event, describe(e))
            if isinstance(e, GinpipeError) or is_storage_error(e):
                raise e from None  # a full disk is the runner's one line and exit 4, not 1
            raise TaskFailed(step.name, e) from e
        self.keep(step, outputs)
        self.store_outputs(step, outputs)

    def _save(self, step: PlannedStep, outputs: dict[str, Any]) -> tuple[str, ...]:
        assert self.store is not None
        meta = {"run": str(self.run.dir.resolve()), "selector": step.selector}
        folder = self._context(step).dir
        files = [
            (relative, folder / relative, mode)
            for relative, mode in step.spec.caching.run_files
            if (folder / relative).exists()
        ]
        result = self.store.save(
            step.key,
            outputs,
            task=step.spec.name,
            meta=meta,
            pickle_ok=step.spec.caching.pickle_ok,
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

    def _expose_output(self, step: PlannedStep, name: str) -> None:
        """One stored output of ``step`` (by the name the task declares), loaded on first use."""
        self.state.set_lazy(step.state_key(name), functools.partial(self._load, step, name))

    def _load(self, step: PlannedStep, name: str) -> Any:
        """Read one stored output; a corrupt or vanished artifact is recomputed, not fatal."""
        assert self.store is not None
        try:
            if name in self.transient.get(step.index, ()):
                raise KeyError(name)
            allow_pickle = name in step.spec.caching.pickle_ok
            return self.store.load(step.key, name, allow_pickle=allow_pickle)
        except KeyError:
            reason = f"'{name}' was not storable"
            logger.info(f"{step.name}: {reason}; recomputing it")
        except CorruptArtifact as e:
            reason = f"stored '{name}' unusable"
            logger.warning(f"{step.name}: {reason} ({e}); recomputing")
        event = self.started(step, {"recomputed": name})
        t0 = time.perf_counter()
        self._run(step, event, t0, f"recomputing: {reason}")
        event.status, event.seconds = TaskState.COMPLETED, time.perf_counter() - t0
        self.events.emit("on_task_end", event)
        return self.state[step.state_key(name)]

    def _producer_run(self, step: PlannedStep) -> str | None:
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


def describe(e: BaseException) -> str:
    """An error as one line: ginpipe's own as they are, others with their type."""
    return str(e) if isinstance(e, GinpipeError) else f"{type(e).__name__}: {e}"
