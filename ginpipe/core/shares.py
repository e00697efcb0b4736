"""A task's share of its work, when a job array runs it (``@task(array=True)``).

Element ``index`` of ``count`` owns every ``count``-th unit of work from ``index`` on, counted
over all the task's units in a fixed order, so the shares never depend on what another
element has already finished. Outside an array there is no share: the task does all of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Share:
    """Array element ``index`` of ``count``."""

    index: int
    count: int

    def owns(self, unit: int) -> bool:
        """Whether unit number ``unit`` (0, 1, ... in the task's fixed order) is this one's."""
        return unit % self.count == self.index


_current: list[Share] = []


def current_share() -> Share | None:
    """The share of the array element running now; None in a run's own process."""
    return _current[-1] if _current else None


@contextmanager
def sharing(share: Share) -> Iterator[None]:
    """Run the task with ``share`` as its part of the work."""
    _current.append(share)
    try:
        yield
    finally:
        _current.pop()
