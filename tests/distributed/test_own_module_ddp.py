"""A user's own LightningModule, trained as itself on two CPU ranks (DDP, gloo), from a
folder of the user's through the console script: the children Lightning starts re-run the
command line, import the user's module from the working directory, and share one run."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest
from launch import clean_env, ginpipe_command

pytestmark = pytest.mark.slow

MODULE = """
import pytorch_lightning as pl
import torch
from torch import nn


class LitDDP(pl.LightningModule):
    def __init__(self, num_classes, input_shape, lr=0.05):
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, num_classes)
        )

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("my_loss", loss, on_epoch=True, on_step=False, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("my_val_loss", nn.functional.cross_entropy(self(x), y), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
"""

CONFIG = """
fit.model = @ddpmodels.LitDDP
fit.monitor = 'my_val_loss'
fit.monitor_mode = 'min'
Trainer.max_epochs = 2
Trainer.enable_model_summary = False
Trainer.num_sanity_val_steps = 0
"""


def test_an_own_lightning_module_trains_on_two_ranks(tmp_path: Path) -> None:
    (tmp_path / "ddpmodels.py").write_text(MODULE)
    (tmp_path / "own.gin").write_text(CONFIG)
    env = clean_env()
    env.pop("PYTHONPATH", None)  # the working directory alone makes the module importable
    result = subprocess.run(
        [*ginpipe_command(), "run", "base", "own.gin", "trainer/ddp", "--name", "ddp"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "experiments" / tmp_path.name / "ddp"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["world_size"] == 2
    with (run_dir / "logs" / "metrics.csv").open() as f:
        columns = next(csv.reader(f))
    assert any(c.startswith("my_loss") for c in columns) and "train_acc" not in columns
    assert (run_dir / "run.rank1.log").is_file()
    assert record["metrics"]["accuracy"] > 0.5
