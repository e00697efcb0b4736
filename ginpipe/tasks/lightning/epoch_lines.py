"""Progress as one printed line per epoch, where Lightning's bar cannot draw.

In a Jupyter kernel without ipywidgets, tqdm's notebook bar is unavailable: Lightning's bar
then prints "install ipywidgets for Jupyter support" and shows nothing useful. This callback
needs no extra package: after each validation it prints the epoch and its logged numbers.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import pytorch_lightning as pl


class EpochLines(pl.Callback):
    """``epoch 3/20  train_loss 0.412  val_acc 0.951``, printed on global rank 0."""

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        numbers = "  ".join(
            f"{name} {_number(value):.4g}"
            for name, value in sorted(trainer.callback_metrics.items())
            if _number(value) is not None
        )
        print(f"epoch {trainer.current_epoch + 1}/{total}  {numbers}".rstrip(), flush=True)


def _number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def needs_epoch_lines() -> bool:
    """A notebook kernel without the widgets tqdm's notebook bar draws with."""
    return "ipykernel" in sys.modules and not _importable("ipywidgets")


def _importable(name: str) -> bool:
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
