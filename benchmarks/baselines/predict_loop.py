"""A hand-written inference loop over image files: the baseline of the predict benchmark.

What a user writes without ``ginpipe predict``: rebuild the ResNet with the arguments they
know, load the weights file, read the table of files with pandas, decode each PNG with PIL
(grayscale, resize, /255, normalize with the run's mean and std) in a DataLoader with the
same settings as ``ginpipe predict`` (batch size, workers, no shuffling), softmax, and
write one CSV row per file.

    python benchmarks/baselines/predict_loop.py --run RUN_DIR --csv labels.csv --out p.csv

Prints one JSON line: items, seconds (model load to CSV written), items per second, and
the peak RSS of this (main) process, which does not include the workers.
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
from safetensors.torch import load_file
from torch.utils.data import DataLoader, Dataset

from ginpipe.tasks.models.resnet import ResNet


class Images(Dataset):
    """Normalized (1, H, W) tensors decoded on demand from file paths."""

    def __init__(self, paths: list[str], size: tuple[int, int], mean: float, std: float) -> None:
        self.paths, self.size, self.mean, self.std = paths, size, mean, std

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        with Image.open(self.paths[index]) as image:
            image = image.convert("L")
            height, width = self.size
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32) / 255.0
        return torch.from_numpy((pixels[np.newaxis] - self.mean) / self.std)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="the trained run directory")
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    start = time.perf_counter()
    info = json.loads((args.run / "model" / "model.json").read_text())
    network = ResNet(**info["network"]["constructor"])
    network.load_state_dict(load_file(str(args.run / "model" / "weights.safetensors")))
    network.eval()
    image = info["input"]["image"]
    classes = info["classes"]

    table = pd.read_csv(args.csv)
    paths = [str(args.csv.parent / path) for path in table["path"]]
    dataset = Images(paths, tuple(image["size"]), image["mean"][0], image["std"][0])
    loader = DataLoader(dataset, batch_size=args.batch_size, num_workers=args.workers)
    probabilities = []
    with torch.inference_mode():
        for x in loader:
            probabilities.append(torch.softmax(network(x), dim=1))
    probs = torch.cat(probabilities).double().numpy()
    out = pd.DataFrame(
        {"path": table["path"], "predicted_class": [classes[i] for i in probs.argmax(axis=1)]}
    )
    for column, name in enumerate(classes):
        out[f"prob_{name}"] = probs[:, column]
    out.to_csv(args.out, index=False)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "items": len(paths),
                "seconds": seconds,
                "items_per_s": len(paths) / seconds,
                "main_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
