"""Pruning: which trial a run is, for the Lightning callback to report to.

A sweep adds ``fit.callbacks += [@ginpipe.sweep.callback.PruneTrial()]`` to the trials of a
pipeline that trains with ``fit``; the worker running a trial attaches a ``TrialReport`` to
the trial's run (``ginpipe.api.run(..., attached=[report])``), which fit hands the callback
with the run (``RunContext.attached``). Outside a sweep (``ginpipe resume trial-0003`` by
hand) nothing is attached and the callback does nothing. Lightning is imported only by the
callback's module, so a sweep of torch-free tasks never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna

CALLBACK_MOD = "fit.callbacks += [@ginpipe.sweep.callback.PruneTrial()]"


@dataclass(frozen=True)
class TrialReport:
    """The trial a run is: the Optuna trial to report to (None on ranks other than global
    rank 0 of a trial on several devices) and the study's direction."""

    trial: optuna.Trial | None
    direction: str = "maximize"
    all_ranks: bool = False  # a trial on several devices: every rank takes part

    @property
    def in_trial(self) -> bool:
        """True in every rank of a sweep trial: the ranks that do not report still take part
        in rank 0's decision (a broadcast), so all of them stop together."""
        return self.all_ranks or self.trial is not None


def is_pruned(error: BaseException) -> bool:
    """A trial's run stopped because its trial was pruned (the task error wraps it)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, optuna.TrialPruned) or type(current).__name__ == "TrialPruned":
            return True
        seen.add(id(current))
        current = getattr(current, "cause", None) or current.__cause__ or current.__context__
    return False
