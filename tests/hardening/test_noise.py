"""A run prints what a user can act on: not Lightning's litlogger advertisement, not torch's
``LeafSpec`` deprecation, not the logging-interval warning (the interval follows the number
of batches instead, so each epoch logs its train metrics)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAST = [str(REPO / "configs" / n) for n in ("base.gin", "models/resnet.gin", "debug/fast.gin")]
NOISE = ("litlogger", "LeafSpec", "smaller than the logging interval", "`weights_only` was not set")


@pytest.mark.slow
def test_a_run_prints_no_unactionable_noise(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ginpipe.cli", "run", *FAST, "--root", "exp", "--name", "n"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    for noise in NOISE:
        assert noise not in done.stderr, done.stderr
    assert "run completed" in done.stderr
    metrics = tmp_path / "exp" / tmp_path.name / "n" / "logs" / "metrics.csv"
    with open(metrics, newline="") as file:
        rows = list(csv.DictReader(file))
    assert any(row.get("train_loss") for row in rows)  # 3 batches still log train metrics


def test_a_bound_logging_interval_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytorch_lightning import Trainer

    from ginpipe.tasks.lightning import trainer as trainer_module

    trainer = Trainer(logger=False, enable_checkpointing=False, limit_train_batches=3)
    trainer_module.fit_logging_interval(trainer, 100)
    assert trainer.log_every_n_steps == 3
    monkeypatch.setattr(trainer_module, "is_trainer_arg_bound", lambda name: True)
    trainer.log_every_n_steps = 50  # as if the config bound it
    trainer_module.fit_logging_interval(trainer, 100)
    assert trainer.log_every_n_steps == 50
