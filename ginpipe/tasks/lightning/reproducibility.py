"""Make each training epoch depend only on (seed, epoch), not on what ran before it.

A resumed run starts with fresh random generators. If shuffling or dropout drew from the
global generators as they stood when the epoch began, epoch 2 of a resumed run would differ
from epoch 2 of an uninterrupted one. Lightning calls ``set_epoch`` on a
``DistributedSampler`` every epoch, and ``EpochSeeding`` reseeds the generators likewise.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import Dataset, DistributedSampler


def epoch_shuffling_sampler(dataset: Dataset, seed: int, trainer: pl.Trainer) -> DistributedSampler:
    """A shuffling sampler whose order is a function of (seed, epoch) for this rank's shard.

    Also right for a single process (one replica). Lightning keeps a ``DistributedSampler``
    it is given instead of injecting its own, so this one must already know the world.
    """
    return DistributedSampler(
        dataset,
        num_replicas=trainer.world_size,
        rank=trainer.global_rank,
        shuffle=True,
        seed=seed,
    )


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """A well-mixed 32-bit seed for one epoch on one rank."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


class EpochSeeding(pl.Callback):
    """Reseed ``random``, NumPy and torch at the start of every training epoch."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seed = epoch_seed(self.seed, trainer.current_epoch, trainer.global_rank)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)


def epoch_in_progress(checkpoint: dict[str, Any]) -> int:
    """The epoch a run resumed from ``checkpoint`` trains first: the interrupted epoch for a
    mid-epoch checkpoint, the next one for an end-of-epoch checkpoint. It is the value
    Lightning passes to ``set_epoch`` (the fit loop's processed-epoch count)."""
    return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
