"""A user's own models: a LightningModule is trained as itself (its steps, optimizer and
logged metrics), with checkpoints, resume and evaluation still ginpipe's; settings it would
ignore are refused; the shipped LR macro reaches the optimizer.

Each test runs the real pipeline on the bundled digits through the CLI, in process.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import ToyProject

import ginpipe

pytestmark = pytest.mark.slow

LIT_MODULE = '''
import pytorch_lightning as pl
import torch
from torch import nn


class LitNet(pl.LightningModule):
    """Its own loss name, optimizer (SGD) and learning rate."""

    def __init__(self, num_classes, input_shape, lr=0.05, hidden=32):
        super().__init__()
        size = 1
        for dim in input_shape:
            size *= dim
        self.lr = lr
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(size, hidden), nn.ReLU(),
                                 nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("my_loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("my_val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)

    def predict_step(self, batch, batch_idx):
        """Scores for evaluation and predict: used instead of forward."""
        PREDICT_CALLS.append(len(batch))
        return self(batch)


PREDICT_CALLS = []
'''

OWN = """
fit.model = @litmodels_{tag}.LitNet
litmodels_{tag}.LitNet.lr = 0.05
fit.monitor = 'my_val_loss'
fit.monitor_mode = 'min'
Trainer.max_epochs = {epochs}
Trainer.accelerator = 'cpu'
Trainer.deterministic = True
Trainer.enable_model_summary = False
"""


@pytest.fixture
def project(tmp_path, monkeypatch) -> ToyProject:
    """An empty folder of the user's (no local base.gin: `base` is the shipped one)."""
    path = tmp_path / "proj"
    path.mkdir()
    monkeypatch.chdir(path)
    return ToyProject(path)


@pytest.fixture
def lit_project(project, monkeypatch):
    tag = abs(hash(str(project.path))) % 10**8
    project.write(f"litmodels_{tag}.py", LIT_MODULE)
    monkeypatch.syspath_prepend(str(project.path))
    yield project, tag
    sys.modules.pop(f"litmodels_{tag}", None)


def _metrics_columns(run_dir: Path) -> list[str]:
    with (run_dir / "logs" / "metrics.csv").open() as f:
        return next(csv.reader(f))


def _predictions(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "predictions.csv")


def _optimizer_group(run_dir: Path) -> dict:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return checkpoint["optimizer_states"][0]["param_groups"][0]


def test_a_lightning_module_is_trained_as_itself(lit_project, cli):
    project, tag = lit_project
    project.write("own.gin", OWN.format(tag=tag, epochs=2))
    result = cli("run", "base", "own.gin", "--name", "lit")
    assert result.exit_code == 0, result.output
    run_dir = project.run_dir("lit")
    assert "my_loss_epoch" in _metrics_columns(run_dir) or "my_loss" in _metrics_columns(run_dir)
    assert "train_acc" not in _metrics_columns(run_dir)  # not the shipped classifier
    group = _optimizer_group(run_dir)
    assert group["lr"] == 0.05 and group["momentum"] == 0.9  # its own SGD
    assert project.run_json("lit")["metrics"]["accuracy"] > 0.5  # evaluated with the report
    assert sys.modules[f"litmodels_{tag}"].PREDICT_CALLS  # through its own predict_step
    operative = (run_dir / "operative.gin").read_text()
    assert "LitNet.lr = 0.05" in operative and "fit.monitor = 'my_val_loss'" in operative
    assert "fit.scheduler" not in operative and "fit.loss" not in operative  # not used
    assert "AdamW" not in operative and "OneCycleLR" not in operative  # only through those
    # the operative config alone is the config that ran: the same cache keys
    again = cli("run", run_dir / "operative.gin", "--name", "again")
    assert again.exit_code == 0, again.output
    assert project.task_status("again")["fit"] == "cached"
    predicted = ginpipe.load_run(run_dir).predict(split="test")
    assert len(predicted) == len(_predictions(run_dir))


def test_a_resumed_lightning_module_ends_as_an_uninterrupted_one(lit_project, cli):
    project, tag = lit_project
    project.write("own.gin", OWN.format(tag=tag, epochs=3))
    # Another root: its cache must not hand the resumed run the finished model.
    assert cli("run", "base", "own.gin", "--name", "whole", "--root", "other").exit_code == 0
    assert (
        cli("run", "base", "own.gin", "--name", "part", "-m", "Trainer.max_epochs=2").exit_code == 0
    )
    resumed = cli("resume", project.run_dir("part"), "-m", "Trainer.max_epochs=3")
    assert resumed.exit_code == 0, resumed.output
    whole_dir = project.path / "other" / project.path.name / "whole"
    whole = torch.load(whole_dir / "checkpoints" / "last.ckpt", weights_only=True)
    part = torch.load(project.run_dir("part") / "checkpoints" / "last.ckpt", weights_only=True)
    assert part["epoch"] == whole["epoch"]
    for key, tensor in whole["state_dict"].items():
        assert torch.equal(tensor, part["state_dict"][key]), key


def test_fit_bindings_a_lightning_module_would_ignore_are_refused(lit_project, cli):
    project, tag = lit_project
    project.write("own.gin", OWN.format(tag=tag, epochs=1))
    result = cli("run", "base", "own.gin", "--name", "x", "-m", "fit.optimizer=@AdamW")
    assert result.exit_code == 2
    assert "fit.optimizer is set, but fit.model LitNet is a LightningModule" in result.output
    assert project.run_dirs() == []


def test_the_lr_macro_reaches_the_optimizer(project, cli):
    result = cli("run", "base", "models/resnet", "debug/fast", "--name", "lr", "-m", "LR=0.02")
    assert result.exit_code == 0, result.output
    group = _optimizer_group(project.run_dir("lr"))
    assert group["max_lr"] == 0.02  # one-cycle peaks at LR
    assert group["initial_lr"] == pytest.approx(0.02 / 25)


def test_operative_gin_of_the_default_pipeline_is_the_whole_config_that_ran(project, cli):
    """The optimizer and schedule fit builds itself, and the macros, are in it; composing it
    alone gives every cache key of the run again."""
    result = cli("run", "base", "models/resnet", "debug/fast", "--name", "one", "-m", "LR=0.0123")
    assert result.exit_code == 0, result.output
    text = (project.run_dir("one") / "operative.gin").read_text()
    assert "AdamW.lr = %LR" in text and "OneCycleLR.max_lr = %LR" in text
    assert "LR = 0.0123" in text and "BATCH_SIZE = " in text and "SEED = " in text
    assert "Trainer.max_epochs = 1" in text and "ResNet.width = " in text
    again = cli("run", project.run_dir("one") / "operative.gin", "--name", "again")
    assert again.exit_code == 0, again.output
    status = project.task_status("again")
    assert {name: status[name] for name in ("load_sklearn", "split_dataset", "fit")} == {
        "load_sklearn": "cached",
        "split_dataset": "cached",
        "fit": "cached",
    }


def test_a_monitor_the_module_never_logs_is_one_line_naming_what_it_logs(lit_project, cli):
    """Found by one probing step before training starts (Lightning would find it only after
    a whole epoch, with a message suggesting `log`)."""
    project, tag = lit_project
    own = OWN.format(tag=tag, epochs=2).replace("'my_val_loss'", "'my_val_los'")
    project.write("own.gin", own)
    result = cli("run", "base", "own.gin", "--name", "lit")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert "fit.monitor='my_val_los' is not a metric the model logs" in errors[0]
    assert "my_val_loss" in errors[0] and "HINT" not in errors[0]
    assert "(did you mean 'my_val_loss'?)" in errors[0]
    checkpoints = project.run_dir("lit") / "checkpoints"
    assert not checkpoints.exists() or not any(checkpoints.iterdir())  # never trained
