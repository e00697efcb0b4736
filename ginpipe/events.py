"""Pipeline events and the observers that receive them.

An observer is any object with some of the methods of ``Observer``; list it in the config
(``run.observers = [@MyNotifier()]``) to add a notifier or a tracker without touching the
engine. An observer that raises is logged and ignored: it must never fail a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loguru import logger


@dataclass
class TaskEvent:
    """What observers learn about one task."""

    task: str
    index: int
    total: int
    status: str = "running"  # running | completed | cached | failed | skipped
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


class Events:
    """Fans one event out to every observer, isolating their failures."""

    def __init__(self, observers: list[Any]) -> None:
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
