"""Audio prediction: ``ginpipe predict`` over WAV files against a hand-written loop
(``baselines/predict_audio_loop.py``: soundfile, the same log-mel, the same network), the
main process's peak RSS as the files double (3000 -> 6000), and the run exported as one
waveform-to-probabilities ONNX graph on onnxruntime (``baselines/predict_audio_onnx.py``)
against ``ginpipe predict`` on the same files.

The audio example's model (``configs/data/audio.gin``, ``models/audio_cnn``, the fast debug
config) is trained once on generated recordings; both sides then predict every file of a
table with batch size 256 and 2 workers, timed from loading the model to the CSV on disk.
The ginpipe side calls the function behind the CLI in a fresh process
(``python -m benchmarks.predict_audio --child ...``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BENCH_DIR,
    PYTHON,
    REPO,
    WORK,
    BenchResult,
    Target,
    ginpipe_cmd,
    interleave,
    log,
    markdown_table,
    paired_ratios,
    quiet_note,
    run_measured,
    summarize,
)
from benchmarks.predict_throughput import BATCH_SIZE, GROWTH_LIMIT_BYTES, WORKERS, ginpipe_child

BASELINE = BENCH_DIR / "baselines" / "predict_audio_loop.py"
ONNX_LOOP = BENCH_DIR / "baselines" / "predict_audio_onnx.py"
THROUGHPUT_LIMIT = 0.95
ONNX_LIMIT = 1.0
# Throughput on SMALL files. Memory growth between SMALL and BIG: both beyond the loader's
# warm-up (two workers x prefetch 2 x batch 256 = 1024 items in flight, and the allocator's
# arenas), which a smaller first set would count as growth per file.
BIG, SMALL = 6000, 3000


def ensure_recordings(count: int) -> Path:
    """``count`` generated WAV files and their labels.csv, written once into ``_work``."""
    folder = WORK / f"audio_{count}"
    labels = folder / "data" / "generated" / "audio_events" / "labels.csv"
    if not labels.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        script = REPO / "scripts" / "make_audio_dataset.py"
        run_measured([PYTHON, str(script), "--count", str(count)], cwd=folder).check("audio data")
    return labels


def ensure_run(labels: Path) -> Path:
    """The audio example trained once (fast config) on the throughput set."""
    root = WORK / "predict_audio_root"
    run_dir = root / "bench" / "model"
    if (run_dir / "model" / "model.json").is_file():
        return run_dir
    shutil.rmtree(root, ignore_errors=True)
    log("predict_audio: training the audio example once")
    configs = [str(REPO / "configs" / c) for c in ("base.gin", "data/audio.gin")]
    configs += [str(REPO / "configs" / c) for c in ("models/audio_cnn.gin", "debug/fast.gin")]
    cmd = ginpipe_cmd(
        "run", *configs, "--root", str(root), "--project", "bench", "--name", "model",
    )  # fmt: skip
    run_measured(cmd, cwd=labels.parents[3]).check("ginpipe run (audio benchmark model)")
    return run_dir


def ensure_export(run_dir: Path, labels: Path) -> Path:
    """The run exported once as ONNX, from the waveform (``ginpipe export`` checks it on the
    run's test files, which the run names relative to its data folder)."""
    model = WORK / "predict_audio_model.onnx"
    if not model.is_file():
        cmd = ginpipe_cmd("export", str(run_dir), "--format", "onnx", "-o", str(model))
        run_measured(cmd, cwd=labels.parents[3]).check("ginpipe export (audio benchmark model)")
    return model


def run_side(side: str, run_dir: Path, labels: Path, count: int) -> dict[str, Any]:
    out = WORK / f"predict-audio-{side}-{count}.csv"
    if side == "onnx":
        cmd = [PYTHON, str(ONNX_LOOP), "--model", str(ensure_export(run_dir, labels))]
        cmd += ["--csv", str(labels), "--out", str(out), "--batch-size", str(BATCH_SIZE)]
    elif side == "ginpipe":
        cmd = [PYTHON, "-m", "benchmarks.predict_audio", "--child", "--run", str(run_dir)]
        cmd += ["--csv", str(labels), "--out", str(out)]
    else:
        cmd = [PYTHON, str(BASELINE), "--run", str(run_dir), "--csv", str(labels)]
        cmd += ["--out", str(out), "--batch-size", str(BATCH_SIZE), "--workers", str(WORKERS)]
    measurement = run_measured(cmd).check(f"{side} audio predict")
    return {**measurement.last_json_line(), "wall": measurement.wall}


def largest_difference(other: str = "hand-written") -> float:
    import pandas as pd

    ours = pd.read_csv(WORK / f"predict-audio-ginpipe-{SMALL}.csv")
    theirs = pd.read_csv(WORK / f"predict-audio-{other}-{SMALL}.csv")
    columns = [c for c in theirs.columns if c.startswith("prob_")]
    if list(ours["predicted_class"]) != list(theirs["predicted_class"]):
        raise AssertionError(f"ginpipe predict and the {other} loop disagree on classes")
    return float((ours[columns] - theirs[columns]).abs().to_numpy().max())


def run(repeats: int) -> BenchResult:
    big, small = ensure_recordings(BIG), ensure_recordings(SMALL)
    run_dir = ensure_run(small)
    ensure_export(run_dir, small)
    variants = {
        f"{side} {count}": (lambda _, s=side, lab=labels, n=count: run_side(s, run_dir, lab, n))
        for count, labels in ((BIG, big), (SMALL, small))
        for side in ("ginpipe", "hand-written")
    }
    variants[f"onnx {SMALL}"] = lambda _: run_side("onnx", run_dir, small, SMALL)
    results = interleave(variants, repeats)
    gp, base = results[f"ginpipe {SMALL}"], results[f"hand-written {SMALL}"]
    onnx = results[f"onnx {SMALL}"]
    rate = paired_ratios([g["items_per_s"] for g in gp], [b["items_per_s"] for b in base])
    onnx_rate = paired_ratios([o["items_per_s"] for o in onnx], [g["items_per_s"] for g in gp])
    growth: dict[str, float] = {}
    rows = []
    for side in ("hand-written", "ginpipe"):
        small_rss = [r["main_rss_mb"] for r in results[f"{side} {SMALL}"]]
        big_rss = [r["main_rss_mb"] for r in results[f"{side} {BIG}"]]
        per_file = [
            (b - s) * 2**20 / (BIG - SMALL) for b, s in zip(big_rss, small_rss, strict=True)
        ]
        growth[side] = summarize(per_file).median
        rows.append([side, summarize(small_rss).fmt(1), summarize(big_rss).fmt(1),
                     summarize(per_file).fmt(0)])  # fmt: skip

    def col(rows: list[dict[str, Any]], key: str) -> str:
        return summarize([row[key] for row in rows]).fmt(0)

    throughput = markdown_table(
        ["", "hand-written", "ginpipe predict", "ratio ginpipe / hand-written"],
        [
            ["files", col(base, "items"), col(gp, "items"), ""],
            ["items/s", col(base, "items_per_s"), col(gp, "items_per_s"), rate.fmt(3)],
        ],
    )  # fmt: skip
    exported = markdown_table(
        ["", "ginpipe predict", "ONNX waveform graph", "ratio ONNX / ginpipe"],
        [["items/s", col(gp, "items_per_s"), col(onnx, "items_per_s"), onnx_rate.fmt(3)]],
    )
    memory = markdown_table(
        ["main process peak RSS MiB", f"{SMALL} files", f"{BIG} files", "bytes per extra file"],
        rows,
    )
    body = "\n\n".join(
        filter(
            None,
            [
                f"{SMALL} generated 1 s WAV files (16 kHz), the audio example's model trained once "
                f"with configs/debug/fast.gin. Both sides: soundfile, the run's log-mel "
                f"(40 bands) and normalization, batch {BATCH_SIZE}, {WORKERS} workers; "
                f"{len(gp)} rounds interleaved, each a fresh process. Largest probability "
                f"difference: {largest_difference():.1e} (same classes).",
                throughput,
                memory,
                f"The run exported with `ginpipe export --format onnx` (decoded waveform in, "
                f"probabilities out: log-mel, normalization and softmax in the graph), run by "
                f"a deployer's loop on onnxruntime: soundfile on 2 threads, batch {BATCH_SIZE}, "
                f"on the same {SMALL} files. Largest probability difference from ginpipe "
                f"predict: {largest_difference('onnx'):.1e} (same classes).",
                exported,
                quiet_note(results),
            ],
        )
    )
    return BenchResult(
        key="predict_audio",
        title="Prediction from audio files",
        body=body,
        targets=[
            Target(
                "items/s ginpipe predict / hand-written (WAV)",
                rate.median,
                THROUGHPUT_LIMIT,
                higher_is_better=True,
            ),
            Target(
                "items/s ONNX waveform graph on onnxruntime / ginpipe predict (WAV)",
                onnx_rate.median,
                ONNX_LIMIT,
                higher_is_better=True,
            ),
            Target(
                "ginpipe main-process RSS growth, bytes per extra WAV",
                growth["ginpipe"],
                GROWTH_LIMIT_BYTES,
            ),
        ],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help="one ginpipe predict, JSON out")
    parser.add_argument("--run", type=Path)
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(ginpipe_child(args.run, args.csv, args.out, WORKERS)))
    else:
        print(run(args.repeats).body)
