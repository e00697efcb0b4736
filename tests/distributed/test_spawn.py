"""Spawned processes never see the config (gin's state lives in the parent only).

``ddp_spawn`` would start training ranks with gin's defaults, so it is refused before any
work with a one-line pointer to ``ddp``. DataLoader workers under ``spawn`` are fine: the
datasets hold plain values and resolve nothing from gin.
"""

from __future__ import annotations

import pytest
from launch import (
    cache_entries,
    finish,
    ginpipe_command,
    read_json,
    run_args,
    run_dirs,
    start,
)

pytestmark = pytest.mark.slow


def test_ddp_spawn_is_refused_before_any_work(tmp_path) -> None:
    root = tmp_path / "root"
    mods = ("--mod", "Trainer.strategy='ddp_spawn'", "--mod", "Trainer.devices=2")
    result = finish(start([*ginpipe_command(), *run_args(root, *mods)]))
    assert result.code == 2, result.tail()
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "'ddp'" in lines[0] and "ddp_spawn" in lines[0]
    assert run_dirs(root) == []
    assert not (root / ".cache").exists() or cache_entries(root) == []


def test_dataloader_workers_started_with_spawn_train_and_evaluate(tmp_path) -> None:
    root = tmp_path / "root"
    mods = ("--mod", "fit.num_workers=2", "--mod", "fit.multiprocessing_context='spawn'")
    result = finish(start([*ginpipe_command(), *run_args(root, *mods)]))
    assert result.code == 0, result.tail()
    (run_dir,) = run_dirs(root)
    record = read_json(run_dir / "run.json")
    assert record["status"] == "completed"
    assert "fit.num_workers=2" in record["overrides"]
    log = (run_dir / "logs" / "metrics.csv").read_text()
    assert "train_loss" in log.splitlines()[0] and len(log.splitlines()) > 1
