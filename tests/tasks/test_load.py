"""Loaders: bundled datasets, file tables, class folders and feature tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ginpipe.base.errors import ConfigError, DataError
from ginpipe.core.state import State, TaskView
from ginpipe.tasks.load import load_csv_features, load_folder, load_sklearn, load_table


def call(task, **params) -> dict:
    return task(TaskView(State(), task.__name__, ()), **params)["dataset"]


def touch_files(root: Path, names: list[str]) -> None:
    """load_table and load_folder only check that files exist; contents do not matter."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


# --- load_sklearn ------------------------------------------------------------------------


def test_digits_as_images() -> None:
    dataset = call(load_sklearn, name="digits", as_images=True)
    assert dataset["kind"] == "arrays"
    assert dataset["X"].shape == (1797, 1, 8, 8) and dataset["X"].dtype == np.float32
    assert dataset["y"].dtype == np.int64
    assert dataset["classes"] == [str(digit) for digit in range(10)]
    assert len(dataset["meta"]) == 1797


@pytest.mark.parametrize(
    ("name", "shape", "num_classes"),
    [("digits", (1797, 64), 10), ("wine", (178, 13), 3), ("breast_cancer", (569, 30), 2)],
)
def test_flat_datasets(name: str, shape: tuple[int, int], num_classes: int) -> None:
    dataset = call(load_sklearn, name=name, as_images=False)
    assert dataset["X"].shape == shape
    assert len(dataset["classes"]) == num_classes
    assert set(np.unique(dataset["y"])) == set(range(num_classes))


def test_tabular_dataset_ignores_as_images() -> None:
    assert call(load_sklearn, name="iris", as_images=True)["X"].shape == (150, 4)


def test_unknown_dataset_suggests_the_closest_name(toy_project, cli) -> None:
    result = cli("run", "configs/base", "models/mlp", "--mod", "load_sklearn.name='digts'")
    assert result.exit_code == 2, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "load_sklearn.name='digts': expected one of 'digits', 'wine'" in line
    assert line.endswith("(did you mean 'digits'?)")
    assert not toy_project.root.exists()  # refused before any task ran


# --- load_table ----------------------------------------------------------------------------


@pytest.fixture
def file_table(tmp_path: Path) -> Path:
    names = [f"images/{index}.png" for index in range(6)]
    touch_files(tmp_path, names)
    table = pd.DataFrame(
        {
            "path": names,
            "label": ["dog", "cat", "dog", "bird", "cat", "dog"],
            "group": [0, 0, 1, 1, 2, 2],
        }
    )
    table.to_csv(tmp_path / "labels.csv", index=False)
    return tmp_path / "labels.csv"


def test_table_of_files(file_table: Path) -> None:
    dataset = call(load_table, path=str(file_table), extra_columns=["group"])
    table = dataset["table"]
    assert dataset["kind"] == "files"
    assert dataset["classes"] == ["bird", "cat", "dog"]
    assert table["y"].tolist() == [2, 1, 2, 0, 1, 2]
    assert table["group"].tolist() == [0, 0, 1, 1, 2, 2]
    assert table["path"].iloc[0] == str(file_table.parent / "images" / "0.png")
    assert all(Path(path).is_absolute() for path in table["path"])


def test_integer_labels_sort_numerically(tmp_path: Path) -> None:
    touch_files(tmp_path, ["a.png", "b.png", "c.png"])
    pd.DataFrame({"file": ["a.png", "b.png", "c.png"], "digit": [10, 2, 9]}).to_parquet(
        tmp_path / "labels.parquet"
    )
    dataset = call(
        load_table, path=str(tmp_path / "labels.parquet"), path_column="file", label_column="digit"
    )
    assert dataset["classes"] == ["2", "9", "10"]
    assert dataset["table"]["y"].tolist() == [2, 0, 1]


def test_root_overrides_the_table_folder(tmp_path: Path) -> None:
    touch_files(tmp_path / "store", ["x.png"])
    pd.DataFrame({"path": ["x.png"], "label": [0]}).to_csv(tmp_path / "t.csv", index=False)
    dataset = call(load_table, path=str(tmp_path / "t.csv"), root=str(tmp_path / "store"))
    assert dataset["table"]["path"].tolist() == [str(tmp_path / "store" / "x.png")]


def test_missing_column_names_it_and_the_available_ones(file_table: Path) -> None:
    with pytest.raises(DataError, match=r"no column 'species'; its columns are: path, label"):
        call(load_table, path=str(file_table), label_column="species")


def test_missing_files_are_counted_and_named(file_table: Path) -> None:
    (file_table.parent / "images" / "3.png").unlink()
    (file_table.parent / "images" / "5.png").unlink()
    with pytest.raises(DataError, match=r"2 of 6 files .* do not exist, e\.g\. .*3\.png, .*5\.png"):
        call(load_table, path=str(file_table))


def test_table_with_header_only_is_empty(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("path,label\n")
    with pytest.raises(DataError, match="has no rows"):
        call(load_table, path=str(tmp_path / "labels.csv"))


def test_zero_byte_table_is_empty(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("")
    with pytest.raises(DataError, match="is empty"):
        call(load_table, path=str(tmp_path / "labels.csv"))


def test_unreadable_table(tmp_path: Path) -> None:
    (tmp_path / "labels.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="cannot read table"):
        call(load_table, path=str(tmp_path / "labels.parquet"))


@pytest.mark.parametrize("name", ["absent.csv", "labels.txt"])
def test_table_that_does_not_exist_or_is_not_a_table(tmp_path: Path, name: str) -> None:
    (tmp_path / "labels.txt").write_text("path,label\n")
    with pytest.raises(DataError, match=r"does not exist|not a CSV or Parquet"):
        call(load_table, path=str(tmp_path / name))


def test_extra_column_may_not_shadow_path_or_y(file_table: Path) -> None:
    with pytest.raises(ConfigError, match="extra_columns"):
        call(load_table, path=str(file_table), extra_columns=["y"])


def test_rows_without_label(tmp_path: Path) -> None:
    touch_files(tmp_path, ["a.png", "b.png"])
    (tmp_path / "t.csv").write_text("path,label\na.png,cat\nb.png,\n")
    with pytest.raises(DataError, match="1 of 2 rows have no value in label column 'label'"):
        call(load_table, path=str(tmp_path / "t.csv"))


# --- load_folder ---------------------------------------------------------------------------


def test_folder_of_class_folders(tmp_path: Path) -> None:
    touch_files(tmp_path, ["cat/1.png", "cat/2.JPG", "cat/notes.txt", "dog/sub/3.png"])
    (tmp_path / ".cache").mkdir()
    dataset = call(load_folder, path=str(tmp_path))
    assert dataset["classes"] == ["cat", "dog"]
    assert [Path(path).name for path in dataset["table"]["path"]] == ["1.png", "2.JPG", "3.png"]
    assert dataset["table"]["y"].tolist() == [0, 0, 1]


def test_folder_without_class_folders(tmp_path: Path) -> None:
    touch_files(tmp_path, ["1.png"])
    with pytest.raises(DataError, match="no class sub-folders"):
        call(load_folder, path=str(tmp_path))


def test_class_folder_without_images(tmp_path: Path) -> None:
    touch_files(tmp_path, ["cat/1.png", "dog/readme.txt"])
    with pytest.raises(DataError, match=r"class folder '.*dog' has no files ending in"):
        call(load_folder, path=str(tmp_path))


# --- load_csv_features ---------------------------------------------------------------------


@pytest.fixture
def feature_table(tmp_path: Path) -> Path:
    table = pd.DataFrame(
        {
            "height": [1.0, 2.0, 3.0],
            "width": [4, 5, 6],
            "species": ["b", "a", "b"],
            "site": ["x", "y", "y"],
        }
    )
    table.to_csv(tmp_path / "features.csv", index=False)
    return tmp_path / "features.csv"


def test_feature_table(feature_table: Path) -> None:
    dataset = call(
        load_csv_features, path=str(feature_table), label_column="species", extra_columns=["site"]
    )
    assert dataset["kind"] == "arrays"
    assert dataset["X"].dtype == np.float32
    np.testing.assert_array_equal(dataset["X"], [[1, 4], [2, 5], [3, 6]])
    assert dataset["classes"] == ["a", "b"]
    assert dataset["y"].tolist() == [1, 0, 1]
    assert dataset["meta"]["site"].tolist() == ["x", "y", "y"]


def test_text_feature_column_is_named(feature_table: Path) -> None:
    with pytest.raises(DataError, match=r"feature column 'site' .* is not numeric"):
        call(load_csv_features, path=str(feature_table), label_column="species")


def test_missing_feature_values_are_counted(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("a,label\n1,0\n,1\n")
    with pytest.raises(DataError, match=r"feature column 'a' .* has 1 missing values"):
        call(load_csv_features, path=str(tmp_path / "f.csv"))
