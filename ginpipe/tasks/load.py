"""Loaders: each turns a data source into the ``dataset`` state key.

Two kinds exist (see docs/state-keys.md): ``arrays`` holds the features in memory,
``files`` holds a table of file paths and labels whose items are read later, per item, by
the data loaders, so large image sets never have to fit in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ginpipe import ConfigError, DataError, TaskView, task
from ginpipe.tasks.data import callables
from ginpipe.tasks.data.decoders import (
    ARRAY_EXTENSIONS,
    AUDIO_EXTENSIONS,
    IMAGE_EXTENSIONS,
    decoder_for,
)
from ginpipe.tasks.data.tables import (
    encode_labels,
    read_table,
    require_columns,
    require_files,
    resolve_paths,
)

if TYPE_CHECKING:
    import pandas as pd

# Bundled with scikit-learn: they work offline (the fetch_* datasets download). Another
# name is refused before any task runs, with a did-you-mean (ginpipe/config/checks.py).
SklearnDataset = Literal["digits", "wine", "breast_cancer", "iris"]
SKLEARN_LOADERS: dict[SklearnDataset, str] = {
    "digits": "load_digits",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "iris": "load_iris",
}
FOLDER_EXTENSIONS = IMAGE_EXTENSIONS + AUDIO_EXTENSIONS + ARRAY_EXTENSIONS
RESERVED_COLUMNS = ("path", "y")  # the columns every files table already has


@task(writes=("dataset",))
def load_sklearn(
    state: TaskView, *, name: SklearnDataset = "digits", as_images: bool = True
) -> dict:
    """One of scikit-learn's bundled datasets as arrays.

    With ``as_images`` the digits come as (N, 1, 8, 8) images for convolutional models; the
    tabular datasets (wine, breast_cancer, iris) are always flat (N, features).
    """
    import pandas as pd
    from sklearn import datasets

    bunch = getattr(datasets, SKLEARN_LOADERS[name])()
    features = bunch.images[:, np.newaxis] if as_images and "images" in bunch else bunch.data
    dataset = arrays_dataset(
        features,
        np.asarray(bunch.target, dtype=np.int64),
        classes=[str(name) for name in bunch.target_names],
        meta=pd.DataFrame({"id": np.arange(len(bunch.target), dtype=np.int64)}),
        feature_names=[str(name) for name in bunch.get("feature_names", [])] or None,
    )
    return {"dataset": dataset}


@task(writes=("dataset",))
def load_csv_features(
    state: TaskView,
    *,
    path: str,
    label_column: str = "label",
    feature_columns: Sequence[str] | None = None,
    extra_columns: Sequence[str] = (),
) -> dict:
    """A CSV or Parquet table of numeric feature columns and a label column, as arrays.

    ``feature_columns`` defaults to every column except the label and ``extra_columns``;
    the extra columns (e.g. a group id for splitting) go to ``meta``.
    """
    import pandas as pd

    table_path = Path(path).expanduser().absolute()
    table = read_table(table_path)
    source = f"table '{table_path}'"
    require_columns(table, [label_column, *(feature_columns or ()), *extra_columns], source)
    if feature_columns is None:
        not_features = {label_column, *extra_columns}
        feature_columns = [column for column in table.columns if column not in not_features]
    if not feature_columns:
        raise DataError(f"{source} has no feature columns besides '{label_column}'")
    for column in feature_columns:
        _require_numeric(table[column], source)

    labels, classes = encode_labels(table[label_column], source)
    meta = pd.DataFrame({"id": np.arange(len(table), dtype=np.int64)})
    for column in extra_columns:
        meta[column] = table[column].to_numpy()
    features = table[list(feature_columns)].to_numpy(dtype=np.float32)
    dataset = arrays_dataset(features, labels, classes, meta, feature_names=feature_columns)
    return {"dataset": dataset}


@task(writes=("dataset",))
def load_table(
    state: TaskView,
    *,
    path: str,
    path_column: str = "path",
    label_column: str = "label",
    root: str | None = None,
    extra_columns: Sequence[str] = (),
    decoder: Callable[[str], Any] | None = None,
) -> dict:
    """A CSV or Parquet table listing one file per row (path and label), as files.

    Paths are relative to ``root`` (default: the table's folder) unless absolute. Only
    their existence is checked here; items are decoded per batch during training.
    ``extra_columns`` (e.g. a group id) are kept for splitting.

    ``decoder(path) -> np.ndarray`` reads one item: ``@audio_decoder()``,
    ``@npy_decoder()``, ``@image_decoder()`` or any importable function. It runs in
    worker processes, rebuilt there from its name and parameters, never from gin. By
    default audio and ``.npy`` files get the audio and array decoders and images the image
    pipeline of ``make_features``, by extension.
    """
    import pandas as pd

    clashes = [column for column in extra_columns if column in RESERVED_COLUMNS]
    if clashes:
        raise ConfigError(
            f"load_table.extra_columns may not contain {clashes}: the files table already has "
            f"columns {list(RESERVED_COLUMNS)}"
        )
    table_path = Path(path).expanduser().absolute()
    table = read_table(table_path)
    source = f"table '{table_path}'"
    require_columns(table, [path_column, label_column, *extra_columns], source)

    base = Path(root).expanduser().absolute() if root is not None else table_path.parent
    paths = resolve_paths(table[path_column], base, source)
    require_files(paths, source)
    labels, classes = encode_labels(table[label_column], source)
    files = pd.DataFrame({"path": paths, "y": labels})
    for column in extra_columns:
        files[column] = table[column].to_numpy()
    spec = _decoder_spec(decoder, paths, source, "load_table.decoder")
    return {"dataset": files_dataset(files, classes, spec)}


@task(writes=("dataset",))
def load_folder(
    state: TaskView,
    *,
    path: str,
    extensions: Sequence[str] = FOLDER_EXTENSIONS,
    decoder: Callable[[str], Any] | None = None,
) -> dict:
    """A folder with one sub-folder of files per class (``path/<class>/.../<file>``).

    Class names are the sub-folder names, sorted; hidden folders are skipped. Images,
    audio (WAV, FLAC, OGG, AIFF) and ``.npy`` files are recognized; ``decoder`` as in
    ``load_table`` (by default chosen by extension; one kind of file per folder).
    """
    import pandas as pd

    root = Path(path).expanduser().absolute()
    if not root.is_dir():
        raise DataError(f"folder '{root}' does not exist")
    suffixes = {extension.lower() for extension in extensions}
    class_dirs = sorted(
        entry for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith(".")
    )
    if not class_dirs:
        raise DataError(f"folder '{root}' has no class sub-folders ('{root}/<class>/...')")

    paths: list[str] = []
    labels: list[int] = []
    for label, class_dir in enumerate(class_dirs):
        found = sorted(
            str(file)
            for file in class_dir.rglob("*")
            if file.suffix.lower() in suffixes and file.is_file()
        )
        if not found:
            raise DataError(
                f"class folder '{class_dir}' has no files ending in {', '.join(sorted(suffixes))}"
            )
        paths += found
        labels += [label] * len(found)
    files = pd.DataFrame({"path": paths, "y": np.asarray(labels, dtype=np.int64)})
    spec = _decoder_spec(decoder, paths, f"folder '{root}'", "load_folder.decoder")
    return {"dataset": files_dataset(files, [class_dir.name for class_dir in class_dirs], spec)}


def arrays_dataset(
    features: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    meta: pd.DataFrame,
    feature_names: Sequence[str] | None = None,
) -> dict:
    """The ``arrays`` kind of the ``dataset`` key; ``feature_names`` name the columns of
    the flattened features (a feature table's columns), when known."""
    dataset = {
        "kind": "arrays",
        "X": np.asarray(features, dtype=np.float32),
        "y": np.asarray(labels, dtype=np.int64),
        "classes": classes,
        "meta": meta,
    }
    if feature_names is not None:
        dataset["feature_names"] = [str(name) for name in feature_names]
    return dataset


def files_dataset(
    table: pd.DataFrame, classes: list[str], decoder: dict[str, Any] | None = None
) -> dict:
    """The ``files`` kind of the ``dataset`` key (``decoder``: a spec, absent for images)."""
    dataset = {"kind": "files", "table": table, "classes": classes}
    if decoder is not None:
        dataset["decoder"] = decoder
    return dataset


def _decoder_spec(
    decoder: Callable[[str], Any] | None, paths: Sequence[str], source: str, what: str
) -> dict[str, Any] | None:
    """The configured decoder as a spec, else the default for the files' extension."""
    if decoder is None:
        decoder = decoder_for(paths, source)
    return None if decoder is None else callables.to_spec(decoder, what)


def _require_numeric(column: pd.Series, source: str) -> None:
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(column):
        raise DataError(
            f"feature column '{column.name}' in {source} is not numeric ({column.dtype}); "
            "name it in extra_columns or leave it out of feature_columns"
        )
    missing = int(column.isna().sum())
    if missing:
        raise DataError(f"feature column '{column.name}' in {source} has {missing} missing values")
