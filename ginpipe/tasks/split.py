"""Split a dataset into train / val / test row indices.

The test rows are chosen first (by the configured method); val is then carved out of the
rest, so changing ``val_size`` never moves a row into or out of the test set.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
from loguru import logger

from ginpipe import ConfigError, DataError, TaskView, bound_value, task

if TYPE_CHECKING:
    import pandas as pd


# A typo is refused before any task runs, with a did-you-mean (ginpipe/config/checks.py).
SplitMethod = Literal["random", "stratified", "group", "kfold", "regex", "column"]
DEFAULT_COLUMN = {"group": "group", "regex": "path", "column": "split"}
SPLIT_NAMES = ("train", "val", "test")


def check_split_config() -> None:
    """The rules between the sizes, checked against the config before any task runs."""
    defaults = {n: p.default for n, p in inspect.signature(split_dataset).parameters.items()}
    values = {
        name: bound_value(split_dataset, name, defaults[name])
        for name in ("method", "test_size", "val_size", "n_splits", "fold")
    }
    if all(isinstance(value, (str, int, float)) for value in values.values()):
        _check_sizes(**values)  # a reference (@f()) is only known when the task runs


@task(reads=("dataset",), writes=("splits",), check=check_split_config)
def split_dataset(
    state: TaskView,
    *,
    method: SplitMethod = "stratified",
    test_size: float = 0.2,
    val_size: float = 0.1,
    seed: int = 0,
    column: str | None = None,
    pattern: str | None = None,
    n_splits: int = 5,
    fold: int = 0,
) -> dict:
    """Row indices (sorted int64) for train, val and test.

    Methods and the parameters they use:
      random      test_size of the rows, at random.
      stratified  like random, keeping the class proportions in every split.
      group       test_size of the groups in ``column`` (default 'group'): a group never
                  spans two splits, e.g. all images of one patient or writer.
      kfold       the test rows are fold ``fold`` of ``n_splits`` (stratified when every
                  class has at least n_splits rows), for cross-validation.
      regex       rows whose ``column`` (default 'path') matches ``pattern`` are the test set.
      column      ``column`` (default 'split') already says train, val or test per row.

    Except for 'column', val is ``val_size`` of all rows, taken from the non-test rows the
    same way (stratified, by group, or at random). ``val_size=0`` leaves val empty on
    purpose; any other empty split is an error. ``seed`` is separate from the global seed so
    the split stays put when the training seed changes.
    """
    if method not in get_args(SplitMethod):  # a direct call, which no config check saw
        raise ConfigError(f"split_dataset.method={method!r}: one of {get_args(SplitMethod)}")
    _check_sizes(method, test_size, val_size, n_splits, fold)
    dataset = state["dataset"]
    labels, columns = _labels_and_columns(dataset)
    column = column or DEFAULT_COLUMN.get(method, "")  # "": a method that reads no column
    rows = np.arange(len(labels))

    with _sklearn_errors_as_data_errors(method):
        if method == "column":
            splits = _split_by_column(_column(columns, column))
        else:
            stratify = method == "stratified" or (
                method == "kfold" and _kfold_can_stratify(labels, n_splits)
            )
            if stratify:
                # Two rows per class for train and test, a third one when val is carved too.
                minimum = 3 if val_size > 0 else 2
                _require_class_sizes(labels, dataset["classes"], minimum)
            groups = _column(columns, column).to_numpy() if method == "group" else None
            if method == "kfold":
                rest, test = _kfold_test(labels, n_splits, fold, seed, stratify)
            elif method == "regex":
                rest, test = _regex_test(_column(columns, column), pattern)
            else:
                rest, test = _hold_out(rows, labels, groups, test_size, seed, stratify)
            train, val = _carve_val(rest, labels, groups, val_size, test_size, seed, stratify)
            splits = {"train": train, "val": val, "test": test}

    for name in SPLIT_NAMES:
        if len(splits[name]) == 0 and not (name == "val" and val_size == 0):
            raise DataError(
                f"split_dataset(method={method!r}) left the {name} split empty "
                f"({len(labels)} rows in the dataset)"
            )
    return {"splits": {name: np.sort(splits[name]).astype(np.int64) for name in SPLIT_NAMES}}


def _check_sizes(method: str, test_size: float, val_size: float, n_splits: int, fold: int) -> None:
    """Sizes whose valid range depends on the method or on each other (no type says it);
    ``binding`` lets the runner name the file and line that set the value."""
    if not 0 <= val_size < 1:
        raise ConfigError(
            f"split_dataset.val_size must be in [0, 1), got {val_size}",
            binding="split_dataset.val_size",
        )
    if method == "kfold":
        if n_splits < 2:
            raise ConfigError(
                f"split_dataset.n_splits must be at least 2, got {n_splits}",
                binding="split_dataset.n_splits",
            )
        if not 0 <= fold < n_splits:
            raise ConfigError(
                f"split_dataset.fold must be in [0, {n_splits - 1}] for n_splits={n_splits}, "
                f"got {fold}",
                binding="split_dataset.fold",
            )
    elif method in ("random", "stratified", "group"):
        if not 0 < test_size < 1:
            raise ConfigError(
                f"split_dataset.test_size must be in (0, 1), got {test_size}",
                binding="split_dataset.test_size",
            )
        if test_size + val_size >= 1:
            raise ConfigError(
                f"split_dataset.test_size + val_size must be below 1, got {test_size} + {val_size}",
                binding="split_dataset.test_size",
            )


def _labels_and_columns(dataset: dict) -> tuple[np.ndarray, pd.DataFrame]:
    """The class indices and the per-row table (meta for arrays, the file table for files)."""
    if dataset["kind"] == "files":
        table = dataset["table"]
        return table["y"].to_numpy(dtype=np.int64), table
    return np.asarray(dataset["y"], dtype=np.int64), dataset["meta"]


def _column(columns: pd.DataFrame, name: str) -> pd.Series:
    if name not in columns.columns:
        available = ", ".join(str(column) for column in columns.columns)
        raise DataError(f"split_dataset: the dataset has no column '{name}'; it has: {available}")
    return columns[name]


def _kfold_can_stratify(labels: np.ndarray, n_splits: int) -> bool:
    """StratifiedKFold needs every class in every fold; otherwise fall back to KFold."""
    smallest = int(np.unique(labels, return_counts=True)[1].min())
    if smallest < n_splits:
        logger.warning(
            f"split_dataset: a class has only {smallest} rows, fewer than n_splits={n_splits}; "
            "using unstratified KFold"
        )
        return False
    return True


def _require_class_sizes(labels: np.ndarray, classes: list[str], minimum: int) -> None:
    """Name the first class too small to appear in every split of a stratified split."""
    present, counts = np.unique(labels, return_counts=True)
    for label, count in zip(present, counts, strict=True):
        if count < minimum:
            raise DataError(
                f"class '{classes[label]}' has only {count} row(s); a stratified split needs "
                f"at least {minimum} per class (drop the class or use method='random')"
            )


def _hold_out(
    rows: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray | None,
    size: float | int,
    seed: int,
    stratify: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) rows: a random, stratified or group-wise share ``size`` of ``rows``."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    if groups is not None:
        if len(np.unique(groups[rows])) < 2:
            raise DataError("split_dataset(method='group') needs at least 2 distinct groups")
        splitter = GroupShuffleSplit(n_splits=1, test_size=size, random_state=seed)
        kept, held_out = next(splitter.split(rows, groups=groups[rows]))
        return rows[kept], rows[held_out]
    return tuple(
        train_test_split(
            rows, test_size=size, random_state=seed, stratify=labels[rows] if stratify else None
        )
    )


def _kfold_test(
    labels: np.ndarray, n_splits: int, fold: int, seed: int, stratify: bool
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import KFold, StratifiedKFold

    if n_splits > len(labels):
        raise DataError(f"split_dataset: n_splits={n_splits} exceeds the {len(labels)} rows")
    splitter_class = StratifiedKFold if stratify else KFold
    splitter = splitter_class(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = list(splitter.split(np.zeros(len(labels)), labels))
    return folds[fold]


def _regex_test(values: pd.Series, pattern: str | None) -> tuple[np.ndarray, np.ndarray]:
    if not pattern:
        raise ConfigError("split_dataset.pattern must be set for method='regex'")
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise ConfigError(
            f"split_dataset.pattern {pattern!r} is not a valid regex: {error}"
        ) from None
    is_test = np.array([regex.search(str(value)) is not None for value in values])
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def _carve_val(
    rest: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray | None,
    val_size: float,
    test_size: float,
    seed: int,
    stratify: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) from the non-test rows; val is ``val_size`` of the whole dataset."""
    if val_size == 0:
        return rest, rest[:0]
    if groups is not None:
        # GroupShuffleSplit counts groups: take the same share of the remaining groups.
        return _hold_out(rest, labels, groups, val_size / (1 - test_size), seed, stratify=False)
    n_val = round(val_size * len(labels))
    if n_val == 0:
        raise DataError(
            f"split_dataset: val_size={val_size} of {len(labels)} rows is less than one row"
        )
    return _hold_out(rest, labels, None, n_val, seed, stratify)


def _split_by_column(values: pd.Series) -> dict[str, np.ndarray]:
    names = values.astype(str).to_numpy(dtype=str)
    unknown = sorted(set(names) - set(SPLIT_NAMES))
    if unknown:
        raise DataError(
            f"split column '{values.name}' has values other than train/val/test: "
            f"{', '.join(unknown[:5])}"
        )
    return {name: np.flatnonzero(names == name) for name in SPLIT_NAMES}


@contextlib.contextmanager
def _sklearn_errors_as_data_errors(method: str) -> Iterator[None]:
    """scikit-learn reports impossible splits (too few rows or classes) as ValueError."""
    try:
        yield
    except ValueError as error:
        raise DataError(f"split_dataset(method={method!r}): {error}") from error
