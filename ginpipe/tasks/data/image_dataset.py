"""The torch Dataset of image files: decoded one item at a time, in DataLoader workers.

Built from a JSON transform spec, it pickles into workers (spawned ones included) without
gin or the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ginpipe.tasks.data.images import ImageTransform


class ImageFileDataset(Dataset):
    """(image tensor, label tensor) pairs, each decoded from its file when asked for.

    Paths are kept in a NumPy string array rather than a list of ``str``: reading list
    items touches their refcounts, which copies the pages of forked workers one by one.
    """

    def __init__(
        self,
        paths: Sequence[str] | np.ndarray,
        labels: Sequence[int] | np.ndarray,
        transform_spec: Mapping[str, Any],
    ) -> None:
        self.paths = np.asarray(paths, dtype=str)
        self.labels = np.asarray(labels, dtype=np.int64)
        if len(self.paths) != len(self.labels):
            raise ValueError(f"{len(self.paths)} paths but {len(self.labels)} labels")
        self.transform = ImageTransform.from_spec(transform_spec)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.transform(str(self.paths[index]))
        return torch.from_numpy(image), torch.tensor(self.labels[index], dtype=torch.int64)
