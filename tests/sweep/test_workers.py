"""Sweeps in other processes: ``kill -9`` of the sweep and ``--resume``, and a SLURM array
through submitit's local executor (``--jobs 2`` is in test_console.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import optuna
import pytest

from ginpipe.sweep import definition
from ginpipe.sweep.study import reading_storage

TOY_DIR = Path(__file__).resolve().parents[1] / "toy"
NAPPING = "run.tasks = [@make_numbers, @add_up, @nap, @report]\nnap.seconds = 0.0\n"


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "GINPIPE_"))}
    env["PYTHONPATH"] = str(TOY_DIR)
    return env


def sweep_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ginpipe.cli", "sweep", *args]


def trials_of(sweep_dir: Path) -> list[optuna.trial.FrozenTrial]:
    sweep = definition.load(sweep_dir)
    study = optuna.load_study(study_name=sweep.study_name, storage=reading_storage(sweep))
    return study.get_trials()


def record(path: Path) -> dict:
    return json.loads((path / "run.json").read_text())


def the_sweep(project) -> Path:
    [sweep] = sorted(project.runs.glob("sweep-*"))
    return sweep


@pytest.mark.slow
def test_kill_9_then_resume_completes_the_budget_and_runs_nothing_twice(toy_project) -> None:
    toy_project.write("nap.gin", NAPPING)
    hold = toy_project.path / "hold"
    hold.write_text("")
    # one grid value holds its trial (nap waits while the file exists): the sweep is killed
    # there, with the trials before it done and the ones after it not started
    holds = "nap.hold='none-a','none-b','hold','none-c'"
    process = subprocess.Popen(
        sweep_command("base.gin", "nap.gin", "-m", holds),
        cwd=toy_project.path,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        held = None
        while held is None and time.monotonic() < deadline:
            time.sleep(0.1)
            for path in toy_project.runs.glob("sweep-*/trial-*"):
                # a trial's folder exists a moment before its files are written
                overrides = path / "overrides.txt"
                if (
                    overrides.is_file()
                    and "nap.hold='hold'" in overrides.read_text(errors="replace")
                    and (path / "run.json").is_file()
                ):
                    held = path
        assert held is not None, "the held trial never started"
        time.sleep(0.3)  # inside nap
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    sweep = the_sweep(toy_project)
    before = {
        p.name: (p / "run.json").stat().st_mtime_ns
        for p in sweep.glob("trial-*")
        if record(p)["status"] == "completed"
    }
    assert record(held)["status"] == "running"
    running = [t.number for t in trials_of(sweep) if t.state.name == "RUNNING"]
    assert running == [int(held.name.split("-")[1])]
    table = subprocess.run(
        [sys.executable, "-m", "ginpipe.cli", "runs", "--sweep", str(sweep)],
        cwd=toy_project.path,
        env=environment(),
        capture_output=True,
        text=True,
    ).stdout
    assert f"{held.name}  stopped" in table

    hold.unlink()
    resumed = subprocess.run(
        sweep_command("--resume", str(sweep)),
        cwd=toy_project.path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = trials_of(sweep)
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]  # numbering went on, no restart
    assert {t.state.name for t in trials} == {"COMPLETE"}
    assert sorted(t.params["nap.hold"] for t in trials) == sorted(
        ["'none-a'", "'none-b'", "'hold'", "'none-c'"]
    )
    # the trials done before the kill were left alone; the killed one resumed in place
    for name, mtime in before.items():
        assert (sweep / name / "run.json").stat().st_mtime_ns == mtime
        assert record(sweep / name)["attempts"] == 1
    assert record(held)["attempts"] == 2 and record(held)["status"] == "completed"
    assert sorted(p.name for p in sweep.glob("trial-*")) == [f"trial-000{i}" for i in range(4)]
    assert toy_project.calls("report") == 4  # each trial reported exactly once


@pytest.mark.slow
def test_a_slurm_array_through_submitit_runs_one_trial_per_element(
    toy_project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ginpipe.sweep import launch

    pytest.importorskip("submitit")
    monkeypatch.setenv("PYTHONPATH", str(TOY_DIR))
    # as on a cluster: every element sees its array job and task; trials keep their names
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_JOB_ID", "4243")
    # a login node has sbatch (a slurm sweep is refused without it); submitit's local
    # executor then runs the array here, and sbatch itself is never called
    bin_dir = toy_project.path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    sweep = launch.create(
        ["base.gin"],
        ["add_up.scale=1,2"],
        trials=None,
        jobs=2,
        launcher="slurm",
        sampler=None,
        seed=0,
        pruner="median",
        metric=None,
        direction="maximize",
        storage=None,
        max_failure_rate=0.5,
        root=toy_project.root,
        project=None,
        slurm={"partition": "gpu", "time_min": 5, "gpus_per_trial": 0},
        argv=["test"],
    )
    code = launch.launch_submitit(sweep, cluster="local", wait=True)
    assert code == 0
    trials = trials_of(sweep.dir)
    assert sorted(t.number for t in trials) == [0, 1]
    assert {t.state.name for t in trials} == {"COMPLETE"}
    made = sorted(p.name for p in sweep.dir.iterdir() if p.name.startswith(("trial", "slurm-")))
    assert made == ["trial-0000", "trial-0001"]
    assert (sweep.dir / "slurm").is_dir()  # submitit's job files stay in the sweep folder
    # nothing is left to submit once the budget is spent
    assert launch.launch_submitit(sweep, cluster="local", wait=True) == 0
    assert len(trials_of(sweep.dir)) == 2
    assert (sweep.dir / "optimization_history.png").is_file()  # drawn by the last element
    assert all(isinstance(t.datetime_start, datetime) for t in trials)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_parallel_workers_never_propose_the_same_configuration(toy_project, sampler) -> None:
    """Two workers seeded alike once proposed trials in equal pairs (0=1, 2=3, ...)."""
    toy_project.write(
        "space.gin",
        "add_up.scale = @uniform(0.1, 10.0)\nmake_numbers.n = @int(2, 400)\n",
    )
    result = subprocess.run(
        sweep_command(
            "base.gin", "space.gin", "--trials", "10", "--jobs", "2", "--sampler", sampler,
            "--metric", "total",
        ),
        cwd=toy_project.path, env=environment(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    trials = trials_of(the_sweep(toy_project))
    assert len(trials) == 10
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 10


def test_a_trials_sampler_seed_depends_on_the_sweep_seed_and_the_trial_only() -> None:
    """A restarted worker (kill -9, then --resume) proposes trial N as any worker would, not
    trial 0's parameters again."""
    from ginpipe.sweep.study import trial_seed

    seeds = [trial_seed(0, number) for number in range(50)]
    assert len(set(seeds)) == 50
    assert seeds == [trial_seed(0, number) for number in range(50)]  # reproducible
    assert trial_seed(1, 3) != trial_seed(0, 3)
