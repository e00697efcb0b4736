"""Every data kind through every verb: run, kill -9 + resume, predict new raw input,
predict --split test, load_run().predict, export (ONNX, TorchScript), the demo's input and
probabilities. One class per data kind (README, "What works with what"); the cells are
the tests of ``cells.Cells``. Classes go to separate workers, each trains its run once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cells import (
    SCRIPT,
    Cells,
    Row,
    Trained,
    copy_files,
    first_file,
    predict_new,
    scripts_module,
    train,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SCRIPT.exists(), reason="needs the installed console script"),
]


@pytest.fixture(scope="class")
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    row: Row = request.cls.row
    return train(row, tmp_path_factory.mktemp(row.name.replace(" ", "_")))


@pytest.fixture(scope="class")
def predicted_new(trained: Trained) -> pd.DataFrame:
    return predict_new(trained)


# -- features in memory: scikit-learn's digits --------------------------------------------


def digits_rows(folder: Path) -> Path:
    """Five raw digits (8x8 pixel values 0..16) as an .npy array, as a user saves them."""
    from sklearn.datasets import load_digits

    path = folder / "new_digits.npy"
    if not path.exists():
        np.save(path, load_digits().data[-5:].astype(np.float32))
    return path


class TestDigits(Cells):
    row = Row(
        name="digits",
        configs=["base", "models/mlp"],
        write=lambda folder: None,
        new_input=digits_rows,
        demo_input=lambda folder: np.load(digits_rows(folder))[0].tolist(),
        widget="Dataframe",
        feature_names=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
    )


class TestSklearnEstimator(Cells):
    row = Row(
        name="sklearn estimator",
        configs=["base", "models/logreg"],
        write=lambda folder: None,
        new_input=digits_rows,
        demo_input=lambda folder: np.load(digits_rows(folder))[0].tolist(),
        widget="Dataframe",
        feature_names=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
        network=False,
        kill_at="features:2",  # make_features has the dataset, asks for the splits
    )


# -- a CSV feature table --------------------------------------------------------------------

TABLE_GIN = """
run.tasks = [@seed_everything, @load_csv_features, @split_dataset, @make_features, @fit, @evaluate]
load_csv_features.path = 'measurements.csv'
load_csv_features.label_column = 'species'
"""
COLUMNS = ["length", "width", "depth", "weight"]


def write_table(folder: Path) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, len(COLUMNS)))
    labels = np.arange(150) % 3
    values = centres[labels] + rng.normal(0, 1, (150, len(COLUMNS)))
    frame = pd.DataFrame(values, columns=COLUMNS)
    frame["species"] = np.array(["a", "b", "c"])[labels]
    frame.to_csv(folder / "measurements.csv", index=False)
    frame.drop(columns="species").head(4).to_csv(folder / "new_measurements.csv", index=False)
    (folder / "table.gin").write_text(TABLE_GIN)


class TestCsvTable(Cells):
    row = Row(
        name="csv table",
        configs=["base", "models/mlp", "table.gin"],
        write=write_table,
        new_input=lambda folder: folder / "new_measurements.csv",
        demo_input=lambda folder: pd.read_csv(folder / "new_measurements.csv").head(1),
        widget="Dataframe",
        feature_names=COLUMNS,
    )


# -- image files ----------------------------------------------------------------------------

FILES_GIN = "load_table.path = 'images/labels.csv'\nmake_features.stats_sample = 64\n"


def write_images(folder: Path) -> None:
    scripts_module("make_file_dataset").write_digits_png(folder / "images", limit=300)
    (folder / "files.gin").write_text(FILES_GIN)


def new_images(folder: Path) -> Path:
    sources = sorted((folder / "images" / "images").rglob("*.png"))[:3]
    return copy_files(sources, folder / "new_images")


class TestImageFiles(Cells):
    row = Row(
        name="image files",
        configs=["base", "data/files", "models/mlp", "files.gin"],
        write=write_images,
        new_input=new_images,
        demo_input=lambda folder: first_file(new_images(folder)),
        widget="Image",
    )


# -- audio files: features extracted into shards, or computed per item ---------------------

AUDIO_GIN = "fit.multiprocessing_context = None\n"
ITEM_TRANSFORM_GIN = (
    "run.tasks = [@seed_everything, @load_table, @split_dataset, @make_features, @fit, "
    "@evaluate]\nmake_features.item_transform = @log_mel()\n"
)


def write_audio(folder: Path) -> None:
    out = folder / "data" / "generated" / "audio_events"
    scripts_module("make_audio_dataset").write_audio_events(out, 60, groups=12)
    (folder / "audio_local.gin").write_text(AUDIO_GIN)
    (folder / "item_transform.gin").write_text(ITEM_TRANSFORM_GIN)


def new_audio(folder: Path) -> Path:
    sources = sorted((folder / "data" / "generated" / "audio_events").rglob("*.wav"))[:3]
    return copy_files(sources, folder / "new_audio")


AUDIO = ["base", "data/audio", "models/audio_cnn", "audio_local.gin"]


class TestAudioExtractFeatures(Cells):
    row = Row(
        name="audio shards",
        configs=AUDIO,
        write=write_audio,
        new_input=new_audio,
        demo_input=lambda folder: first_file(new_audio(folder)),
        widget="Audio",
    )


class TestAudioItemTransform(Cells):
    row = Row(
        name="audio item transform",
        configs=[*AUDIO, "item_transform.gin"],
        write=write_audio,
        new_input=new_audio,
        demo_input=lambda folder: first_file(new_audio(folder)),
        widget="Audio",
    )


# -- .npy files, and a user's own decoder --------------------------------------------------

NPY_GIN = """
run.tasks = [@seed_everything, @load_table, @split_dataset, @make_features, @fit, @evaluate]
load_table.path = 'arrays/labels.csv'
load_table.decoder = @npy_decoder()
"""
DECODER = '''
import numpy as np


def read_signal(path, scale=1.0):
    """One item: a whitespace-separated text file of numbers (a format ginpipe does not know)."""
    return np.loadtxt(path, dtype=np.float32).reshape(1, -1) * scale
'''
DECODER_GIN = """
import matrix_decoders
run.tasks = [@seed_everything, @load_table, @split_dataset, @make_features, @fit, @evaluate]
load_table.path = 'signals/labels.csv'
load_table.decoder = @matrix_decoders.read_signal
matrix_decoders.read_signal.scale = 2.0
"""


def write_signals(folder: Path, suffix: str) -> None:
    """Two classes of 16-number signals, rising or falling, as .npy or text files."""
    rng = np.random.default_rng(0)
    rows = []
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(90):
        label = index % 2
        signal = np.linspace(-1, 1, 16) * (1 if label else -1) + rng.normal(0, 0.3, 16)
        name = f"{index:04d}{suffix}"
        if suffix == ".npy":
            np.save(folder / name, signal.astype(np.float32).reshape(1, -1))
        else:
            np.savetxt(folder / name, signal)
        rows.append((name, ["falling", "rising"][label]))
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(folder / "labels.csv", index=False)


def write_npy(folder: Path) -> None:
    write_signals(folder / "arrays", ".npy")
    (folder / "npy.gin").write_text(NPY_GIN)


def write_own_decoder(folder: Path) -> None:
    write_signals(folder / "signals", ".txt")
    (folder / "matrix_decoders.py").write_text(DECODER)
    (folder / "decoder.gin").write_text(DECODER_GIN)


def new_files(source: str, suffix: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        sources = sorted((folder / source).glob(f"*{suffix}"))[-3:]
        return copy_files(sources, folder / f"new_{source}")

    return make


class TestNpyFiles(Cells):
    row = Row(
        name="npy files",
        configs=["base", "models/mlp", "npy.gin"],
        write=write_npy,
        new_input=new_files("arrays", ".npy"),
        demo_input=lambda folder: first_file(new_files("arrays", ".npy")(folder)),
        widget="File",
    )


class TestOwnDecoder(Cells):
    row = Row(
        name="own decoder",
        configs=["base", "models/mlp", "decoder.gin"],
        write=write_own_decoder,
        new_input=new_files("signals", ".txt"),
        demo_input=lambda folder: first_file(new_files("signals", ".txt")(folder)),
        widget="File",
    )


# -- a user's own LightningModule ---------------------------------------------------------

LIT_MODULE = '''
import pytorch_lightning as pl
import torch
from torch import nn


class LitNet(pl.LightningModule):
    """A user's module: its own loss name, optimizer and learning rate."""

    def __init__(self, num_classes, input_shape, lr=0.05):
        super().__init__()
        size = 1
        for dim in input_shape:
            size *= dim
        self.lr = lr
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(size, 32), nn.ReLU(),
                                 nn.Linear(32, num_classes))

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
'''
LIT_GIN = """
fit.model = @matrix_litmodels.LitNet
matrix_litmodels.LitNet.lr = 0.05
fit.monitor = 'my_val_loss'
fit.monitor_mode = 'min'
"""


def write_lightning_module(folder: Path) -> None:
    (folder / "matrix_litmodels.py").write_text(LIT_MODULE)
    (folder / "lit.gin").write_text(LIT_GIN)


class TestOwnLightningModule(Cells):
    row = Row(
        name="own lightning module",
        configs=["base", "lit.gin"],
        write=write_lightning_module,
        new_input=digits_rows,
        demo_input=lambda folder: np.load(digits_rows(folder))[0].tolist(),
        widget="Dataframe",
        feature_names=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
    )
