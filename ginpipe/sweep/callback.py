"""The Lightning callback that feeds a trial's monitored metric to Optuna's pruner."""

from __future__ import annotations

import optuna
import pytorch_lightning as pl

from ginpipe.core.state import RunContext
from ginpipe.sweep.pruning import TrialReport


class PruneTrial(pl.Callback):
    """After each validation epoch, report the monitored metric (``fit.monitor``) to the
    run's trial and stop it with ``optuna.TrialPruned`` when the pruner says so.

    The value is reported in the study's direction (negated when ``fit.monitor_mode``
    disagrees with it), so the pruner compares like with like. Under DDP only global rank 0
    talks to the study; its decision is broadcast so every rank stops together. The trial
    comes with the run fit hands it (``use_run``); a run that is no trial has none.
    """

    def __init__(self) -> None:
        super().__init__()
        self.report: TrialReport | None = None

    def use_run(self, run: RunContext) -> None:
        """fit's hand-over of the run: the trial the sweep attached to it, if any."""
        self.report = run.attached_of(TrialReport)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        report = self.report
        if report is None or not report.in_trial or trainer.sanity_checking:
            return
        trial, direction = report.trial, report.direction
        monitor, mode = _monitored(trainer)
        prune = False
        value = trainer.callback_metrics.get(monitor) if monitor else None
        if trainer.is_global_zero and trial is not None and value is not None:
            reported = float(value)
            wanted = "max" if direction == "maximize" else "min"
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
