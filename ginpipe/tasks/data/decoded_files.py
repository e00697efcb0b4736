"""Files decoded per item by a decoder, then an optional per-item transform (fast features).

Both are rebuilt in each DataLoader worker from their JSON specs (``callables``), so no
worker reads gin state; the transform runs every epoch, the right place for cheap features
or augmentation. Expensive features belong in ``extract_features`` (computed once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ginpipe import DataError
from ginpipe.tasks.data import callables


class DecodedFileDataset(Dataset):
    """(x, label) with ``x = (transform(decoder(path)) - mean) / std`` as float32."""

    def __init__(
        self,
        paths: Sequence[str] | np.ndarray,
        labels: Sequence[int] | np.ndarray,
        decoder: Mapping[str, Any],
        transform: Mapping[str, Any] | None = None,
        normalize: Mapping[str, float] | None = None,
    ) -> None:
        self.paths = np.asarray(paths, dtype=str)  # not a list: see ImageFileDataset
        self.labels = np.asarray(labels, dtype=np.int64)
        if len(self.paths) != len(self.labels):
            raise ValueError(f"{len(self.paths)} paths but {len(self.labels)} labels")
        self.decoder_spec = dict(decoder)
        self.transform_spec = dict(transform) if transform else None
        self.mean = float(normalize["mean"]) if normalize else 0.0
        self.std = float(normalize["std"]) if normalize else 1.0
        self._decode: Any = None
        self._transform: Any = None

    def __len__(self) -> int:
        return len(self.paths)

    def item(self, index: int) -> np.ndarray:
        """The features of one item, before normalization."""
        if self._decode is None:
            self._decode = callables.from_spec(self.decoder_spec)
            if self.transform_spec is not None:
                self._transform = callables.from_spec(self.transform_spec)
        path = str(self.paths[index])
        try:
            x = self._decode(path)
            if self._transform is not None:
                x = self._transform(x)
        except DataError:
            raise
        except Exception as error:
            raise DataError(
                f"cannot make features of '{path}': {type(error).__name__}: {error}"
            ) from None
        return np.asarray(x, dtype=np.float32)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.item(index)
        if self.std != 1.0 or self.mean != 0.0:
            x = (x - np.float32(self.mean)) / np.float32(self.std)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.tensor(
            self.labels[index], dtype=torch.int64
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_decode"] = state["_transform"] = None  # rebuilt from the specs in each worker
        return state
