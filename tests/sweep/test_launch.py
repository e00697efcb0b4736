"""How local workers share a machine, and what a sweep refuses to launch."""

from __future__ import annotations

from pathlib import Path

import pytest

from ginpipe.base.errors import ConfigError
from ginpipe.sweep import launch
from ginpipe.sweep.definition import Sweep
from ginpipe.sweep.space import Param, Space
from ginpipe.sweep.worker import THREADS_ENV


def a_sweep(tmp_path: Path, jobs: int) -> Sweep:
    space = Space(["base"], [], [Param("LR", "grid", "-", ("1", "2"))])
    return Sweep(tmp_path / "p" / "sweep-x", space, trials=2, jobs=jobs)


def test_each_gpu_worker_gets_its_own_device(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    environments = launch.worker_environments(a_sweep(tmp_path, jobs=2))
    assert [env["CUDA_VISIBLE_DEVICES"] for env in environments] == ["2", "5"]
    launch.check_gpus(2)
    with pytest.raises(ConfigError, match=r"--jobs 3 needs 3 GPUs .* shows 2"):
        launch.check_gpus(3)


def test_cpu_workers_split_the_cores(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(launch.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    environments = launch.worker_environments(a_sweep(tmp_path, jobs=3))
    assert [env["OMP_NUM_THREADS"] for env in environments] == ["2", "2", "2"]
    assert all(env[THREADS_ENV] == "2" for env in environments)
    assert all(
        "CUDA_VISIBLE_DEVICES" not in env or not env["CUDA_VISIBLE_DEVICES"] for env in environments
    )
    launch.check_gpus(16)  # no GPU: any number of CPU workers


@pytest.mark.parametrize(
    ("line", "several"),
    [
        ("Trainer.devices = 2", True),
        ("Trainer.devices = [0, 1]", True),
        ("Trainer.num_nodes = 2", True),
        ("Trainer.devices = 1", False),
        ("Trainer.devices = 'auto'", False),
    ],
)
def test_a_trial_on_several_devices_runs_as_its_own_process(line: str, several: bool) -> None:
    bindings = f"Trainer.accelerator = 'cpu'\n{line}\n"
    assert launch.several_devices(bindings) is several


def test_the_objective_is_a_final_metric_or_the_best_logged_epoch(tmp_path: Path) -> None:
    from ginpipe.sweep.worker import objective

    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "metrics.csv").write_text(
        "epoch,step,val_acc,val_loss,train_loss\n0,9,0.5,1.2,\n0,9,,,1.5\n1,19,0.75,0.9,\n"
        "2,29,0.7,0.8,\n"
    )
    assert objective(tmp_path, {"accuracy": 0.9}, "accuracy", "maximize") == 0.9
    assert objective(tmp_path, {"accuracy": 0.9}, "val_acc", "maximize") == 0.75
    assert objective(tmp_path, {}, "val_loss", "minimize") == 0.8
    assert objective(tmp_path, {"accuracy": float("nan")}, "accuracy", "maximize") is None
    assert objective(tmp_path, {}, "f1", "maximize") is None


def test_slurm_needs_sbatch(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="sbatch"):
        launch.launch_submitit(a_sweep(tmp_path, jobs=2), cluster="slurm")


def test_without_fit_the_objective_is_the_main_metric_said_to_be_the_test_score() -> None:
    from loguru import logger

    from ginpipe.sweep.launch import default_objective

    said: list[str] = []
    sink = logger.add(said.append, level="WARNING", format="{message}")
    try:
        assert default_objective([], "f1_macro") == ("f1_macro", "maximize")
    finally:
        logger.remove(sink)
    assert len(said) == 1 and "test split" in said[0]
