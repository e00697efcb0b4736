"""Seed every random number generator a run touches, from one configured value."""

from __future__ import annotations

import os

from ginpipe import task
from ginpipe.errors import ConfigError
from ginpipe.state import TaskView

MAX_SEED = 2**32 - 1  # the range NumPy accepts; Lightning picks a random seed outside it


@task(writes=("seed",), cache=False)
def seed_everything(state: TaskView, *, seed: int = 0, deterministic: bool = False) -> dict:
    """Seed Python ``random``, NumPy, torch and Lightning's dataloader workers.

    Not cached: seeding is a side effect that every process (each DDP rank, each resume)
    has to repeat. ``deterministic`` also makes torch choose deterministic kernels, which
    are slower but give bit-identical results on reruns.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(
            f"seed_everything.seed must be an integer in [0, {MAX_SEED}], got {seed!r}"
        )

    # Imported here so that `import ginpipe.tasks.seeding` stays cheap.
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
    return {"seed": seed}
