"""A hand-written inference loop over WAV files: the baseline of the audio predict benchmark.

What a user writes without ``ginpipe predict``: rebuild the ResNet from the arguments they
know, load the weights, read the table of files, decode each WAV with soundfile (mono, crop
or pad to the trained length), compute the same log-mel (ginpipe's ``LogMel``, the function
the run trained with), standardize with the run's train mean and std, all in a DataLoader
with the same settings as ``ginpipe predict``; softmax; one CSV row per file.

    python benchmarks/baselines/predict_audio_loop.py --run RUN --csv labels.csv --out p.csv

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
import soundfile
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader, Dataset

from ginpipe.tasks.data.audio_features import LogMel
from ginpipe.tasks.models.resnet import ResNet


class Recordings(Dataset):
    """Standardized log-mel tensors computed on demand from WAV paths."""

    def __init__(self, paths: list[str], samples: int, logmel: LogMel, mean: float, std: float):
        self.paths, self.samples, self.logmel, self.mean, self.std = (
            paths, samples, logmel, mean, std,
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        audio, _ = soundfile.read(self.paths[index], dtype="float32", always_2d=True)
        mono = audio.mean(axis=1)[: self.samples]
        mono = np.pad(mono, (0, self.samples - len(mono)))
        features = self.logmel(mono[np.newaxis])
        return torch.from_numpy((features.astype(np.float32) - self.mean) / self.std)


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
    decoded, classes = info["input"]["decoded"], info["classes"]
    decoder = decoded["decoder"]["kwargs"]
    samples = int(decoder["sample_rate"] * decoder["duration"])
    logmel = LogMel(**decoded["transform"]["kwargs"])
    mean, std = decoded["normalize"]["mean"], decoded["normalize"]["std"]

    table = pd.read_csv(args.csv)
    paths = [str(args.csv.parent / path) for path in table["path"]]
    dataset = Recordings(paths, samples, logmel, mean, std)
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
