"""The Lightning callback that feeds a trial's monitored metric to Optuna's pruner.

A sweep adds ``fit.callbacks += [@ginpipe.sweep.pruning.PruneTrial()]`` to the trials of a
pipeline that trains with ``fit``; the worker running a trial sets it as the current trial
here. Outside a sweep (``ginpipe resume trial-0003`` by hand) there is no current trial and
the callback does nothing.
"""

from __future__ import annotations

from typing import Any

import optuna
import pytorch_lightning as pl

CALLBACK_MOD = "fit.callbacks += [@ginpipe.sweep.pruning.PruneTrial()]"

_current: dict[str, Any] = {"trial": None, "direction": "maximize"}


def set_current(trial: optuna.Trial | None, direction: str = "maximize") -> None:
    """The trial this process is running (None: no trial)."""
    _current["trial"] = trial
    _current["direction"] = direction


class PruneTrial(pl.Callback):
    """After each validation epoch, report the monitored metric (``fit.monitor``) to the
    current trial and stop it with ``optuna.TrialPruned`` when the pruner says so.

    The value is reported in the study's direction (negated when ``fit.monitor_mode``
    disagrees with it), so the pruner compares like with like. Under DDP only global rank 0
    talks to the study; its decision is broadcast so every rank stops together.
    """

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trial = _current["trial"]
        if trial is None or trainer.sanity_checking:
            return
        monitor, mode = _monitored(trainer)
        prune = False
        value = trainer.callback_metrics.get(monitor) if monitor else None
        if trainer.is_global_zero and value is not None:
            reported = float(value)
            wanted = "max" if _current["direction"] == "maximize" else "min"
            if mode != wanted:
                reported = -reported
            trial.report(reported, step=trainer.current_epoch)
            prune = trial.should_prune()
        if trainer.world_size > 1:
            prune = bool(trainer.strategy.broadcast(prune, src=0))
        if prune:
            shown = f"{float(value):.4f}" if value is not None else "?"
            raise optuna.TrialPruned(
                f"pruned after epoch {trainer.current_epoch}: {monitor}={shown}"
            )


def _monitored(trainer: pl.Trainer) -> tuple[str | None, str]:
    """The metric fit ranks checkpoints by, and its mode ("max"/"min")."""
    for callback in trainer.checkpoint_callbacks:
        monitor = getattr(callback, "monitor", None)
        if monitor:
            return str(monitor), str(getattr(callback, "mode", "max"))
    return None, "max"


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
