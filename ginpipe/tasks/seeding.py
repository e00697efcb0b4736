"""Seed every random number generator a run touches, from one configured value."""

from __future__ import annotations

import os
import random
import sys

import numpy as np

from ginpipe import ConfigError, TaskView, task

MAX_SEED = 2**32 - 1  # the range NumPy accepts; Lightning picks a random seed outside it


@task(writes=("seed",), cache=False)
def seed_everything(state: TaskView, *, seed: int = 0, deterministic: bool = False) -> dict:
    """Seed Python ``random``, NumPy, torch and Lightning's dataloader workers.

    Not cached: seeding is a side effect that every process (each DDP rank, each resume)
    has to repeat. ``deterministic`` also makes torch choose deterministic kernels, which
    are slower but give bit-identical results on reruns.

    torch is seeded when it is already imported, which it is whenever a task of the
    pipeline computes with it (composing a config imports the modules it names). A
    scikit-learn pipeline therefore never pays for importing torch here.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(
            f"seed_everything.seed must be an integer in [0, {MAX_SEED}], got {seed!r}"
        )
    if "torch" in sys.modules:
        _seed_torch(seed, deterministic)
    else:
        random.seed(seed)
        np.random.seed(seed)
        # What Lightning's seed_everything records, so a later Lightning import agrees.
        os.environ["PL_GLOBAL_SEED"] = str(seed)
        os.environ["PL_SEED_WORKERS"] = "1"
    return {"seed": seed}


def _seed_torch(seed: int, deterministic: bool) -> None:
    import pytorch_lightning as pl
    import torch

    # Seeds `random`, NumPy and torch (CPU and CUDA); `workers=True` derives distinct,
    # reproducible seeds for every dataloader worker.
    pl.seed_everything(seed, workers=True, verbose=False)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        torch.backends.cudnn.benchmark = False
        # cuBLAS is only reproducible with a fixed workspace; must be set before CUDA work.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
