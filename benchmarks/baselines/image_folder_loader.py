"""A hand-written image Dataset over a labels CSV: the baseline of the data-loading benchmark.

What a user writes without ginpipe: read ``labels.csv`` with pandas, open each PNG with
PIL, convert to grayscale, resize to the target size, scale to [0, 1], normalize with a
fixed mean and std, and iterate one epoch with a DataLoader (batch 64, 2 workers, "spawn").

    python benchmarks/baselines/image_folder_loader.py --csv labels.csv --limit N \
        --size 32 32 --mean 0.1 --std 0.2

Prints one JSON line: items, seconds, items per second, and the peak RSS of this (main)
process, which does not include the workers.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset


class LabeledImages(Dataset):
    """(image, label) pairs decoded on demand from the paths of a labels table."""

    def __init__(
        self, paths: list[str], labels: list[int], size: tuple[int, int], mean: float, std: float
    ) -> None:
        self.paths = paths
        self.labels = labels
        self.size = size  # (height, width)
        self.mean = mean
        self.std = std

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        with Image.open(self.paths[index]) as image:
            image = image.convert("L")
            height, width = self.size
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32) / 255.0
        x = torch.from_numpy((pixels[np.newaxis] - self.mean) / self.std)
        return x, torch.tensor(self.labels[index], dtype=torch.int64)


def epoch(loader: DataLoader) -> tuple[int, float, float]:
    """Items, seconds for the whole epoch (worker start included), seconds to first batch."""
    start = time.perf_counter()
    items, first = 0, None
    for _, y in loader:
        if first is None:
            first = time.perf_counter() - start
        items += len(y)
    return items, time.perf_counter() - start, first or 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")
    parser.add_argument("--size", type=int, nargs=2, default=(32, 32), metavar=("H", "W"))
    parser.add_argument("--mean", type=float, default=0.0)
    parser.add_argument("--std", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    table = pd.read_csv(args.csv, nrows=args.limit)
    paths = [str(args.csv.parent / path) for path in table["path"]]
    dataset = LabeledImages(paths, table["label"].tolist(), tuple(args.size), args.mean, args.std)
    loader = DataLoader(
        dataset,
        batch_size=64,
        shuffle=True,
        num_workers=args.workers,
        multiprocessing_context="spawn" if args.workers else None,
        generator=torch.Generator().manual_seed(0),
    )
    items, seconds, first = epoch(loader)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "items": items,
                "seconds": seconds,
                "first_batch_s": first,
                "items_per_s": items / seconds,
                "main_rss_mb": peak_kib / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
