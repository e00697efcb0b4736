"""Read the tables users point the loaders at, and turn label columns into class indices."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ginpipe import DataError

if TYPE_CHECKING:
    import pandas as pd


TABLE_READERS = {".csv": "read_csv", ".parquet": "read_parquet", ".pq": "read_parquet"}  # pandas
MISSING_EXAMPLES = 3  # how many missing files an error message names


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame; any problem with it becomes one DataError line."""
    import pandas as pd

    if not path.is_file():
        raise DataError(f"table '{path}' does not exist")
    reader_name = TABLE_READERS.get(path.suffix.lower())
    if reader_name is None:
        raise DataError(f"table '{path}' is not a CSV or Parquet file ({', '.join(TABLE_READERS)})")
    try:
        table = getattr(pd, reader_name)(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"table '{path}' is empty") from None
    except (OSError, ValueError) as error:  # parser, Arrow and decoding errors are ValueErrors
        raise DataError(f"cannot read table '{path}': {error}") from error
    if len(table) == 0:
        raise DataError(f"table '{path}' has no rows")
    return table


def require_columns(table: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    """Fail with the missing and the available column names, the two things a user needs."""
    missing = [column for column in columns if column not in table.columns]
    if missing:
        names = ", ".join(f"'{column}'" for column in missing)
        available = ", ".join(str(column) for column in table.columns)
        raise DataError(f"{source} has no column {names}; its columns are: {available}")


def encode_labels(labels: pd.Series, source: str) -> tuple[np.ndarray, list[str]]:
    """Class indices (int64) into the sorted class names.

    Integer labels sort numerically (so '10' comes after '9'); anything else sorts as text.
    """
    import pandas as pd

    unlabeled = int(labels.isna().sum())
    if unlabeled:
        raise DataError(
            f"{source}: {unlabeled} of {len(labels)} rows have no value in label column "
            f"'{labels.name}'"
        )
    if pd.api.types.is_integer_dtype(labels) or pd.api.types.is_bool_dtype(labels):
        values = labels.to_numpy()
    else:
        values = labels.astype(str).to_numpy(dtype=str)
    classes, indices = np.unique(values, return_inverse=True)
    return indices.astype(np.int64), [str(name) for name in classes]


def resolve_paths(paths: pd.Series, root: Path, source: str) -> list[str]:
    """Absolute, normalized paths; relative entries are taken relative to ``root``."""
    empty = int(paths.isna().sum())
    if empty:
        raise DataError(f"{source}: {empty} rows have no value in path column '{paths.name}'")
    return [os.path.normpath(root / str(path)) for path in paths]


def require_files(paths: Sequence[str], source: str) -> None:
    """Check existence only: reading thousands of files belongs to the data loaders."""
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        examples = ", ".join(missing[:MISSING_EXAMPLES])
        raise DataError(
            f"{len(missing)} of {len(paths)} files listed in {source} do not exist, e.g. {examples}"
        )
