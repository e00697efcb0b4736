"""Items read back from feature shards through memory mapping, one item at a time.

The dataset holds only the index (shard and row of each item, int64 arrays) and the shard
file names; each DataLoader worker opens the shards it needs with
``np.load(mmap_mode="r")``, so an item costs a page-cache read and the main process
never holds the features: its memory stays flat in the number of items.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ginpipe import DataError

OPEN_SHARDS = 64  # memory maps kept open per process (each is one mapping, not its data)


class ShardDataset(Dataset):
    """(features tensor, label tensor) pairs from ``.npy`` shards, normalized by a scalar
    mean and std when given."""

    def __init__(
        self,
        directory: str | Path,
        shard_files: Sequence[str],
        shard: np.ndarray,
        row: np.ndarray,
        labels: np.ndarray,
        normalize: Mapping[str, float] | None = None,
    ) -> None:
        self.directory = str(directory)
        self.shard_files = np.asarray(shard_files, dtype=str)
        self.shard = np.asarray(shard, dtype=np.int64)
        self.row = np.asarray(row, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        if not len(self.shard) == len(self.row) == len(self.labels):
            raise ValueError("shard, row and labels need one entry per item")
        self.mean = float(normalize["mean"]) if normalize else 0.0
        self.std = float(normalize["std"]) if normalize else 1.0
        self._open: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        shard = int(self.shard[index])
        # np.array copies the one item out of the read-only map (torch wants writable memory)
        features = np.array(self._shard(shard)[int(self.row[index])], dtype=np.float32)
        if self.std != 1.0 or self.mean != 0.0:
            features -= self.mean
            features /= self.std
        return torch.from_numpy(features), torch.tensor(self.labels[index], dtype=torch.int64)

    def _shard(self, shard: int) -> np.ndarray:
        mapped = self._open.get(shard)
        if mapped is not None:
            self._open.move_to_end(shard)
            return mapped
        path = Path(self.directory) / str(self.shard_files[shard])
        try:
            mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DataError(f"cannot read feature shard '{path}': {error}") from error
        self._open[shard] = mapped
        if len(self._open) > OPEN_SHARDS:
            self._open.popitem(last=False)
        return mapped

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()  # maps belong to one process: workers open their own
        return state
