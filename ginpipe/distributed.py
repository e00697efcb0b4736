"""Who this process is in a multi-process run, and how ranks agree on one run directory.

Lightning's ``ddp`` strategy re-runs the command line for ranks 1..N-1; torchrun and
SLURM start every rank at once. Either way all ranks must land in one run directory and
only the global rank 0 writes run files. Writes are gated on the GLOBAL rank (``RANK``),
never ``LOCAL_RANK``: on several nodes there is one local rank 0 per node.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

RUN_DIR_ENV = "GINPIPE_RUN_DIR"


@dataclass(frozen=True)
class Ranks:
    rank: int
    world_size: int
    launcher: str  # "single" | "lightning" | "torchrun" | "slurm"

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _int(name: str, default: int = 0) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def detect() -> Ranks:
    """Read the launcher's environment (torchrun, SLURM ``srun``, Lightning children)."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        launcher = "torchrun" if "TORCHELASTIC_RUN_ID" in env else "env"
        return Ranks(_int("RANK"), _int("WORLD_SIZE", 1), launcher)
    if _int("SLURM_NTASKS", 1) > 1 and "SLURM_PROCID" in env:
        return Ranks(_int("SLURM_PROCID"), _int("SLURM_NTASKS", 1), "slurm")
    if "LOCAL_RANK" in env and RUN_DIR_ENV in env:
        # A child started by Lightning's ddp launcher: same command line, same env.
        local_world = _int("LOCAL_WORLD_SIZE", 0) or _int("WORLD_SIZE", 1)
        rank = _int("NODE_RANK") * local_world + _int("LOCAL_RANK")
        return Ranks(rank, _int("WORLD_SIZE", 1), "lightning")
    if _int("NODE_RANK") > 0:
        return Ranks(_int("NODE_RANK"), _int("WORLD_SIZE", 1), "lightning")
    return Ranks(0, 1, "single")


def inherited_run_dir() -> Path | None:
    """The run directory decided by rank 0, handed down through the environment."""
    value = os.environ.get(RUN_DIR_ENV)
    return Path(value) if value else None


def hand_down_run_dir(path: Path) -> None:
    """Child processes (DDP ranks, a requeued job's steps) inherit the run directory."""
    os.environ[RUN_DIR_ENV] = str(path.resolve())


def scheduler_run_name() -> str | None:
    """A name every rank computes alike without talking: the SLURM job (and array task)."""
    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    if not job:
        return None
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"slurm-{job}" + (f"-{task}" if task else "")


def launcher_run_name() -> str | None:
    """A torchrun rendezvous id, when the user gave one (``--rdzv-id``)."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    return f"torchrun-{run_id}" if run_id and run_id != "none" else None


def uses_agent_store() -> bool:
    """torchrun's agent hosts a key-value store every worker can reach."""
    return os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True" and "MASTER_PORT" in os.environ


def share_from_rank0(key: str, compute: Callable[[], str], timeout_s: float = 600.0) -> str:
    """Rank 0 computes a value (the run directory); the other ranks receive it.

    Uses torchrun's agent store, which lives for exactly one launch (keys are scoped by
    the rendezvous id and restart count), so a value can never leak from an older launch.
    """
    from datetime import timedelta

    import torch.distributed as dist

    store = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        is_master=False,
        timeout=timedelta(seconds=timeout_s),
    )
    scope = f"ginpipe/{os.environ.get('TORCHELASTIC_RUN_ID', 'none')}/"
    scope += f"{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/{key}"
    if detect().is_main:
        value = compute()
        store.set(scope, value)
        return value
    return store.get(scope).decode()
