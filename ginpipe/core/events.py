"""Pipeline events and the observers that receive them.

An observer is any object with some of the methods of ``Observer``; list it in the config
(``run.observers = [@MyNotifier()]``) to add a notifier or a tracker without touching the
engine. An observer that raises is logged and ignored: it must never fail a run.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from ginpipe.base.errors import ConfigError
from ginpipe.base.suggest import did_you_mean


class TaskState:
    """The one vocabulary for a task's state: in the plan, in events, logs and run.json.

    A plan says what will happen to each task (RUN, CACHED, WAIT, SKIPPED); while and after
    it happens, events and run.json say RUNNING, COMPLETED, CACHED, FAILED or SKIPPED.
    """

    RUN = "run"  # planned: compute it
    CACHED = "cached"  # planned and done: read from the cache
    WAIT = "wait"  # planned on ranks > 0: wait for rank 0, then read
    SKIPPED = "skipped"  # not on this rank
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass
class TaskEvent:
    """What observers learn about one task."""

    task: str
    index: int
    total: int
    status: str = TaskState.RUNNING
    seconds: float = 0.0
    key: str = ""
    error: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


class Observer:
    """Base class with no-op hooks; override the ones you need."""

    def on_run_start(self, run: dict[str, Any]) -> None: ...

    def on_task_start(self, event: TaskEvent) -> None: ...

    def on_task_end(self, event: TaskEvent) -> None: ...

    def on_task_failed(self, event: TaskEvent) -> None: ...

    def on_run_end(self, run: dict[str, Any]) -> None: ...


EVENTS = tuple(name for name in vars(Observer) if name.startswith("on_"))


def check_observer(observer: Any) -> None:
    """An ``on_*`` method that is no event would silently never be called: refuse it."""
    for name, _ in inspect.getmembers(type(observer), callable):
        if name.startswith("on_") and name not in EVENTS:
            raise ConfigError(
                f"observer {type(observer).__name__} has a method {name}, which is no event"
                f"{did_you_mean(name, EVENTS)}; events are {', '.join(EVENTS)}"
            )


class Events:
    """Fans one event out to every observer, isolating their failures."""

    def __init__(self, observers: list[Any]) -> None:
        for observer in observers:
            check_observer(observer)
        self.observers = list(observers)

    def emit(self, hook: str, payload: Any) -> None:
        for observer in self.observers:
            method = getattr(observer, hook, None)
            if method is None:
                continue
            try:
                method(payload)
            except Exception as e:
                logger.warning(f"observer {type(observer).__name__}.{hook} failed: {e}")
