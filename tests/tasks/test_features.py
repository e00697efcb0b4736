"""make_features: statistics come from the train split only; every output is storable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gin
import numpy as np
import pandas as pd
import pytest
from conftest import gin_parse
from PIL import Image
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from ginpipe.base.errors import ConfigError
from ginpipe.core import codecs
from ginpipe.core.state import State, TaskView
from ginpipe.tasks.features import make_features
from ginpipe.tasks.load import load_sklearn, load_table
from ginpipe.tasks.split import split_dataset


def run_steps(steps: list[tuple[Any, tuple[str, ...], dict]]) -> State:
    """Run tasks in order on one state, as the pipeline would."""
    state = State()
    for task, reads, params in steps:
        for key, value in task(TaskView(state, task.__name__, reads), **params).items():
            state.set(key, value)
    return state


def digits_state(**feature_params) -> State:
    return run_steps(
        [
            (load_sklearn, (), {"name": "digits"}),
            (split_dataset, ("dataset",), {}),
            (make_features, ("dataset", "splits"), feature_params),
        ]
    )


def assert_round_trips(value: Any, directory: Path, name: str) -> None:
    """The artifact store keeps the value without pickle and reads back the same thing."""
    record = codecs.encode(value, directory, name)
    assert record is not None, f"'{name}' has no pickle-free codec"
    restored = codecs.decode(record, directory)
    assert_same(restored, value)


def assert_same(restored: Any, original: Any) -> None:
    if isinstance(original, dict):
        assert restored.keys() == original.keys()
        for key in original:
            assert_same(restored[key], original[key])
    elif isinstance(original, np.ndarray):
        assert original.dtype != object
        assert restored.dtype == original.dtype
        np.testing.assert_array_equal(restored, original)
    elif isinstance(original, pd.DataFrame):
        pd.testing.assert_frame_equal(restored, original)
    elif isinstance(original, (list, tuple)):  # e.g. the fitted transforms of `preprocessing`
        assert type(restored) is type(original) and len(restored) == len(original)
        for restored_item, original_item in zip(restored, original, strict=True):
            assert_same(restored_item, original_item)
    else:
        assert restored == original


def test_scaler_statistics_come_from_train_only() -> None:
    state = digits_state(transforms=[StandardScaler()], scale=16.0)
    dataset, splits, data = state["dataset"], state["splits"], state["data"]
    flat = dataset["X"].reshape(len(dataset["X"]), -1).astype(np.float64) / 16.0
    train = flat[splits["train"]]
    scale = train.std(axis=0)
    scale[scale == 0] = 1.0
    expected_test = (flat[splits["test"]] - train.mean(axis=0)) / scale
    actual_test = data["test"]["X"].reshape(len(expected_test), -1)
    np.testing.assert_allclose(actual_test, expected_test, rtol=1e-4, atol=1e-4)


def test_image_shape_is_kept_when_the_width_is() -> None:
    data = digits_state(transforms=[StandardScaler()])["data"]
    assert data["input_shape"] == [1, 8, 8]
    for name in ("train", "val", "test"):
        assert data[name]["X"].shape[1:] == (1, 8, 8)
        assert data[name]["X"].dtype == np.float32
        assert data[name]["y"].dtype == np.int64
    assert data["num_classes"] == 10 and data["classes"][3] == "3"


def test_pca_makes_inputs_flat() -> None:
    data = digits_state(transforms=[StandardScaler(), PCA(n_components=12)])["data"]
    assert data["input_shape"] == [12]
    assert data["test"]["X"].shape == (len(data["test"]["y"]), 12)


def test_scale_divides_and_configured_transforms_stay_unfitted() -> None:
    scaler = StandardScaler()
    data = digits_state(scale=16.0)["data"]
    assert float(data["train"]["X"].max()) == 1.0
    digits_state(transforms=[scaler])
    assert not hasattr(scaler, "mean_")


def test_non_transformer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a transformer"):
        digits_state(transforms=[object()])


def test_transformers_are_configurable_by_name() -> None:
    gin_parse("make_features.transforms = [@StandardScaler(), @PCA()]\nPCA.n_components = 5")
    try:
        data = digits_state()["data"]
    finally:
        gin.clear_config()
    assert data["input_shape"] == [5]


# --- image files ---------------------------------------------------------------------------


def write_gray_images(root: Path, values: list[int], size: tuple[int, int] = (6, 4)) -> Path:
    """One flat gray PNG per value (width x height = size); returns the labels table."""
    rows = []
    for index, value in enumerate(values):
        name = f"{index}.png"
        Image.new("L", size, color=value).save(root / name)
        rows.append((name, index % 2))
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(root / "labels.csv", index=False)
    return root / "labels.csv"


def files_state(table: Path, test_rows: list[int], **feature_params) -> State:
    names = np.array(["train"] * len(pd.read_csv(table)), dtype=object)
    names[test_rows] = "test"
    names[1] = "val"
    table_frame = pd.read_csv(table).assign(split=names)
    table_frame.to_csv(table, index=False)
    return run_steps(
        [
            (load_table, (), {"path": str(table), "extra_columns": ["split"]}),
            (split_dataset, ("dataset",), {"method": "column"}),
            (make_features, ("dataset", "splits"), feature_params),
        ]
    )


def test_image_statistics_come_from_train_only(tmp_path: Path) -> None:
    # train images are 51 (0.2) and 102 (0.4); the bright test images must not count.
    table = write_gray_images(tmp_path, [51, 255, 102, 255, 255])
    data = files_state(table, test_rows=[3, 4])["data"]
    assert data["kind"] == "files"
    assert data["input_shape"] == [1, 4, 6]
    transform = data["transform"]
    assert transform["size"] == [4, 6] and transform["channels"] == 1
    assert transform["mean"] == pytest.approx([0.3])
    assert transform["std"] == pytest.approx([0.1])
    assert data["train"]["path"].dtype.kind == "U"
    assert data["test"]["path"].tolist() == [str(tmp_path / "3.png"), str(tmp_path / "4.png")]


def test_explicit_image_settings(tmp_path: Path) -> None:
    table = write_gray_images(tmp_path, [10, 20, 30, 40])
    settings = {"image_size": [8, 8], "channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3}
    data = files_state(table, [3], **settings)["data"]
    assert data["input_shape"] == [3, 8, 8]
    assert data["transform"] == {
        "size": [8, 8],
        "channels": 3,
        "mean": [0.5] * 3,
        "std": [0.25] * 3,
    }


def test_image_settings_are_checked(tmp_path: Path) -> None:
    table = write_gray_images(tmp_path, [10, 20, 30, 40])
    with pytest.raises(ConfigError, match="one value per channel"):
        files_state(table, [3], channels=3, mean=[0.5], std=[0.25])
    with pytest.raises(ConfigError, match="transforms applies to array datasets"):
        files_state(table, [3], transforms=[StandardScaler()])


# --- storability ---------------------------------------------------------------------------


def test_array_outputs_are_storable(tmp_path: Path) -> None:
    state = digits_state(transforms=[StandardScaler()])
    for key in ("dataset", "splits", "data"):
        assert_round_trips(state[key], tmp_path, key)


def test_file_outputs_are_storable(tmp_path: Path) -> None:
    state = files_state(write_gray_images(tmp_path, [10, 20, 30, 40]), [3])
    store = tmp_path / "store"
    store.mkdir()
    for key in ("dataset", "splits", "data"):
        assert_round_trips(state[key], store, key)
