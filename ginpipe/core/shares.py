"""A task's share of its work, when a job array runs it (``@task(array=True)``).

Element ``index`` of ``count`` owns every ``count``-th unit of work from ``index`` on, counted
over all the task's units in a fixed order, so the shares never depend on what another
element has already finished. Outside an array there is no share: the task does all of it.
A task reads its share from its view of the state (``state.share``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Share:
    """Array element ``index`` of ``count``."""

    index: int
    count: int

    def owns(self, unit: int) -> bool:
        """Whether unit number ``unit`` (0, 1, ... in the task's fixed order) is this one's."""
        return unit % self.count == self.index
