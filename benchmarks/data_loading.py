"""Data loading: one epoch over PNG files through ginpipe's file dataset against a
hand-written PIL Dataset (``baselines/image_folder_loader.py``), and the main process's
peak RSS as the number of files grows tenfold.

Both use a DataLoader with batch size 64, 2 workers started with "spawn", shuffling, and
the same decode (grayscale, resize, /255, normalize with the mean and std ginpipe
estimated). The ginpipe side builds ``data`` with the real task functions (load_table ->
split_dataset -> make_features, the metadata path: nothing is decoded up front) and
iterates ``make_dataset(data, "train")``; the baseline iterates the same number of rows.

The ginpipe side runs as ``python -m benchmarks.data_loading --child ginpipe --csv ...``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BENCH_DIR,
    PYTHON,
    REPO,
    WORK,
    BenchResult,
    Target,
    interleave,
    log,
    markdown_table,
    paired_ratios,
    profile_top,
    quiet_note,
    run_measured,
    summarize,
)

BASELINE = BENCH_DIR / "baselines" / "image_folder_loader.py"
SCRIPT = REPO / "scripts" / "make_file_dataset.py"
IMAGE_SIZE = 32  # px; a decoded image is 32 * 32 * 4 B = 4 KiB as float32
REPEAT = 12  # copies of the 1797 digits: 21,564 files
SMALL_LIMIT = 180  # digits kept for the small set: 12 * 180 = 2,160 files (10x fewer)
BATCH_SIZE = 64
WORKERS = 2
MIN_REPEATS = 5  # cheap, and 2 workers on 2 cores make single epochs noisy
THROUGHPUT_LIMIT = 0.95
GROWTH_LIMIT_BYTES = 2048  # per extra file: a few copies of its path, not its pixels


@dataclass(frozen=True)
class FileSet:
    name: str
    labels_csv: Path
    files: int


def ensure_file_set(name: str, limit: int | None) -> FileSet:
    """Write the PNGs once into ``_work`` (reused by later runs); a marker file says done."""
    out = WORK / name
    marker = out / "complete.json"
    settings = {"repeat": REPEAT, "size": IMAGE_SIZE, "limit": limit}
    if not marker.is_file() or json.loads(marker.read_text()).get("settings") != settings:
        log(f"loading: writing PNG files into {out}")
        shutil.rmtree(out, ignore_errors=True)
        cmd = [PYTHON, str(SCRIPT), "--out", str(out), "--repeat", str(REPEAT)]
        cmd += ["--size", str(IMAGE_SIZE), *(["--limit", str(limit)] if limit else [])]
        run_measured(cmd).check("make_file_dataset.py")  # a child: this process stays small
        files = sum(1 for _ in (out / "labels.csv").open()) - 1
        marker.write_text(json.dumps({"settings": settings, "files": files}))
    files = json.loads(marker.read_text())["files"]
    return FileSet(name, out / "labels.csv", files)


# -- the ginpipe child -----------------------------------------------------------------------


def build_data(labels_csv: Path) -> dict[str, Any]:
    """``data`` as the pipeline builds it for configs/data/files.gin, calling the tasks."""
    from ginpipe.core.state import State, TaskView
    from ginpipe.tasks.features import make_features
    from ginpipe.tasks.load import load_table
    from ginpipe.tasks.split import split_dataset

    state = State()
    steps = [
        (load_table, (), {"path": str(labels_csv), "extra_columns": ["group"]}),
        (split_dataset, ("dataset",), {"method": "group", "column": "group"}),
        (make_features, ("dataset", "splits"), {"stats_sample": 256}),
    ]
    for task, reads, params in steps:
        for key, value in task(TaskView(state, task.__name__, reads), **params).items():
            state.set(key, value)
    return state["data"]


def ginpipe_epoch(labels_csv: Path, workers: int = WORKERS) -> dict[str, Any]:
    import torch
    from torch.utils.data import DataLoader

    from ginpipe.tasks.data.datasets import make_dataset

    start = time.perf_counter()
    data = build_data(labels_csv)
    metadata_s = time.perf_counter() - start
    dataset = make_dataset(data, "train")
    loader = DataLoader(
        dataset,
        batch_size=BATCH_SIZE,
        shuffle=True,
        num_workers=workers,
        multiprocessing_context="spawn" if workers else None,
        generator=torch.Generator().manual_seed(0),
    )
    start = time.perf_counter()
    items, first = 0, None
    for _, y in loader:
        if first is None:
            first = time.perf_counter() - start
        items += len(y)
    seconds = time.perf_counter() - start
    return {
        "items": items,
        "seconds": seconds,
        "first_batch_s": first or 0.0,
        "items_per_s": items / seconds,
        "metadata_s": metadata_s,
        "transform": data["transform"],
        "main_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# -- the benchmark ---------------------------------------------------------------------------


def run_ginpipe(file_set: FileSet) -> dict[str, Any]:
    cmd = [PYTHON, "-m", "benchmarks.data_loading", "--child", "--csv", str(file_set.labels_csv)]
    measurement = run_measured(cmd).check("ginpipe loader")
    return {**measurement.last_json_line(), "wall": measurement.wall}


def baseline_cmd(file_set: FileSet, reference: dict[str, Any], workers: int) -> list[str]:
    spec = reference["transform"]
    return [
        PYTHON,
        str(BASELINE),
        "--csv",
        str(file_set.labels_csv),
        "--limit",
        str(reference["items"]),
        "--size",
        *map(str, spec["size"]),
        "--mean",
        str(spec["mean"][0]),
        "--std",
        str(spec["std"][0]),
        "--workers",
        str(workers),
    ]


def run_baseline(file_set: FileSet, reference: dict[str, Any]) -> dict[str, Any]:
    cmd = baseline_cmd(file_set, reference, WORKERS)
    measurement = run_measured(cmd).check("hand-written loader")
    return {**measurement.last_json_line(), "wall": measurement.wall}


def variants(big: FileSet, small: FileSet) -> dict[str, Callable[[int], dict[str, Any]]]:
    """ginpipe before the baseline in each round: the baseline takes its row count and
    normalization from the ginpipe run just before."""
    latest: dict[str, dict[str, Any]] = {}

    def ginpipe(file_set: FileSet) -> Callable[[int], dict[str, Any]]:
        def go(_: int) -> dict[str, Any]:
            latest[file_set.name] = run_ginpipe(file_set)
            return latest[file_set.name]

        return go

    def baseline(file_set: FileSet) -> Callable[[int], dict[str, Any]]:
        return lambda _: run_baseline(file_set, latest[file_set.name])

    return {
        f"ginpipe {big.files}": ginpipe(big),
        f"hand-written {big.files}": baseline(big),
        f"ginpipe {small.files}": ginpipe(small),
        f"hand-written {small.files}": baseline(small),
    }


def steady_rate(result: dict[str, Any]) -> float:
    """Items per second after the first batch arrived (worker start-up excluded)."""
    return (result["items"] - BATCH_SIZE) / (result["seconds"] - result["first_batch_s"])


def report(results: dict[str, list[dict[str, Any]]], big: FileSet, small: FileSet) -> BenchResult:
    gp, base = results[f"ginpipe {big.files}"], results[f"hand-written {big.files}"]
    rate = paired_ratios([g["items_per_s"] for g in gp], [b["items_per_s"] for b in base])
    steady = paired_ratios([steady_rate(g) for g in gp], [steady_rate(b) for b in base])

    def col(rows: list[dict[str, Any]], key: str, digits: int = 0) -> str:
        return summarize([r[key] for r in rows]).fmt(digits)

    throughput = markdown_table(
        ["", "hand-written", "ginpipe", "ratio ginpipe / hand-written"],
        [
            ["items per epoch", col(base, "items"), col(gp, "items"), ""],
            ["items/s, whole epoch", col(base, "items_per_s"), col(gp, "items_per_s"), rate.fmt(3)],
            [
                "items/s after the first batch",
                summarize([steady_rate(b) for b in base]).fmt(0),
                summarize([steady_rate(g) for g in gp]).fmt(0),
                steady.fmt(3),
            ],
            ["first batch s", col(base, "first_batch_s", 2), col(gp, "first_batch_s", 2), ""],
            ["metadata steps s (load, split, features)", "", col(gp, "metadata_s", 2), ""],
        ],
    )

    rows = []
    growth: dict[str, float] = {}
    extra_files = big.files - small.files
    for label in ("hand-written", "ginpipe"):
        small_rss = [r["main_rss_mb"] for r in results[f"{label} {small.files}"]]
        big_rss = [r["main_rss_mb"] for r in results[f"{label} {big.files}"]]
        per_file = [(b - s) * 2**20 / extra_files for b, s in zip(big_rss, small_rss, strict=True)]
        growth[label] = summarize(per_file).median
        rows.append(
            [
                label,
                summarize(small_rss).fmt(1),
                summarize(big_rss).fmt(1),
                paired_ratios(big_rss, small_rss).fmt(3),
                summarize(per_file).fmt(0),
            ]
        )
    memory = markdown_table(
        [
            "main process peak RSS MiB",
            f"{small.files} files",
            f"{big.files} files",
            "ratio",
            "bytes per extra file",
        ],
        rows,
    )
    body = "\n\n".join(
        [
            f"PNG digits, {IMAGE_SIZE}x{IMAGE_SIZE} grayscale, from "
            f"`scripts/make_file_dataset.py` (repeat {REPEAT}); one epoch of the train split "
            f"(group split), batch {BATCH_SIZE}, {WORKERS} spawned workers, shuffled; "
            f"{len(gp)} rounds interleaved, each run a fresh process. Whole-epoch figures "
            "include starting the workers.",
            throughput,
            "Peak RSS of the main process (workers excluded; `ru_maxrss` measured in the "
            f"child) for {small.files} and {big.files} files: metadata steps plus one epoch. "
            f"A decoded image is {IMAGE_SIZE * IMAGE_SIZE * 4} B as float32, so holding "
            "pixels in the main process would show as several KiB per extra file.",
            memory,
        ]
    )
    body = "\n\n".join(filter(None, [body, quiet_note(results)]))
    return BenchResult(
        key="loading",
        title="Data loading from files",
        body=body,
        targets=[
            Target(
                "items/s ginpipe / hand-written (whole epoch)",
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
        profile=lambda: profile_items(big, gp[-1]),
    )


def profile_items(file_set: FileSet, reference: dict[str, Any]) -> str:
    """Both loaders with no workers, so the per-item decode shows up in the profile."""
    child = ["-m", "benchmarks.data_loading", "--child", "--workers", "0"]
    ginpipe = profile_top([*child, "--csv", str(file_set.labels_csv)], threshold=0.02)
    baseline = profile_top(baseline_cmd(file_set, reference, 0)[1:], threshold=0.02)
    return f"ginpipe, no workers:\n{ginpipe}\n\nhand-written, no workers:\n{baseline}"


def run(repeats: int) -> BenchResult:
    big = ensure_file_set("digits_png_21k", None)
    small = ensure_file_set("digits_png_2k", SMALL_LIMIT)
    return report(interleave(variants(big, small), max(repeats, MIN_REPEATS)), big, small)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help="one ginpipe epoch, JSON out")
    parser.add_argument("--csv", type=Path, help="labels.csv for --child")
    parser.add_argument("--workers", type=int, default=WORKERS, help="workers for --child")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(ginpipe_epoch(args.csv, args.workers)))
    else:
        print(run(args.repeats).body)
