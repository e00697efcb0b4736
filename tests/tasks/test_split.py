"""split_dataset: every method gives disjoint, sorted int64 splits, or one clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ginpipe.base.errors import ConfigError, DataError
from ginpipe.core.state import State, TaskView
from ginpipe.tasks.split import split_dataset

N_ROWS = 100


def arrays_dataset(labels: np.ndarray, **meta_columns: object) -> dict:
    meta = pd.DataFrame({"id": np.arange(len(labels)), **meta_columns})
    return {
        "kind": "arrays",
        "X": np.zeros((len(labels), 2), dtype=np.float32),
        "y": np.asarray(labels, dtype=np.int64),
        "classes": [f"class{label}" for label in range(int(max(labels)) + 1)],
        "meta": meta,
    }


def balanced_labels(n_rows: int = N_ROWS, n_classes: int = 4) -> np.ndarray:
    return np.arange(n_rows) % n_classes


def split(dataset: dict, **params) -> dict[str, np.ndarray]:
    state = State()
    state.set("dataset", dataset)
    return split_dataset(TaskView(state, "split_dataset", ("dataset",)), **params)["splits"]


def assert_partition(splits: dict[str, np.ndarray], n_rows: int) -> None:
    for rows in splits.values():
        assert rows.dtype == np.int64
        assert np.all(np.diff(rows) > 0), "sorted and unique"
    everything = np.concatenate(list(splits.values()))
    assert sorted(everything.tolist()) == list(range(n_rows)), "disjoint and complete"


@pytest.mark.parametrize("method", ["random", "stratified"])
def test_sizes_are_fractions_of_all_rows(method: str) -> None:
    splits = split(arrays_dataset(balanced_labels()), method=method, test_size=0.2, val_size=0.1)
    assert_partition(splits, N_ROWS)
    assert {name: len(rows) for name, rows in splits.items()} == {
        "train": 70,
        "val": 10,
        "test": 20,
    }


def test_stratified_keeps_class_proportions() -> None:
    labels = balanced_labels()
    splits = split(arrays_dataset(labels), method="stratified", test_size=0.2, val_size=0.2)
    for rows in splits.values():
        assert np.bincount(labels[rows]).tolist() == [len(rows) // 4] * 4


def test_same_seed_same_split_other_seed_other_split() -> None:
    dataset = arrays_dataset(balanced_labels())
    first = split(dataset, seed=3)
    assert all(np.array_equal(first[name], split(dataset, seed=3)[name]) for name in first)
    assert not np.array_equal(first["test"], split(dataset, seed=4)["test"])


def test_val_size_does_not_move_test_rows() -> None:
    dataset = arrays_dataset(balanced_labels())
    np.testing.assert_array_equal(
        split(dataset, val_size=0.1)["test"], split(dataset, val_size=0.3)["test"]
    )


def test_val_size_zero_leaves_val_empty() -> None:
    splits = split(arrays_dataset(balanced_labels()), val_size=0.0)
    assert len(splits["val"]) == 0
    assert_partition(splits, N_ROWS)


def test_class_too_small_to_stratify_is_named() -> None:
    labels = np.append(balanced_labels(), [4, 4])
    with pytest.raises(DataError, match="class 'class4' has only 2 row"):
        split(arrays_dataset(labels), method="stratified")


def test_group_split_keeps_groups_together() -> None:
    groups = np.arange(N_ROWS) // 5  # 20 groups of 5 rows
    splits = split(arrays_dataset(balanced_labels(), group=groups), method="group")
    assert_partition(splits, N_ROWS)
    seen = [set(groups[rows]) for rows in splits.values()]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert len(splits["test"]) == 20  # 4 of 20 groups


def test_group_split_without_the_column() -> None:
    with pytest.raises(DataError, match="no column 'patient'; it has: id"):
        split(arrays_dataset(balanced_labels()), method="group", column="patient")


def test_kfold_test_folds_cover_every_row_once() -> None:
    dataset = arrays_dataset(balanced_labels())
    tests = [split(dataset, method="kfold", n_splits=5, fold=fold)["test"] for fold in range(5)]
    assert sorted(np.concatenate(tests).tolist()) == list(range(N_ROWS))
    assert all(len(rows) == 20 for rows in tests)
    assert_partition(split(dataset, method="kfold", n_splits=5, fold=0), N_ROWS)


@pytest.mark.parametrize("fold", [-1, 5])
def test_kfold_fold_out_of_range(fold: int) -> None:
    with pytest.raises(ConfigError, match=r"fold must be in \[0, 4\]"):
        split(arrays_dataset(balanced_labels()), method="kfold", n_splits=5, fold=fold)


def test_kfold_falls_back_to_unstratified_for_rare_classes() -> None:
    labels = np.append(balanced_labels(), [4, 4, 4])  # 3 rows < n_splits
    splits = split(arrays_dataset(labels), method="kfold", n_splits=5, val_size=0.0)
    assert_partition(splits, len(labels))


def test_regex_sends_matching_rows_to_test() -> None:
    names = [f"scan_{'b' if row % 5 == 0 else 'a'}_{row}.png" for row in range(N_ROWS)]
    dataset = arrays_dataset(balanced_labels(), path=names)
    splits = split(dataset, method="regex", pattern=r"_b_", val_size=0.1)
    np.testing.assert_array_equal(splits["test"], np.arange(0, N_ROWS, 5))
    assert len(splits["val"]) == 10
    assert_partition(splits, N_ROWS)


def test_regex_that_matches_nothing_leaves_test_empty() -> None:
    dataset = arrays_dataset(balanced_labels(), path=[f"{row}.png" for row in range(N_ROWS)])
    with pytest.raises(DataError, match="left the test split empty"):
        split(dataset, method="regex", pattern="never")


def test_invalid_regex_is_a_config_error() -> None:
    dataset = arrays_dataset(balanced_labels(), path=["x"] * N_ROWS)
    with pytest.raises(ConfigError, match="not a valid regex"):
        split(dataset, method="regex", pattern="(")


def test_column_method_uses_the_given_assignment() -> None:
    assignment = np.array(["train", "train", "val", "test"] * 25)
    splits = split(arrays_dataset(balanced_labels(), split=assignment), method="column")
    for name, rows in splits.items():
        np.testing.assert_array_equal(rows, np.flatnonzero(assignment == name))


def test_column_method_rejects_other_values() -> None:
    assignment = ["train", "dev", "test", "val"] * 25
    with pytest.raises(DataError, match="values other than train/val/test: dev"):
        split(arrays_dataset(balanced_labels(), split=assignment), method="column")


def test_too_few_rows_for_a_nonempty_val() -> None:
    with pytest.raises(DataError, match="less than one row"):
        split(arrays_dataset(balanced_labels(20, 2)), method="random", val_size=0.01)


def refused_before_any_task(toy_project, cli, mod: str) -> str:
    """The one error line of a run refused with exit 2 before any task ran."""
    result = cli("run", "configs/base", "models/mlp", "--mod", mod)
    assert result.exit_code == 2, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert not toy_project.root.exists()  # no run directory, no cache: nothing ran
    return line


def test_unknown_method_suggests_the_closest(toy_project, cli) -> None:
    line = refused_before_any_task(toy_project, cli, "split_dataset.method='stratifed'")
    assert "split_dataset.method='stratifed': expected one of 'random', 'stratified'" in line
    assert line.endswith("(did you mean 'stratified'?)")


@pytest.mark.parametrize(
    ("mod", "message"),
    [
        ("split_dataset.test_size=1.0", "split_dataset.test_size must be in (0, 1), got 1.0"),
        ("split_dataset.val_size=-0.1", "split_dataset.val_size must be in [0, 1), got -0.1"),
    ],
)
def test_sizes_from_a_config_are_refused_before_any_task(toy_project, cli, mod, message) -> None:
    line = refused_before_any_task(toy_project, cli, mod)
    assert line == f"error: --mod '{mod}': {message}"


def test_fold_and_n_splits_from_a_config_are_checked_together(toy_project, cli) -> None:
    toy_project.write("folds.gin", "split_dataset.method = 'kfold'\nsplit_dataset.fold = 5\n")
    result = cli("run", "configs/base", "models/mlp", "folds.gin")
    assert result.exit_code == 2, result.output
    assert "folds.gin:2: split_dataset.fold must be in [0, 4] for n_splits=5" in result.output
    assert not toy_project.root.exists()


@pytest.mark.parametrize(
    ("test_size", "val_size"), [(0.0, 0.1), (1.0, 0.1), (0.5, 0.5), (0.2, -0.1)]
)
def test_bad_sizes_are_config_errors(test_size: float, val_size: float) -> None:
    with pytest.raises(ConfigError, match="split_dataset"):
        split(arrays_dataset(balanced_labels()), test_size=test_size, val_size=val_size)


def test_too_few_rows_per_split_is_a_data_error() -> None:
    # 3 classes but only 2 test rows: scikit-learn's refusal becomes a DataError.
    with pytest.raises(DataError, match="split_dataset\\(method='stratified'\\)"):
        split(arrays_dataset(balanced_labels(9, 3)), method="stratified", test_size=0.2)


def test_files_dataset_splits_by_its_table() -> None:
    table = pd.DataFrame(
        {"path": [f"/data/{row}.png" for row in range(N_ROWS)], "y": balanced_labels()}
    )
    dataset = {"kind": "files", "table": table, "classes": ["a", "b", "c", "d"]}
    splits = split(dataset, method="regex", pattern=r"/9\d\.png$")
    np.testing.assert_array_equal(splits["test"], np.arange(90, 100))
    assert_partition(splits, N_ROWS)
