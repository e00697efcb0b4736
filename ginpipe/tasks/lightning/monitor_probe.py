"""Check that a user's LightningModule logs ``fit.monitor``, before the first training step.

A LightningModule logs whatever names it chooses, so the shipped checks cannot know them from
the config. Lightning finds a monitored name that is never logged only once validation has
run, after a whole epoch of training. The probe trains a copy of the module for one batch and
validates it on one batch, with the random number generators put back afterwards: the real
training starts exactly as it would have, and a typo costs seconds, not an epoch.
"""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ginpipe import ConfigError, did_you_mean


def logged_names(
    module: pl.LightningModule, train_set: Dataset, val_set: Dataset, accelerator: Any
) -> set[str]:
    """The metric names ``module`` logs in one training and one validation step."""
    probe = copy.deepcopy(module)
    with _random_state_kept():
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=1,
            max_steps=1,
            limit_train_batches=1,
            limit_val_batches=1,
            num_sanity_val_steps=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(probe, _first_batch(train_set), _first_batch(val_set))
    return set(trainer.callback_metrics) | set(trainer.logged_metrics)


def check_monitor(
    monitor: str,
    module: pl.LightningModule,
    train_set: Dataset,
    val_set: Dataset,
    accelerator: Any,
) -> None:
    """One line naming what the module logs when ``monitor`` is not among it."""
    logged = logged_names(module, train_set, val_set, accelerator)
    if monitor in logged:
        return
    raise ConfigError(
        f"fit.monitor={monitor!r} is not a metric the model logs; it logs "
        f"{', '.join(sorted(logged)) or 'nothing'}{did_you_mean(monitor, sorted(logged))}",
        binding="fit.monitor",
    )


def _first_batch(dataset: Dataset) -> DataLoader:
    size = min(2, len(dataset))  # type: ignore[arg-type]
    return DataLoader(Subset(dataset, range(size)), batch_size=size, num_workers=0)


@contextlib.contextmanager
def _random_state_kept() -> Iterator[None]:
    """Python's, NumPy's and torch's generators as they were before the probe."""
    python, numpy, cpu = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)
        torch.random.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
