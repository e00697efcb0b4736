"""A deployer's loop over WAV files with the exported waveform-to-probabilities ONNX model.

What someone serving the model without ginpipe or torch writes: read the table of files,
decode each WAV with soundfile (mono, crop or pad to the length the sidecar names; two
threads, as soundfile releases the interpreter while it reads), feed batches of waveforms to
onnxruntime, one CSV row per file. Log-mel, normalization and softmax are in the graph.

    python benchmarks/baselines/predict_audio_onnx.py --model m.onnx --csv labels.csv --out p.csv

Prints one JSON line: items, seconds (session creation to CSV written), items per second,
and the peak RSS of this process.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
import soundfile


def decode(path: str, samples: int) -> np.ndarray:
    audio, _ = soundfile.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)[:samples]
    return np.pad(mono, (0, samples - len(mono)))[np.newaxis]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="the exported .onnx file")
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    start = time.perf_counter()
    sidecar = json.loads(args.model.with_name(args.model.name + ".json").read_text())
    samples = int(sidecar["input"]["shape"][-1])
    session = onnxruntime.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    table = pd.read_csv(args.csv)
    paths = [str(args.csv.parent / p) for p in table["path"]]
    chunks = []
    with ThreadPoolExecutor(args.threads) as pool:
        for first in range(0, len(paths), args.batch_size):
            batch = paths[first : first + args.batch_size]
            waves = np.stack(list(pool.map(decode, batch, [samples] * len(batch))))
            chunks.append(session.run(["probabilities"], {"input": waves})[0])
    probabilities = np.concatenate(chunks)
    classes = sidecar["classes"]
    frame = pd.DataFrame({"path": table["path"]})
    frame["predicted_class"] = [classes[i] for i in probabilities.argmax(axis=1)]
    for index, name in enumerate(classes):
        frame[f"prob_{name}"] = probabilities[:, index]
    frame.to_csv(args.out, index=False)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "items": len(frame),
                "seconds": seconds,
                "items_per_s": len(frame) / seconds,
                "main_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
