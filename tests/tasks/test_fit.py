"""The fit task: checkpoints, logs, resume, reproducibility and the errors a user can act on."""

from __future__ import annotations

import csv
import errno
import functools
import pickle
import shutil
from pathlib import Path

import gin
import numpy as np
import pytest
import torch
from pytorch_lightning.loggers import CSVLogger

from ginpipe.base.errors import CheckpointError, ConfigError, NoSpaceError
from ginpipe.config import names
from ginpipe.core.state import RunContext, State, TaskView
from ginpipe.tasks.fit import fit
from ginpipe.tasks.lightning.checkpoints import AtomicCheckpointIO
from ginpipe.tasks.lightning.classifier import Classifier
from ginpipe.tasks.lightning.csv_logger import ContinuingCSVLogger
from ginpipe.tasks.lightning.factories import plain_factory
from ginpipe.tasks.lightning.trainer import extra_loggers
from ginpipe.tasks.models import build_model
from ginpipe.tasks.models.mlp import MLP
from ginpipe.tasks.models.resnet import ResNet

TRAINER_BINDINGS = {
    "max_epochs": 1,
    "accelerator": "cpu",
    "devices": 1,
    "deterministic": True,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
    "limit_train_batches": 3,
    "log_every_n_steps": 1,
}


def tiny_image_data(seed: int = 0, classes: int = 3) -> dict:
    """A learnable toy problem in the `data` format: the class shifts the pixel mean."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> dict:
        y = rng.integers(0, classes, n)
        x = rng.normal(size=(n, 1, 8, 8)) + y[:, None, None, None]
        return {"X": x.astype(np.float32), "y": y.astype(np.int64)}

    return {
        "kind": "arrays",
        "train": split(48),
        "val": split(16),
        "test": split(16),
        "classes": [f"c{i}" for i in range(classes)],
        "num_classes": classes,
        "input_shape": [1, 8, 8],
    }


@pytest.fixture(autouse=True)
def trainer_config():
    """Small, deterministic CPU training; other tests' bindings are cleared."""
    gin.clear_config()
    names.make_configurable("Trainer")
    names.make_configurable("AdamW")
    for name, value in TRAINER_BINDINGS.items():
        gin.bind_parameter(f"pytorch_lightning.Trainer.{name}", value)
    gin.bind_parameter("ginpipe.tasks.models.resnet.ResNet.width", 4)
    gin.bind_parameter("ginpipe.tasks.models.resnet.ResNet.blocks_per_stage", [1, 1])
    gin.bind_parameter("ginpipe.tasks.models.mlp.MLP.hidden_sizes", [16])
    gin.bind_parameter("ginpipe.tasks.models.mlp.MLP.dropout", 0.3)
    yield
    gin.clear_config()


def run_fit(run_dir: Path, max_epochs: int = 1, **params) -> dict:
    gin.bind_parameter("pytorch_lightning.Trainer.max_epochs", max_epochs)
    torch.manual_seed(0)  # what seed_everything does in a pipeline
    state = State(run=RunContext(dir=run_dir, name="t", project="p"))
    state.set("data", tiny_image_data())
    state.set("seed", 0)
    params.setdefault("model", ResNet)
    params.setdefault("batch_size", 8)
    return fit(TaskView(state, "fit", ("data", "seed")), **params)["model"]


def read_csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def last_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return checkpoint["state_dict"]


def test_fit_writes_checkpoints_and_logs_and_returns_a_storable_record(tmp_path):
    record = run_fit(tmp_path, max_epochs=2)

    checkpoints = tmp_path / "checkpoints"
    assert (checkpoints / "last.ckpt").is_file() and not (checkpoints / "last.ckpt").is_symlink()
    assert record["best_checkpoint"] is not None
    best = tmp_path / record["best_checkpoint"]  # relative to the run directory
    assert best.parent == checkpoints and best.name.startswith("best-")
    assert {row["epoch"] for row in read_csv_rows(tmp_path / "logs" / "metrics.csv")} == {"0", "1"}

    assert record["factory"] == "ginpipe.tasks.models.resnet.ResNet"
    assert record["kwargs"] == {"num_classes": 3, "input_shape": [1, 8, 8]}
    assert record["epochs"] == 2
    assert all(t.device.type == "cpu" for t in record["weights"].values())
    best_state = torch.load(best, weights_only=True)["state_dict"]
    assert torch.equal(record["weights"]["head.weight"], best_state["network.head.weight"])
    assert build_model(record)(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


def test_last_ckpt_is_refreshed_by_epochs_that_are_not_the_best(tmp_path):
    # "epoch" with mode "min" ranks epoch 0 best for good.
    record = run_fit(tmp_path, max_epochs=2, monitor="epoch", monitor_mode="min")
    assert record["best_checkpoint"].startswith("checkpoints/best-epoch=0-")
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 2 * TRAINER_BINDINGS["limit_train_batches"]


def test_resume_continues_the_epochs_and_the_csv_log(tmp_path):
    run_fit(tmp_path, max_epochs=1)
    first_rows = read_csv_rows(tmp_path / "logs" / "metrics.csv")

    record = run_fit(tmp_path, max_epochs=2)

    rows = read_csv_rows(tmp_path / "logs" / "metrics.csv")
    assert record["epochs"] == 2
    assert [row for row in rows if row["epoch"] == "0"] == first_rows
    assert {row["epoch"] for row in rows} == {"0", "1"}
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 2 * TRAINER_BINDINGS["limit_train_batches"]


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    # MLP with dropout: equality needs the data order and the RNG to depend on the epoch only.
    run_fit(tmp_path / "straight", max_epochs=2, model=MLP)
    run_fit(tmp_path / "resumed", max_epochs=1, model=MLP)
    torch.manual_seed(1234)  # the global RNG state when resuming must not matter
    run_fit(tmp_path / "resumed", max_epochs=2, model=MLP)

    straight, resumed = last_weights(tmp_path / "straight"), last_weights(tmp_path / "resumed")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[key], resumed[key]) for key in straight)


def test_a_moved_run_resumes_from_its_own_files_with_its_best_k_state(tmp_path):
    # "epoch" with mode "min": epoch 0 stays the best only if the ranking is restored.
    run_fit(tmp_path / "first", max_epochs=1, monitor="epoch", monitor_mode="min")
    (tmp_path / "first").rename(tmp_path / "moved")

    record = run_fit(tmp_path / "moved", max_epochs=2, monitor="epoch", monitor_mode="min")

    assert record["epochs"] == 2
    assert record["best_checkpoint"].startswith("checkpoints/best-epoch=0-")
    checkpoint = torch.load(tmp_path / "moved" / "checkpoints" / "last.ckpt", weights_only=True)
    assert str(tmp_path) not in repr(checkpoint["callbacks"])  # names only, no folder
    best_files = sorted(p.name for p in (tmp_path / "moved" / "checkpoints").glob("best-*"))
    assert best_files == [Path(record["best_checkpoint"]).name]


def test_a_copied_run_reads_its_own_best_checkpoint_never_the_original(tmp_path):
    run_fit(tmp_path / "original", max_epochs=1)
    shutil.copytree(tmp_path / "original", tmp_path / "copy")
    for best in (tmp_path / "original" / "checkpoints").glob("best-*"):
        best.write_bytes(b"the original's file must not be read")

    record = run_fit(tmp_path / "copy", max_epochs=1)  # finished: fit only reads the best
    best = torch.load(tmp_path / "copy" / record["best_checkpoint"], weights_only=True)
    assert torch.equal(record["weights"]["head.weight"], best["state_dict"]["network.head.weight"])


def test_a_missing_best_checkpoint_is_named_not_called_corrupt(tmp_path):
    record = run_fit(tmp_path, max_epochs=1)
    (tmp_path / record["best_checkpoint"]).unlink()
    with pytest.raises(CheckpointError, match="is missing from") as error:
        run_fit(tmp_path, max_epochs=1)
    assert "corrupt" not in str(error.value)


def test_a_mid_epoch_checkpoint_refreshes_last_ckpt_and_resumes(tmp_path):
    run_fit(tmp_path, max_epochs=1, checkpoint_every_n_steps=2)
    names = sorted(path.name for path in (tmp_path / "checkpoints").iterdir())
    assert "last.ckpt" in names and not any(name.startswith("last-") for name in names)

    record = run_fit(tmp_path, max_epochs=2, checkpoint_every_n_steps=2)
    assert record["epochs"] == 2


def test_a_checkpoint_of_another_width_is_a_checkpoint_error(tmp_path):
    run_fit(tmp_path)
    gin.bind_parameter("ginpipe.tasks.models.resnet.ResNet.width", 8)
    mismatch = r"last\.ckpt does not fit the configured model: 'network\.stem\.0\.weight'"
    with pytest.raises(CheckpointError, match=mismatch):
        run_fit(tmp_path, max_epochs=2)


def test_a_truncated_checkpoint_is_a_checkpoint_error(tmp_path):
    run_fit(tmp_path)
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"last\.ckpt is truncated or corrupt"):
        run_fit(tmp_path, max_epochs=2)


def test_atomic_checkpoint_io_never_leaves_a_partial_file(tmp_path, monkeypatch):
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"step": torch.tensor(1)}, path)

    def write_half_then_fail(obj, target):
        target.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", write_half_then_fail)
    with pytest.raises(NoSpaceError, match=f"cannot write checkpoint {path}: no space left"):
        io.save_checkpoint({"step": torch.tensor(2)}, path)

    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    assert io.load_checkpoint(path)["step"].item() == 1


@pytest.mark.parametrize("argument", ["callbacks", "logger"])
def test_binding_a_trainer_argument_that_fit_owns_is_a_config_error(tmp_path, argument):
    gin.bind_parameter(f"pytorch_lightning.Trainer.{argument}", [])
    with pytest.raises(ConfigError, match=f"Trainer.{argument} is set by fit"):
        run_fit(tmp_path)


def test_no_model_is_a_config_error_that_names_a_model_config(tmp_path):
    with pytest.raises(ConfigError, match="no model chosen") as error:
        run_fit(tmp_path, model=None)
    assert "configs/models/resnet.gin" in str(error.value)


def test_config_factories_become_picklable_partials_with_their_bindings():
    gin.bind_parameter("torch.optim.AdamW.lr", 0.05)
    adamw = gin.get_configurable("torch.optim.AdamW")
    factory = plain_factory(adamw)
    assert factory.func is torch.optim.AdamW and factory.keywords == {"lr": 0.05}
    assert plain_factory(functools.partial(adamw, lr=0.1)).keywords == {"lr": 0.1}
    assert plain_factory(torch.optim.AdamW).keywords == {}  # a plain default stays plain

    classifier = Classifier(
        MLP(num_classes=2, input_shape=(3,)), 2, optimizer=factory, loss=torch.nn.CrossEntropyLoss()
    )
    assert pickle.loads(pickle.dumps(classifier)).optimizer_factory.keywords == {"lr": 0.05}


def test_the_csv_log_keeps_rows_before_the_checkpoint_and_drops_later_ones(tmp_path):
    first = ContinuingCSVLogger(tmp_path)
    for step in (4, 9, 14):
        first.log_metrics({"val_acc": step / 20, "epoch": step // 5}, step=step)
    first.save()

    resumed = ContinuingCSVLogger(tmp_path)  # Lightning's CSVLogger would delete the file
    resumed.experiment.forget_rows_from(10)  # the checkpoint was taken after 10 steps
    resumed.log_metrics({"val_acc": 0.9, "epoch": 2}, step=14)
    resumed.save()

    rows = read_csv_rows(tmp_path / "metrics.csv")
    assert [(row["step"], row["val_acc"]) for row in rows] == [
        ("4", "0.2"),
        ("9", "0.45"),
        ("14", "0.9"),
    ]
    assert [path.name for path in tmp_path.iterdir()] == ["metrics.csv"]


def test_the_csv_log_appends_rows_and_rewrites_only_for_new_columns(tmp_path):
    logger = ContinuingCSVLogger(tmp_path)
    path = tmp_path / "metrics.csv"
    logger.log_metrics({"val_acc": 0.5, "epoch": 0}, step=4)
    logger.save()
    logger.log_metrics({"train_loss": 0.7, "epoch": 0}, step=4)  # a new column: rewritten
    logger.save()
    rewritten = path.stat().st_ino
    logger.log_metrics({"val_acc": 0.6, "epoch": 1}, step=9)
    logger.save()
    logger.log_metrics({"train_loss": 0.4, "epoch": 1}, step=9)
    logger.save()

    assert path.stat().st_ino == rewritten  # appended in place, not replaced
    assert path.read_text().splitlines() == [
        "epoch,step,train_loss,val_acc",
        "0,4,,0.5",
        "0,4,0.7,",
        "1,9,,0.6",
        "1,9,0.4,",
    ]


def test_a_torn_last_line_of_the_csv_log_is_dropped_and_the_file_rewritten(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,val_acc\n0,4,0.5\n1,9,0.6")  # killed mid-append
    resumed = ContinuingCSVLogger(tmp_path)
    assert [row["step"] for row in resumed.experiment.rows] == ["4"]
    resumed.experiment.forget_rows_from(20)
    resumed.log_metrics({"val_acc": 0.7, "epoch": 1}, step=9)
    resumed.save()
    assert path.read_text().splitlines() == ["epoch,step,val_acc", "0,4,0.5", "1,9,0.7"]


def test_extra_loggers_get_a_folder_named_after_them(tmp_path):
    (logger,) = extra_loggers([CSVLogger], tmp_path)
    assert logger.save_dir == str(tmp_path / "csv")
