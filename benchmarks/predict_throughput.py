"""Prediction: ``ginpipe predict`` over PNG files against a hand-written inference loop
(``baselines/predict_loop.py``), and the main process's peak RSS as the files grow tenfold.

A small ResNet is trained once on the ~21k PNG digits of the loading benchmark (the same
files, in ``_work``); then both sides predict every file of a table: same model weights,
same decode, a DataLoader with batch size 256 and 2 workers, no shuffling, softmax, one
CSV row per file. The ginpipe side calls the function behind the CLI
(``predict_to_csv``) in a fresh process, so the RSS of the main process alone can be read
with ``getrusage``; both sides are timed from loading the model to the CSV on disk.

The ginpipe side runs as ``python -m benchmarks.predict_throughput --child ...``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from collections.abc import Callable
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
    profile_top,
    quiet_note,
    run_measured,
    summarize,
)
from benchmarks.data_loading import SMALL_LIMIT, FileSet, ensure_file_set

BASELINE = BENCH_DIR / "baselines" / "predict_loop.py"
BATCH_SIZE = 256
WORKERS = 2
THROUGHPUT_LIMIT = 0.95
# Memory stays flat: per extra file, a few copies of its path and its CSV row, not its
# pixels (the loading benchmark's limit). An absolute limit, not a ratio to the hand-written
# loop, whose growth is near zero (a few floats per file) and can come out negative.
GROWTH_LIMIT_BYTES = 2048
MODEL = ["ResNet.width=16", "ResNet.blocks_per_stage=[1, 1]"]


def ensure_run(file_set: FileSet) -> Path:
    """Train the model once (fast config) on the files; reused by later runs."""
    run_dir = WORK / "predict_root" / "bench" / "model"
    if (run_dir / "model" / "model.json").is_file():
        return run_dir
    shutil.rmtree(WORK / "predict_root", ignore_errors=True)
    data_gin = WORK / "predict_data.gin"
    data_gin.write_text(
        f"include '{REPO / 'configs' / 'data' / 'files.gin'}'\n"
        f"load_table.path = '{file_set.labels_csv}'\n"
    )
    configs = ["configs/base.gin", str(data_gin), "configs/models/resnet.gin"]
    mods = [arg for mod in MODEL for arg in ("--mod", mod)]
    log("predict: training the model once")
    cmd = ginpipe_cmd(
        "run", *configs, "configs/debug/fast.gin", *mods,
        "--root", str(WORK / "predict_root"), "--project", "bench", "--name", "model",
    )  # fmt: skip
    run_measured(cmd).check("ginpipe run (predict benchmark model)")
    return run_dir


def ginpipe_child(run_dir: Path, labels_csv: Path, out: Path, workers: int) -> dict[str, Any]:
    from ginpipe.inference.predicting import predict_to_csv

    start = time.perf_counter()
    predict_to_csv(
        run_dir, out, str(labels_csv), batch_size=BATCH_SIZE, num_workers=workers,
        show_progress=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    items = sum(1 for _ in out.open()) - 1
    return {
        "items": items,
        "seconds": seconds,
        "items_per_s": items / seconds,
        "main_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_ginpipe(run_dir: Path, file_set: FileSet) -> dict[str, Any]:
    out = WORK / f"predict-ginpipe-{file_set.name}.csv"
    cmd = [PYTHON, "-m", "benchmarks.predict_throughput", "--child"]
    cmd += ["--run", str(run_dir), "--csv", str(file_set.labels_csv), "--out", str(out)]
    measurement = run_measured(cmd).check("ginpipe predict")
    return {**measurement.last_json_line(), "wall": measurement.wall}


def baseline_cmd(run_dir: Path, file_set: FileSet, workers: int) -> list[str]:
    out = WORK / f"predict-baseline-{file_set.name}.csv"
    return [
        PYTHON, str(BASELINE), "--run", str(run_dir), "--csv", str(file_set.labels_csv),
        "--out", str(out), "--batch-size", str(BATCH_SIZE), "--workers", str(workers),
    ]  # fmt: skip


def run_baseline(run_dir: Path, file_set: FileSet) -> dict[str, Any]:
    measurement = run_measured(baseline_cmd(run_dir, file_set, WORKERS)).check("hand-written")
    return {**measurement.last_json_line(), "wall": measurement.wall}


def same_predictions(file_set: FileSet) -> float:
    """The largest probability difference between the two sides' CSV files."""
    import pandas as pd

    ours = pd.read_csv(WORK / f"predict-ginpipe-{file_set.name}.csv")
    theirs = pd.read_csv(WORK / f"predict-baseline-{file_set.name}.csv")
    columns = [c for c in theirs.columns if c.startswith("prob_")]
    if list(ours["predicted_class"]) != list(theirs["predicted_class"]):
        raise AssertionError("ginpipe predict and the hand-written loop disagree on classes")
    return float((ours[columns] - theirs[columns]).abs().to_numpy().max())


def variants(run_dir: Path, big: FileSet, small: FileSet) -> dict[str, Callable[[int], Any]]:
    return {
        f"ginpipe {big.files}": lambda _: run_ginpipe(run_dir, big),
        f"hand-written {big.files}": lambda _: run_baseline(run_dir, big),
        f"ginpipe {small.files}": lambda _: run_ginpipe(run_dir, small),
        f"hand-written {small.files}": lambda _: run_baseline(run_dir, small),
    }


def report(
    results: dict[str, list[dict[str, Any]]], big: FileSet, small: FileSet, difference: float
) -> BenchResult:
    gp, base = results[f"ginpipe {big.files}"], results[f"hand-written {big.files}"]
    rate = paired_ratios([g["items_per_s"] for g in gp], [b["items_per_s"] for b in base])

    def col(rows: list[dict[str, Any]], key: str, digits: int = 0) -> str:
        return summarize([r[key] for r in rows]).fmt(digits)

    throughput = markdown_table(
        ["", "hand-written", "ginpipe predict", "ratio ginpipe / hand-written"],
        [
            ["files", col(base, "items"), col(gp, "items"), ""],
            [
                "seconds (model load to CSV written)",
                col(base, "seconds", 2),
                col(gp, "seconds", 2),
                "",
            ],
            ["items/s", col(base, "items_per_s"), col(gp, "items_per_s"), rate.fmt(3)],
        ],
    )
    rows, growth = [], {}
    extra = big.files - small.files
    for label in ("hand-written", "ginpipe"):
        small_rss = [r["main_rss_mb"] for r in results[f"{label} {small.files}"]]
        big_rss = [r["main_rss_mb"] for r in results[f"{label} {big.files}"]]
        per_file = [(b - s) * 2**20 / extra for b, s in zip(big_rss, small_rss, strict=True)]
        growth[label] = summarize(per_file).median
        rows.append(
            [
                label,
                summarize(small_rss).fmt(1),
                summarize(big_rss).fmt(1),
                summarize(per_file).fmt(0),
            ]
        )
    memory = markdown_table(
        [
            "main process peak RSS MiB",
            f"{small.files} files",
            f"{big.files} files",
            "bytes per extra file",
        ],
        rows,
    )
    body = "\n\n".join(
        [
            f"{big.files} PNG digits (32x32 grayscale, the loading benchmark's files); a ResNet "
            f"({', '.join(MODEL)}) trained once with configs/debug/fast.gin. Both sides: "
            f"batch {BATCH_SIZE}, {WORKERS} workers (default start method), no shuffling, "
            f"one CSV row per file; {len(gp)} rounds interleaved, each a fresh process, timed "
            "from loading the model to the CSV on disk. Largest probability difference between "
            f"the two sides' CSVs: {difference:.1e} (same classes).",
            throughput,
            "Peak RSS of the main process (workers excluded) for "
            f"{small.files} and {big.files} files. The hand-written loop keeps every "
            "probability until it writes the CSV; ginpipe appends each batch's rows to the "
            "output as it goes.",
            memory,
        ]
    )
    body = "\n\n".join(filter(None, [body, quiet_note(results)]))
    return BenchResult(
        key="predict",
        title="Prediction from files",
        body=body,
        targets=[
            Target(
                "items/s ginpipe predict / hand-written",
                rate.median,
                THROUGHPUT_LIMIT,
                higher_is_better=True,
            ),
            Target(
                "ginpipe main-process RSS growth, bytes per extra file",
                growth["ginpipe"],
                GROWTH_LIMIT_BYTES,
            ),
        ],
        profile=lambda: profile_top(
            [
                "-m",
                "benchmarks.predict_throughput",
                "--child",
                "--workers",
                "0",
                "--run",
                str(ensure_run(big)),
                "--csv",
                str(big.labels_csv),
                "--out",
                str(WORK / "predict-profile.csv"),
            ],
            threshold=0.02,
        ),
    )


def run(repeats: int) -> BenchResult:
    big = ensure_file_set("digits_png_21k", None)
    small = ensure_file_set("digits_png_2k", SMALL_LIMIT)
    run_dir = ensure_run(big)
    results = interleave(variants(run_dir, big, small), repeats)
    return report(results, big, small, same_predictions(big))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help="one ginpipe predict, JSON out")
    parser.add_argument("--run", type=Path)
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--workers", type=int, default=WORKERS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(ginpipe_child(args.run, args.csv, args.out, args.workers)))
    else:
        print(run(args.repeats).body)
