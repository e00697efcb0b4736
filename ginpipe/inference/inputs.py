"""Read what a user asks a run to predict, in the form the run was trained on.

A run trained on image files takes a table of files (CSV/Parquet with the run's path
column), a folder (of class sub-folders or of files) or one image file. A run trained on
features takes a feature table (CSV/Parquet with the training columns) or an ``.npy``
array of raw items. Every check that can fail is made here, before anything is decoded or
written; only the file names are held in memory, images are read batch by batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ginpipe.base.errors import DataError
from ginpipe.tasks.bundle import Bundle
from ginpipe.tasks.data.tables import read_table, require_files
from ginpipe.tasks.load import IMAGE_EXTENSIONS

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
MAX_NAMED = 5  # how many column names an error lists


@dataclass
class Items:
    """The items to predict: identifiers plus either file paths or raw feature rows."""

    identifiers: np.ndarray
    paths: np.ndarray | None = None  # files runs: absolute paths to decode
    raw: np.ndarray | None = None  # arrays runs: (n, *raw_shape) or (n, width), maybe mmapped

    def __len__(self) -> int:
        return len(self.identifiers)


def read_items(bundle: Bundle, source: Any) -> Items:
    """``source``: a path (table, folder, image, ``.npy``), a DataFrame, an array, or a
    list of image paths."""
    if isinstance(source, pd.DataFrame):
        return _from_frame(bundle, source, Path.cwd(), "the table")
    if isinstance(source, np.ndarray):
        return _from_array(bundle, source, "the array")
    if isinstance(source, (list, tuple)):
        if bundle.data_kind != "files":
            return _from_array(bundle, np.asarray(source, dtype=np.float32), "the list")
        return _from_paths(bundle, [str(item) for item in source], "the list")
    path = Path(source)
    if not path.exists():
        raise DataError(f"input '{path}' does not exist")
    suffix = path.suffix.lower()
    if path.is_dir():
        return _from_folder(bundle, path)
    if suffix in TABLE_SUFFIXES:
        return _from_frame(bundle, read_table(path.absolute()), path.absolute().parent, str(path))
    if suffix == ".npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DataError(f"cannot read array '{path}': {error}") from error
        return _from_array(bundle, array, str(path))
    if suffix in IMAGE_EXTENSIONS or bundle.decoded is not None:
        return _from_paths(bundle, [str(path)], str(path))
    raise DataError(f"input '{path}' is not a table (.csv, .parquet), a folder, an image or .npy")


def expected_forms(bundle: Bundle) -> str:
    if bundle.data_kind == "files":
        column = bundle.info["input"].get("path_column", "path")
        if bundle.decoded is not None:
            return (
                f"a table of files (CSV/Parquet with a '{column}' column), a folder, a file, "
                "or an .npy array of computed features"
            )
        return f"a table of files (CSV/Parquet with a '{column}' column), a folder or an image"
    return "a feature table (CSV/Parquet with the training columns) or an .npy array"


def _from_paths(bundle: Bundle, paths: list[str], source: str) -> Items:
    if bundle.data_kind != "files":
        raise DataError(f"this run was trained on features: give it {expected_forms(bundle)}")
    resolved = [os.path.abspath(path) for path in paths]
    require_files(resolved, source)
    return Items(identifiers=np.asarray(paths, dtype=str), paths=np.asarray(resolved, dtype=str))


def _from_folder(bundle: Bundle, folder: Path) -> Items:
    if bundle.data_kind != "files":
        raise DataError(
            f"'{folder}' is a folder, but this run was trained on features: "
            f"give it {expected_forms(bundle)}"
        )
    decoded = bundle.decoded is not None  # any file its decoder reads (audio, .npy, ...)
    found = sorted(
        str(file)
        for file in folder.rglob("*")
        if file.is_file()
        and not file.name.startswith(".")
        and (file.suffix.lower() in IMAGE_EXTENSIONS if not decoded else True)
    )
    if not found:
        kinds = "files" if decoded else f"files ending in {', '.join(IMAGE_EXTENSIONS)}"
        raise DataError(f"folder '{folder}' has no {kinds}")
    return _from_paths(bundle, found, f"folder '{folder}'")


def _from_frame(bundle: Bundle, table: pd.DataFrame, base: Path, source: str) -> Items:
    if bundle.data_kind == "files":
        column = _path_column(bundle, table, source)
        values = table[column]
        if values.isna().any():
            raise DataError(f"{source}: {int(values.isna().sum())} rows have no '{column}'")
        given = values.astype(str).to_numpy(dtype=str)
        folder = str(base)  # plain strings: a Path per row costs more than the join
        resolved = [os.path.normpath(os.path.join(folder, path)) for path in given]
        require_files(resolved, source)
        return Items(identifiers=given, paths=np.asarray(resolved, dtype=str))
    return _from_features(bundle, table, source)


def _path_column(bundle: Bundle, table: pd.DataFrame, source: str) -> str:
    wanted = bundle.info["input"].get("path_column", "path")
    for column in (wanted, "path"):
        if column in table.columns:
            return column
    available = ", ".join(str(column) for column in list(table.columns)[:MAX_NAMED])
    raise DataError(
        f"{source} has no '{wanted}' column (the run's file paths); it has: {available}"
    )


def _from_features(bundle: Bundle, table: pd.DataFrame, source: str) -> Items:
    preprocessing = _feature_spec(bundle)
    names = preprocessing.get("feature_names")
    width = int(np.prod(preprocessing["raw_shape"]))
    if names:
        missing = [name for name in names if name not in table.columns]
        extra = [str(column) for column in table.columns if column not in set(names)]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"lacks {_listed(missing)}")
            if extra:
                parts.append(f"has other columns {_listed(extra)}")
            raise DataError(
                f"{source} {' and '.join(parts)}; the run was trained on {len(names)} "
                f"columns: {_listed(names)}"
            )
        table = table[names]
    elif table.shape[1] != width:
        raise DataError(f"{source} has {table.shape[1]} columns; the run needs {width} features")
    not_numeric = [str(c) for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if not_numeric:
        raise DataError(f"{source}: columns {_listed(not_numeric)} are not numeric")
    if table.isna().to_numpy().any():
        raise DataError(f"{source} has missing values")
    raw = table.to_numpy(dtype=np.float32)
    return Items(identifiers=np.arange(len(raw), dtype=np.int64), raw=raw)


def _from_array(bundle: Bundle, array: np.ndarray, source: str) -> Items:
    if bundle.decoded is not None:
        return _computed_features(bundle, array, source)
    if bundle.data_kind == "files":
        raise DataError(f"this run was trained on image files: give it {expected_forms(bundle)}")
    preprocessing = _feature_spec(bundle)
    raw_shape = [int(side) for side in preprocessing["raw_shape"]]
    width = int(np.prod(raw_shape))
    shape = list(array.shape)
    if len(shape) < 1 or (shape[1:] != raw_shape and shape[1:] != [width]):
        forms = f"(N, {', '.join(map(str, raw_shape))})"
        if len(raw_shape) > 1:
            forms += f" or (N, {width})"
        raise DataError(f"{source} has shape {tuple(shape)}; the run needs {forms}")
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{source} has dtype {array.dtype}; the run needs numbers")
    return Items(identifiers=np.arange(shape[0], dtype=np.int64), raw=array)


def _computed_features(bundle: Bundle, array: np.ndarray, source: str) -> Items:
    """Features its feature function already made (shape (N, *model input)), for a run
    trained on decoded files."""
    shape = list(array.shape)
    if shape[1:] != bundle.input_shape:
        wanted = ", ".join(map(str, bundle.input_shape))
        raise DataError(
            f"{source} has shape {tuple(shape)}; features of this run are (N, {wanted}), or "
            f"give it the files: {expected_forms(bundle)}"
        )
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{source} has dtype {array.dtype}; the run needs numbers")
    return Items(identifiers=np.arange(shape[0], dtype=np.int64), raw=array)


def _feature_spec(bundle: Bundle) -> dict[str, Any]:
    spec = bundle.preprocessing_value
    if spec is None:
        raise DataError(
            "this run's features step used a transform ginpipe cannot save, so it cannot "
            "predict from raw features"
        )
    return spec


def _listed(names: list[str]) -> str:
    shown = ", ".join(f"'{name}'" for name in names[:MAX_NAMED])
    return shown + (f" (+{len(names) - MAX_NAMED} more)" if len(names) > MAX_NAMED else "")
