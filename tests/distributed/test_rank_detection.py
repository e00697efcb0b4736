"""Who writes: only the GLOBAL rank 0. ``LOCAL_RANK`` is 0 once per node, so gating on it
would make every node's first process a writer on shared storage."""

from __future__ import annotations

import pytest

from ginpipe.core.state import RunContext
from ginpipe.runs import distributed

LAUNCHER_VARIABLES = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "NODE_RANK",
    "GROUP_RANK",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_LOCALID",
    "TORCHELASTIC_RUN_ID",
    "TORCHELASTIC_USE_AGENT_STORE",
    distributed.RUN_DIR_ENV,
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def detect_with(env: pytest.MonkeyPatch, **values: object) -> distributed.Ranks:
    for name, value in values.items():
        env.setenv(name, str(value))
    return distributed.detect()


def test_second_nodes_local_rank_0_is_not_main(env) -> None:
    ranks = detect_with(env, LOCAL_RANK=0, RANK=1, WORLD_SIZE=2, TORCHELASTIC_RUN_ID="none")
    assert (ranks.rank, ranks.world_size, ranks.launcher) == (1, 2, "torchrun")
    assert not ranks.is_main
    assert not RunContext(dir=".", name="n", project="p", rank=ranks.rank).is_main


def test_global_rank_0_is_main_whatever_the_local_rank(env) -> None:
    ranks = detect_with(env, LOCAL_RANK=0, RANK=0, WORLD_SIZE=4, TORCHELASTIC_RUN_ID="none")
    assert ranks.is_main and ranks.world_size == 4


def test_rank_and_world_size_without_torchrun_are_still_ranks(env) -> None:
    ranks = detect_with(env, LOCAL_RANK=0, RANK=2, WORLD_SIZE=4)
    assert (ranks.rank, ranks.launcher, ranks.is_main) == (2, "env", False)


def test_a_lightning_child_on_the_second_node_is_not_main(env) -> None:
    ranks = detect_with(
        env,
        LOCAL_RANK=0,
        NODE_RANK=1,
        LOCAL_WORLD_SIZE=2,
        WORLD_SIZE=4,
        **{distributed.RUN_DIR_ENV: "/runs/p/n"},
    )
    assert (ranks.rank, ranks.launcher, ranks.is_main) == (2, "lightning", False)


def test_the_process_started_on_a_second_node_is_not_main(env) -> None:
    # Lightning's own multi-node launch: the user starts `ginpipe run` with NODE_RANK=1.
    assert not detect_with(env, NODE_RANK=1).is_main


def test_a_stray_local_rank_alone_does_not_make_a_child(env) -> None:
    ranks = detect_with(env, LOCAL_RANK=1)
    assert (ranks.rank, ranks.world_size, ranks.launcher) == (0, 1, "single")


def test_nothing_set_is_a_single_process(env) -> None:
    assert distributed.detect() == distributed.Ranks(0, 1, "single")


@pytest.mark.parametrize(
    ("run_id", "name"),
    [
        ("none", None),  # static rendezvous (--master-addr/--master-port)
        ("exp7", "torchrun-exp7"),  # --rdzv-id exp7: a relaunch continues the same run
        # --standalone, or one node without --master-port: torchrun makes up a uuid4 per
        # launch; that is no name (rank 0 names the run and shares it instead)
        ("6f1c2f0e-8d3b-4f5e-9a7c-2b1d0e4c9a55", None),
    ],
)
def test_a_torchrun_rendezvous_id_names_the_run(env, run_id, name) -> None:
    env.setenv("TORCHELASTIC_RUN_ID", run_id)
    assert distributed.launcher_run_name() == name
