"""Hand-written feature extraction: the baseline of the feature-extraction benchmark.

What a user writes without ginpipe: read ``labels.csv`` with pandas, then a
``multiprocessing.Pool`` that reads each WAV with soundfile, mixes it to mono, crops or pads
it to one second and computes the log-mel spectrogram, saving each item with ``np.save``.
The log-mel itself is ginpipe's ``LogMel`` (the same torch.stft and filterbank), so the
comparison is about everything around the maths: the pool, the files, the bookkeeping.

    python benchmarks/baselines/logmel_pool.py --csv labels.csv --out DIR --workers 2

Prints one JSON line: items, seconds (pool start to last file written), items per second.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile
import torch

from ginpipe.tasks.data.audio_features import LogMel

RATE = 16000
FEATURE = LogMel(sample_rate=RATE, n_fft=512, hop_length=512, n_mels=40)


def features(job: tuple[str, str]) -> int:
    """Read, mono, crop/pad to 1 s, log-mel, np.save; returns 1 for the count."""
    path, out = job
    samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    if rate != RATE:
        raise ValueError(f"{path}: {rate} Hz")
    audio = samples.mean(axis=1)[:RATE]
    audio = np.pad(audio, (0, RATE - len(audio)))[None]
    np.save(out, FEATURE(audio))
    return 1


def init() -> None:
    torch.set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    table = pd.read_csv(args.csv)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [
        (str(args.csv.parent / path), str(args.out / f"{index}.npy"))
        for index, path in enumerate(table["path"])
    ]
    start = time.perf_counter()
    with multiprocessing.Pool(args.workers, initializer=init) as pool:
        items = sum(pool.imap_unordered(features, jobs, chunksize=64))
    seconds = time.perf_counter() - start
    print(json.dumps({"items": items, "seconds": seconds, "items_per_s": items / seconds}))


if __name__ == "__main__":
    main()
