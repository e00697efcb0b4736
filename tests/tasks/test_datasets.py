"""make_dataset and the image-file dataset, through real DataLoader worker processes."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ginpipe.base.errors import DataError
from ginpipe.core.state import State, TaskView
from ginpipe.tasks.data.datasets import make_dataset
from ginpipe.tasks.data.image_dataset import ImageFileDataset
from ginpipe.tasks.features import make_features
from ginpipe.tasks.load import load_table
from ginpipe.tasks.split import split_dataset

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_file_dataset.py"
SPEC = {"size": [8, 8], "channels": 1, "mean": [0.5], "std": [0.25]}


def load_script() -> ModuleType:
    """scripts/ is not a package: load the generator straight from its file."""
    spec = importlib.util.spec_from_file_location("make_file_dataset", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def digits_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return load_script().write_digits_png(tmp_path_factory.mktemp("digits_png"), size=8, limit=400)


def files_data(labels_csv: Path) -> dict:
    state = State()
    steps = [
        (load_table, (), {"path": str(labels_csv), "extra_columns": ["group"]}),
        (split_dataset, ("dataset",), {"method": "group"}),
        (make_features, ("dataset", "splits"), {"stats_sample": 64}),
    ]
    for task, reads, params in steps:
        for key, value in task(TaskView(state, task.__name__, reads), **params).items():
            state.set(key, value)
    return state["data"]


def test_generated_dataset_layout(digits_png: Path) -> None:
    table = pd.read_csv(digits_png)
    assert len(table) == 400
    assert list(table.columns) == ["path", "label", "group"]
    first = table.iloc[0]
    assert first["path"] == f"images/{first['label']}/0000_0.png"
    assert (digits_png.parent / first["path"]).is_file()


def test_repeated_copies_share_their_source_group(tmp_path: Path) -> None:
    table = pd.read_csv(load_script().write_digits_png(tmp_path, repeat=3, size=8, limit=50))
    assert len(table) == 3 * 50
    source = table["path"].str.extract(r"/(\d+)_\d\.png$")[0]
    assert table.groupby(source)["group"].nunique().max() == 1


def test_array_split_becomes_a_tensor_dataset() -> None:
    data = {
        "kind": "arrays",
        "train": {"X": np.ones((3, 1, 2, 2), np.float32), "y": np.array([0, 1, 2])},
    }
    dataset = make_dataset(data, "train")
    assert isinstance(dataset, TensorDataset) and len(dataset) == 3
    x, y = dataset[1]
    assert x.dtype == torch.float32 and x.shape == (1, 2, 2)
    assert y.dtype == torch.int64 and int(y) == 1


def test_unknown_split_name() -> None:
    with pytest.raises(ValueError, match="split must be one of train, val, test"):
        make_dataset({"kind": "arrays"}, "valid")


def test_file_split_decodes_normalized_images(digits_png: Path) -> None:
    data = files_data(digits_png)
    dataset = make_dataset(data, "test")
    assert isinstance(dataset, ImageFileDataset)
    assert len(dataset) == len(data["test"]["y"])
    x, y = dataset[0]
    assert x.dtype == torch.float32 and tuple(x.shape) == (1, 8, 8)
    assert y.dtype == torch.int64 and int(y) == data["test"]["y"][0]
    train = torch.stack([make_dataset(data, "train")[index][0] for index in range(200)])
    assert abs(float(train.mean())) < 0.2 and abs(float(train.std()) - 1) < 0.2


@pytest.mark.slow
def test_spawned_workers_yield_what_the_main_process_reads(digits_png: Path) -> None:
    data = files_data(digits_png)
    dataset = make_dataset(data, "val")
    loader = DataLoader(
        dataset, batch_size=64, num_workers=2, multiprocessing_context="spawn", shuffle=False
    )
    images, labels = (torch.cat(parts) for parts in zip(*loader, strict=True))
    assert images.shape == (len(dataset), 1, 8, 8)
    torch.testing.assert_close(labels, torch.from_numpy(data["val"]["y"]))
    torch.testing.assert_close(images[-1], dataset[len(dataset) - 1][0])


def test_dataset_pickles(digits_png: Path) -> None:
    data = files_data(digits_png)
    dataset = make_dataset(data, "train")
    restored = pickle.loads(pickle.dumps(dataset))
    torch.testing.assert_close(restored[5][0], dataset[5][0])


def test_unreadable_image_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    dataset = ImageFileDataset([str(broken)], [0], SPEC)
    with pytest.raises(DataError, match=r"cannot read image '.*broken\.png'"):
        dataset[0]


def test_paths_and_labels_must_pair_up() -> None:
    with pytest.raises(ValueError, match="2 paths but 1 labels"):
        ImageFileDataset(["a.png", "b.png"], [0], SPEC)
