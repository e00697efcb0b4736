"""Turn one split of the ``data`` state key into a torch Dataset for the data loaders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import TensorDataset

from ginpipe.tasks.data.decoded_files import DecodedFileDataset
from ginpipe.tasks.data.image_dataset import ImageFileDataset
from ginpipe.tasks.data.shard_dataset import ShardDataset

SPLITS = ("train", "val", "test")


def make_dataset(
    data: Mapping[str, Any], split: str
) -> ShardDataset | DecodedFileDataset | ImageFileDataset | TensorDataset:
    """A Dataset of ``(x: float32 tensor, y: int64 tensor)`` for ``split`` of ``data``.

    Arrays are copied into tensors once (the stored arrays may be read-only); files are
    decoded per item, in the DataLoader workers; shards are memory-mapped there.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    part = data[split]
    if data["kind"] == "shards":
        return ShardDataset(
            data["store"], data["shards"], part["shard"], part["row"], part["y"], data["normalize"]
        )
    if data["kind"] == "files" and data.get("decoder") is not None:
        return DecodedFileDataset(
            part["path"], part["y"], data["decoder"], data.get("item_transform"), data["normalize"]
        )
    if data["kind"] == "files":
        return ImageFileDataset(part["path"], part["y"], data["transform"])
    return TensorDataset(
        torch.tensor(part["X"], dtype=torch.float32), torch.tensor(part["y"], dtype=torch.int64)
    )
