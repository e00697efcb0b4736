"""Pruning: which trial this process runs, for the Lightning callback to report to.

A sweep adds ``fit.callbacks += [@ginpipe.sweep.callback.PruneTrial()]`` to the trials of a
pipeline that trains with ``fit``; the worker running a trial sets it as the current trial
here. Outside a sweep (``ginpipe resume trial-0003`` by hand) there is no current trial and
the callback does nothing. Lightning is imported only by the callback's module, so a sweep
of torch-free tasks never imports it.
"""

from __future__ import annotations

from typing import Any

import optuna

CALLBACK_MOD = "fit.callbacks += [@ginpipe.sweep.callback.PruneTrial()]"

_current: dict[str, Any] = {"trial": None, "direction": "maximize", "in_trial": False}


def current() -> tuple[optuna.Trial | None, str]:
    """The trial this process reports to (None outside a sweep, and on ranks other than
    global rank 0 of a trial on several devices) and the study's direction."""
    return _current["trial"], _current["direction"]


def in_trial() -> bool:
    """True in every rank of a sweep trial: the ranks that do not report still take part in
    rank 0's decision (a broadcast), so all of them stop together."""
    return bool(_current["in_trial"]) or _current["trial"] is not None


def set_current(
    trial: optuna.Trial | None, direction: str = "maximize", in_trial: bool = False
) -> None:
    """The trial this process is running (None: no trial, or a rank that does not report)."""
    _current["trial"] = trial
    _current["direction"] = direction
    _current["in_trial"] = in_trial


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
