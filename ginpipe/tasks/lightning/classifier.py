"""A LightningModule that trains any ``nn.Module`` that maps inputs to class logits."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import pytorch_lightning as pl
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

# What the classifier logs (``self.log`` below); fit.monitor must name one of them.
LOGGED_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc")
# Scheduler parameters that mean "length of the whole schedule"; filled in when unset.
SCHEDULE_LENGTH_PARAMETERS = ("total_steps", "T_max")


class Classifier(pl.LightningModule):
    """Loss, accuracy and optimisation around a bare network.

    The optimizer and scheduler are kept as plain ``functools.partial`` factories (see
    ``ginpipe.tasks.lightning.factories``) and only called in ``configure_optimizers``, so the
    module holds no gin objects and pickles. No hyperparameters are saved into checkpoints: they
    stay loadable with ``torch.load(weights_only=True)``.

    Args:
        network: the classifier; its ``state_dict`` lives under the ``network.`` prefix.
        num_classes: for the accuracy metrics.
        optimizer: ``factory(params) -> Optimizer``.
        loss: the training and validation criterion.
        scheduler: ``factory(optimizer, ...) -> LRScheduler`` or ``None``. ``total_steps``
            (OneCycleLR) or ``T_max`` (CosineAnnealingLR), when not set, become the length of
            training in scheduler steps.
        scheduler_interval: ``"step"`` or ``"epoch"``: when the scheduler steps.
    """

    def __init__(
        self,
        network: nn.Module,
        num_classes: int,
        optimizer: functools.partial,
        loss: nn.Module,
        scheduler: functools.partial | None = None,
        scheduler_interval: str = "step",
    ) -> None:
        super().__init__()
        if scheduler_interval not in ("step", "epoch"):
            raise ValueError(
                f"scheduler_interval must be 'step' or 'epoch', got {scheduler_interval!r}"
            )
        self.network = network
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        self.train_accuracy = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.val_accuracy = MulticlassAccuracy(num_classes=num_classes, average="micro")

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logits = self.network(x)
        loss = self.loss(logits, y)
        self.train_accuracy(logits, y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        self.log("train_acc", self.train_accuracy, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.network(x)
        self.val_accuracy(logits, y)
        loss = self.loss(logits, y)
        self.log("val_loss", loss, on_epoch=True, sync_dist=True, batch_size=len(y))
        self.log("val_acc", self.val_accuracy, on_epoch=True)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(
            optimizer, **self._schedule_length(self.scheduler_factory)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval},
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refit a saved schedule whose length fit filled in to the length of training now.

        Resuming with more epochs changes ``total_steps``/``T_max``; the saved state would
        keep the old length (OneCycleLR raises when stepped past it). The state is rebuilt
        for the new length at the saved position.
        """
        if self.scheduler_factory is None:
            return
        length = self._schedule_length(self.scheduler_factory)
        states = checkpoint.get("lr_schedulers", [])
        for index, saved in enumerate(states):
            if all(saved.get(name) == value for name, value in length.items()):
                continue
            optimizer = self.optimizer_factory(self.parameters())
            fresh = self.scheduler_factory(optimizer, **length).state_dict()
            kept = ("last_epoch", "_step_count", "_last_lr")
            states[index] = {**fresh, **{key: saved[key] for key in kept if key in saved}}

    def _schedule_length(self, factory: functools.partial) -> dict[str, int]:
        """``{"total_steps": n}`` or ``{"T_max": n}`` if the scheduler takes it and it is unset."""
        if self.scheduler_interval == "step":
            length = int(self.trainer.estimated_stepping_batches)
        else:
            max_epochs = self.trainer.max_epochs
            assert max_epochs is not None  # Lightning makes None 1000 or -1 when fit starts
            length = int(max_epochs)
        parameters = inspect.signature(factory.func).parameters
        return {
            name: length
            for name in SCHEDULE_LENGTH_PARAMETERS
            if name in parameters and name not in factory.keywords
        }


def network_weights_from_checkpoint(checkpoint: dict[str, Any]) -> dict[str, Tensor]:
    """The bare network's weights inside a Lightning checkpoint of a ``Classifier``."""
    prefix = "network."
    return {
        name[len(prefix) :]: tensor
        for name, tensor in checkpoint["state_dict"].items()
        if name.startswith(prefix)
    }
