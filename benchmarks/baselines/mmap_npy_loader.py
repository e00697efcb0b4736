"""A hand-written Dataset over per-item ``.npy`` features: the baseline of the shard epoch.

Reads the files ``baselines/logmel_pool.py`` saved with ``np.load(mmap_mode="r")``, copies
the item out, normalizes it with a fixed mean and std, and iterates one epoch with a
DataLoader (batch 64, 2 spawned workers, shuffled).

    python benchmarks/baselines/mmap_npy_loader.py --dir DIR --limit N --mean M --std S

Prints one JSON line: items, seconds, items per second, first-batch seconds and the peak
RSS of this (main) process, which does not include the workers.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


class NpyFeatures(Dataset):
    def __init__(self, paths: list[str], mean: float, std: float) -> None:
        self.paths = paths
        self.mean = mean
        self.std = std

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        features = np.array(np.load(self.paths[index], mmap_mode="r"), dtype=np.float32)
        features = (features - self.mean) / self.std
        return torch.from_numpy(features), torch.tensor(index % 5, dtype=torch.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--limit", type=int, required=True)
    parser.add_argument("--mean", type=float, default=0.0)
    parser.add_argument("--std", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    paths = [str(args.dir / f"{index}.npy") for index in range(args.limit)]
    loader = DataLoader(
        NpyFeatures(paths, args.mean, args.std),
        batch_size=64,
        shuffle=True,
        num_workers=args.workers,
        multiprocessing_context="spawn" if args.workers else None,
        generator=torch.Generator().manual_seed(0),
    )
    start = time.perf_counter()
    items, first = 0, None
    for _, y in loader:
        if first is None:
            first = time.perf_counter() - start
        items += len(y)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "items": items,
                "seconds": seconds,
                "first_batch_s": first or 0.0,
                "items_per_s": items / seconds,
                "main_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
