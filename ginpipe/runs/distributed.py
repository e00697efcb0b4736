"""Who this process is in a multi-process run, and how ranks agree on one run directory.

Lightning's ``ddp`` strategy re-runs the command line for ranks 1..N-1; torchrun and
SLURM start every rank at once. Either way all ranks must land in one run directory and
only the global rank 0 writes run files. Writes are gated on the GLOBAL rank (``RANK``),
never ``LOCAL_RANK``: on several nodes there is one local rank 0 per node.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUN_DIR_ENV = "GINPIPE_RUN_DIR"

# What launchers set to tell a process who it is. A fresh, independent run (a test, a
# benchmark trial) must not inherit any of them.
LAUNCHER_VARIABLES = (
    RUN_DIR_ENV,
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "NODE_RANK",
    "SLURM_NTASKS",
    "SLURM_PROCID",
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "TORCHELASTIC_RUN_ID",
)


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


def trained_world(ranks: Ranks) -> Ranks:
    """The ranks as training saw them: Lightning's ``ddp`` launcher starts ranks 1..N-1
    only inside ``fit``, after rank 0 had recorded itself as a single process."""
    import sys

    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return ranks
    size = dist.get_world_size()
    if size == ranks.world_size:
        return ranks
    return Ranks(ranks.rank, size, "lightning" if ranks.launcher == "single" else ranks.launcher)


def inherited_run_dir(ranks: Ranks) -> Path | None:
    """The run directory decided by rank 0, handed down through the environment.

    Only a rank launched for a run reads it (DDP children, which Lightning starts with
    LOCAL_RANK and WORLD_SIZE set): a value left in a user's shell, or by an earlier run in
    the same Python process, never redirects a fresh run.
    """
    value = os.environ.get(RUN_DIR_ENV)
    if not value or (ranks.world_size <= 1 and ranks.rank == 0):
        return None
    return Path(value)


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
    if not run_id or run_id == "none" or _is_uuid(run_id):
        return None  # none given: torchrun --standalone (or one node) makes up a uuid4
    return f"torchrun-{run_id}"


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def uses_agent_store() -> bool:
    """torchrun's agent hosts a key-value store every worker can reach."""
    return os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True" and "MASTER_PORT" in os.environ


def _launch_key(key: str) -> str:
    """A key of this launch in torchrun's agent store (rendezvous id and restart count)."""
    scope = f"ginpipe/{os.environ.get('TORCHELASTIC_RUN_ID', 'none')}/"
    return scope + f"{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/{key}"


def _agent_store(timeout_s: float) -> Any:
    from datetime import timedelta

    import torch.distributed as dist

    return dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        is_master=False,
        timeout=timedelta(seconds=timeout_s),
    )


def announce_rank0_failure(message: str) -> None:
    """Rank 0 stopped: tell the ranks waiting for its results (under torchrun)."""
    if not uses_agent_store():
        return
    with contextlib.suppress(Exception):  # a gone store: the agent stops the workers
        _agent_store(30).set(_launch_key("rank0_failed"), message or "failed")


def rank0_failure() -> str | None:
    """Rank 0's failure announced in this launch, or None (always None outside torchrun)."""
    if not uses_agent_store():
        return None
    store, key = _agent_store(30), _launch_key("rank0_failed")
    return store.get(key).decode() if store.check([key]) else None


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
