"""Build the gin-configured Trainer with the callbacks and loggers that ``fit`` owns."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, ModelCheckpoint, OnExceptionCheckpoint
from pytorch_lightning.loggers import Logger, TensorBoardLogger

from ginpipe import ConfigError, RunContext, bound_value, configured, is_bound
from ginpipe.tasks.lightning.checkpoints import (
    LAST_NAME,
    ON_EXCEPTION_NAME,
    AtomicCheckpointIO,
    BackgroundCheckpointIO,
    RelocatableModelCheckpoint,
)
from ginpipe.tasks.lightning.epoch_lines import EpochLines, needs_epoch_lines
from ginpipe.tasks.lightning.quiet import silence_unactionable

# Trainer arguments that fit decides; a binding would be silently overridden, so it is refused.
TRAINER_ARGS_OWNED_BY_FIT = {
    "callbacks": "add callbacks with fit.callbacks = [...]",
    "logger": "add loggers with fit.loggers = [...] (the CSV log in logs/ is always kept)",
    "plugins": "fit installs its own checkpoint IO plugin",
    "default_root_dir": "fit trains in the run directory",
}


def refuse_trainer_args_owned_by_fit() -> None:
    """Fail before any work, naming the fit parameter to use instead."""
    for argument, advice in TRAINER_ARGS_OWNED_BY_FIT.items():
        if is_trainer_arg_bound(argument):
            raise ConfigError(f"Trainer.{argument} is set by fit; {advice}")


def refuse_spawned_ranks() -> None:
    """``ddp_spawn`` starts ranks in fresh processes that never parse the config (they would
    train with gin's defaults); ``ddp`` re-runs the command line, so every rank has it."""
    strategy = bound_value(pl.Trainer, "strategy", None)
    if isinstance(strategy, str) and "spawn" in strategy:
        raise ConfigError(
            f"Trainer.strategy={strategy!r} starts ranks that never see the config; "
            "use Trainer.strategy='ddp' (configs/trainer/ddp.gin)"
        )


def is_trainer_arg_bound(argument: str) -> bool:
    return is_bound(pl.Trainer, argument)


def build_trainer(run_dir: Path, callbacks: list[Callback], loggers: list[Logger]) -> pl.Trainer:
    """The gin-configured Trainer, given only the arguments fit owns.

    The progress bar is on only in a terminal or a notebook (a log file fills with
    redraws otherwise), unless the config binds ``Trainer.enable_progress_bar``.
    Checkpoints are written in the background unless a logger reads them as they are
    saved.
    """
    background = not any(reads_saved_checkpoints(logger) for logger in loggers)
    owned: dict[str, Any] = {
        "default_root_dir": str(run_dir),
        "callbacks": callbacks,
        "logger": loggers,
        "plugins": [BackgroundCheckpointIO() if background else AtomicCheckpointIO()],
    }
    if not is_trainer_arg_bound("enable_progress_bar"):
        owned["enable_progress_bar"] = sys.stdout.isatty() or in_notebook()
        if needs_epoch_lines():  # no widgets for the bar: plain lines instead
            owned["enable_progress_bar"] = False
            owned["callbacks"] = [*callbacks, EpochLines()]
    silence_unactionable()
    return configured(pl.Trainer)(**owned)


def reads_saved_checkpoints(logger: Logger) -> bool:
    """Whether ``logger`` may open a checkpoint file as soon as Lightning saved it: MLflow's,
    W&B's and Lightning's own loggers do with ``log_model`` set, and a user's logger that
    overrides ``after_save_checkpoint`` might. Such a file must be written already."""
    hook = type(logger).after_save_checkpoint
    if hook in (Logger.after_save_checkpoint, TensorBoardLogger.after_save_checkpoint):
        return False
    if hasattr(logger, "_log_model"):
        return bool(logger._log_model)
    return True


def in_notebook() -> bool:
    """A Jupyter kernel: its output cell redraws a progress bar (Lightning's bar uses
    tqdm's notebook widget when ipywidgets is installed)."""
    return "ipykernel" in sys.modules


def fit_logging_interval(trainer: pl.Trainer, loader_batches: int) -> None:
    """Log train metrics at least once per epoch: with fewer batches than
    ``log_every_n_steps`` (default 50), Lightning logs none and warns. A bound
    ``Trainer.log_every_n_steps`` is left as the user set it."""
    if is_trainer_arg_bound("log_every_n_steps"):
        return
    limit = trainer.limit_train_batches
    batches = loader_batches
    if isinstance(limit, int):
        batches = min(batches, limit)
    elif isinstance(limit, float) and limit < 1.0:
        batches = int(batches * limit)
    # an attribute Lightning's logger connector sets in Trainer.__init__, undeclared on Trainer
    trainer.log_every_n_steps = max(1, min(trainer.log_every_n_steps, batches))  # type: ignore[attr-defined]


def checkpoint_callbacks(
    checkpoint_dir: Path,
    monitor: str,
    monitor_mode: str,
    save_top_k: int,
    every_n_steps: int | None,
) -> tuple[ModelCheckpoint, list[Callback]]:
    """The best-k callback (returned first, to ask for the best path) and all checkpointing
    callbacks: best-k, ``last.ckpt`` every epoch (and every N steps if asked), and
    ``on_exception.ckpt``.

    ``ModelCheckpoint(save_last=True)`` is not used: since Lightning 2.6 it refreshes
    ``last.ckpt`` at an epoch end only when that epoch also saved a top-k checkpoint, so a
    resume would go back to the best epoch. A callback without a monitor that keeps one
    checkpoint named ``last`` writes it at every trigger. It comes after best-k so that
    ``last.ckpt`` records best-k's state of the same epoch. ``enable_version_counter=False``
    lets two callbacks share ``last.ckpt`` (otherwise one writes ``last-v1.ckpt``) and a
    resumed run overwrite its own files. Their saved state names files relative to the
    folder, so a moved or copied run directory resumes from its own files.
    """
    best = RelocatableModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="best-{epoch}-{step}",
        monitor=monitor,
        mode=monitor_mode,
        save_top_k=save_top_k,
        enable_version_counter=False,
    )
    callbacks: list[Callback] = [
        best,
        last_checkpoint(checkpoint_dir),
        OnExceptionCheckpoint(dirpath=checkpoint_dir, filename=ON_EXCEPTION_NAME),
    ]
    if every_n_steps:
        callbacks.append(last_checkpoint(checkpoint_dir, every_n_train_steps=every_n_steps))
    return best, callbacks


def last_checkpoint(
    checkpoint_dir: Path, every_n_train_steps: int | None = None
) -> ModelCheckpoint:
    """Writes ``last.ckpt`` every epoch, or every N training steps."""
    return RelocatableModelCheckpoint(
        dirpath=checkpoint_dir,
        filename=LAST_NAME,
        monitor=None,
        save_top_k=1,
        every_n_train_steps=every_n_train_steps,
        enable_version_counter=False,
    )


def extra_loggers(
    factories: Sequence[Callable[..., Logger]], log_dir: Path, run: RunContext | None = None
) -> list[Logger]:
    """Call each logger factory with its own folder under ``logs/``, named after it
    (``TensorBoardLogger`` -> ``logs/tensorboard``, ``mlflow_logger`` -> ``logs/mlflow``);
    a factory with a ``run`` parameter gets the run too (``mlflow_training_logger`` finds
    the run's tracker in ``run.attached``)."""
    loggers = []
    for factory in factories:
        name = getattr(getattr(factory, "func", factory), "__name__", "logger").lower()
        kind = name.removesuffix("logger").strip("_") or "logger"
        given = {"run": run} if run is not None and _takes_run(factory) else {}
        loggers.append(factory(save_dir=str(log_dir / kind), **given))
    return loggers


def _takes_run(factory: Callable[..., Any]) -> bool:
    try:
        return "run" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin)
        return False


def with_run(callbacks: Sequence[Callback], run: RunContext) -> list[Callback]:
    """The callbacks, each with a ``use_run`` method handed the run first (the sweep's
    ``PruneTrial`` finds its trial in ``run.attached``)."""
    for callback in callbacks:
        use_run = getattr(callback, "use_run", None)
        if callable(use_run):
            use_run(run)
    return list(callbacks)
