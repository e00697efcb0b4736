"""SLURM without a cluster: rank detection and run names from a faked environment, and a
single-task job that is preempted (SIGTERM) and requeued under the same job id.

Every ``srun`` task of a job, and a requeued job, computes the same run name from the job
id without talking to the others, so they all land in (and continue) one directory.
"""

from __future__ import annotations

import csv
import os
import signal
import time
from pathlib import Path

import pytest
from launch import (
    FAST,
    clean_env,
    finish,
    ginpipe_command,
    read_json,
    run_args,
    run_dirs,
    start,
)

from ginpipe.base.errors import ConfigError
from ginpipe.runs import distributed
from ginpipe.runs.runner import RunRequest, run_path
from ginpipe.tasks.lightning.checkpoints import read_checkpoint

SLURM_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_PROCID",
    "SLURM_LOCALID",
    "SLURM_NODEID",
    "SLURM_NTASKS",
    "SLURM_JOB_NAME",
    "TORCHELASTIC_USE_AGENT_STORE",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in SLURM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def set_env(monkeypatch: pytest.MonkeyPatch, **values: object) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, str(value))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"SLURM_PROCID": 0, "SLURM_LOCALID": 0, "SLURM_NTASKS": 4}, (0, 4, "slurm")),
        ({"SLURM_PROCID": 3, "SLURM_LOCALID": 1, "SLURM_NTASKS": 4}, (3, 4, "slurm")),
        # the second node's first task: local id 0, global rank 2
        ({"SLURM_PROCID": 2, "SLURM_LOCALID": 0, "SLURM_NTASKS": 4}, (2, 4, "slurm")),
        # a one-task job is a plain single process
        ({"SLURM_PROCID": 0, "SLURM_LOCALID": 0, "SLURM_NTASKS": 1}, (0, 1, "single")),
    ],
)
def test_srun_tasks_are_ranked_by_their_global_task_id(env, values, expected) -> None:
    set_env(env, SLURM_JOB_ID=1234, **values)
    ranks = distributed.detect()
    assert (ranks.rank, ranks.world_size, ranks.launcher) == expected
    assert ranks.is_main == (expected[0] == 0)


def test_torchrun_inside_srun_ranks_by_torchrun(env) -> None:
    # One srun task per node starting torchrun: SLURM_PROCID is the node, RANK the process.
    set_env(env, SLURM_PROCID=0, SLURM_NTASKS=2, RANK=3, WORLD_SIZE=4, TORCHELASTIC_RUN_ID=7)
    ranks = distributed.detect()
    assert (ranks.rank, ranks.world_size, ranks.launcher) == (3, 4, "torchrun")
    assert not ranks.is_main


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({}, None),
        ({"SLURM_JOB_ID": 1234}, "slurm-1234"),
        # an array task: the array id and the task index, stable across requeues
        (
            {"SLURM_JOB_ID": 1240, "SLURM_ARRAY_JOB_ID": 1234, "SLURM_ARRAY_TASK_ID": 6},
            "slurm-1234-6",
        ),
    ],
)
def test_scheduler_run_name_comes_from_the_job(env, values, name) -> None:
    set_env(env, **values)
    assert distributed.scheduler_run_name() == name


def test_every_task_of_a_job_picks_the_same_directory(env, tmp_path: Path) -> None:
    set_env(env, SLURM_JOB_ID=1234, SLURM_NTASKS=2)
    request = RunRequest(root=tmp_path, project="p")
    paths = set()
    for procid in (0, 1):
        env.setenv("SLURM_PROCID", str(procid))
        paths.add(run_path(request, None, distributed.detect()))
    assert paths == {tmp_path / "p" / "slurm-1234"}
    assert not (tmp_path / "p").exists()  # deciding the name creates nothing


def test_an_explicit_name_wins_over_the_job_id(env, tmp_path: Path) -> None:
    set_env(env, SLURM_JOB_ID=1234)
    request = RunRequest(root=tmp_path, project="p", name="mine")
    assert run_path(request, None, distributed.detect()) == tmp_path / "p" / "mine"


def test_ranks_started_together_without_any_shared_name_are_refused(env, tmp_path) -> None:
    set_env(env, SLURM_PROCID=1, SLURM_NTASKS=2)  # srun outside a job id: nothing to agree on
    with pytest.raises(ConfigError, match="--name"):
        run_path(RunRequest(root=tmp_path, project="p"), None, distributed.detect())


# --- a single-task job, preempted and requeued ----------------------------------------------

PAUSE_GIN = """\
import pause_callback
fit.callbacks = [@PauseOnce()]
Trainer.max_epochs = 3
"""
SLURM_JOB = {
    "SLURM_JOB_ID": "1234",
    "SLURM_JOB_NAME": "train",
    "SLURM_NTASKS": "1",
    "SLURM_NNODES": "1",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
}


def wait_for(marker: Path, proc, deadline_s: float = 300) -> None:
    deadline = time.monotonic() + deadline_s
    while not marker.exists():
        assert proc.poll() is None, "the job ended before it paused"
        assert time.monotonic() < deadline, "the job never reached epoch 1"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_requeued_job_continues_in_the_same_directory(tmp_path: Path) -> None:
    root, marker = tmp_path / "root", tmp_path / "paused"
    (tmp_path / "pause.gin").write_text(PAUSE_GIN)
    args = run_args(root, configs=(*FAST, str(tmp_path / "pause.gin")))
    job_env = clean_env(PAUSE_MARKER=str(marker), **SLURM_JOB)

    first = start([*ginpipe_command(), *args], env=job_env)
    wait_for(marker, first)
    os.kill(first.pid, signal.SIGTERM)  # what SLURM sends before preempting a job
    preempted = finish(first)
    assert preempted.code == 143, preempted.tail()
    # Lightning ran inside its SLURM environment, auto-requeue handlers included.
    assert "SLURM auto-requeueing enabled" in preempted.stdout + preempted.stderr

    requeued = finish(start([*ginpipe_command(), *args], env=job_env))
    assert requeued.code == 0, requeued.tail()

    assert [d.name for d in run_dirs(root)] == ["slurm-1234"]
    run_dir = run_dirs(root)[0]
    record = read_json(run_dir / "run.json")
    assert record["attempts"] == 2
    assert [h["status"] for h in record["history"]] == ["interrupted", "completed"]
    assert record["status"] == "completed"
    # Training continued in epoch 1 where the first attempt stopped; epoch 0 was not redone.
    with open(run_dir / "logs" / "metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row["val_acc"]]
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]
    assert "Restoring states from the checkpoint" in requeued.stdout + requeued.stderr
    last = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 3 * 3  # three epochs of three batches, in all
