"""Slow features: log-mel extraction into shards against a hand-written
``multiprocessing.Pool`` + ``np.save`` (``baselines/logmel_pool.py``); adding 1 % files;
a kill at half-way and its resume; an epoch read from the shards against a hand-written
``np.load(mmap_mode="r")`` Dataset (``baselines/mmap_npy_loader.py``); and how extraction
time and memory grow with the number of files.

Data: WAV files from ``scripts/make_audio_dataset.py`` (1 s at 16 kHz), decoded to mono and
cropped/padded to 1 s, log-mel with 40 bands and hop 512 (the settings of
configs/data/audio.gin), 2 worker processes on both sides, shards of 256 items.

The ginpipe side calls the real tasks (load_table -> split_dataset -> extract_features)
in a child: ``python -m benchmarks.feature_extraction --child extract --csv ... --store ...``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
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
    fresh_dir,
    interleave,
    log,
    markdown_table,
    paired_ratios,
    quiet_note,
    run_measured,
    summarize,
)

POOL_BASELINE = BENCH_DIR / "baselines" / "logmel_pool.py"
LOADER_BASELINE = BENCH_DIR / "baselines" / "mmap_npy_loader.py"
SCRIPT = REPO / "scripts" / "make_audio_dataset.py"
FILES = 20_000  # the size
EXTRA = FILES // 100  # "add 1 % files"
SMALL = 2_000  # the epoch's RSS is compared between SMALL and FILES items
# Extraction time and memory against the number of files. The issue asks for 1k -> 100k;
# writing 100k WAV files alone takes longer than this 2-core machine can spare (about
# 70 files/s while shared), so the largest size is the 20k set the other figures use.
SCALE = (1_000, 5_000, FILES)
WORKERS = 2
SHARD_SIZE = 256
BATCH_SIZE = 64
RATE = 16000
THROUGHPUT_LIMIT = 0.95
INCREMENTAL_LIMIT = 0.05
KILL_LIMIT = 1.1
GROWTH_LIMIT_BYTES = 1024
SCALE_LIMIT = 1.5  # per-item time at the largest size / at the middle one


# -- data ------------------------------------------------------------------------------------


def ensure_audio(count: int) -> Path:
    """Write ``count`` WAV files once into ``_work/audio_events`` (reused by later runs)."""
    out = WORK / "audio_events"
    marker = out / "complete.json"
    if not marker.is_file() or json.loads(marker.read_text())["count"] < count:
        log(f"features: writing {count} WAV files into {out}")
        shutil.rmtree(out, ignore_errors=True)
        cmd = [PYTHON, str(SCRIPT), "--out", str(out), "--count", str(count)]
        run_measured(cmd, timeout=3600).check("make_audio_dataset.py")
        marker.write_text(json.dumps({"count": count}))
    return out


def subset(folder: Path, rows: int) -> Path:
    """``labels-<rows>.csv``: the first rows of the table (the same files as the big one)."""
    path = folder / f"labels-{rows}.csv"
    if not path.is_file():
        lines = (folder / "labels.csv").read_text().splitlines(keepends=True)
        if len(lines) - 1 < rows:
            raise ValueError(f"{folder} has {len(lines) - 1} files, {rows} asked")
        path.write_text("".join(lines[: rows + 1]))
    return path


# -- the ginpipe child -----------------------------------------------------------------------


def build_data(labels_csv: Path, store: Path, counts: list[str]) -> dict[str, Any]:
    """``data`` as configs/data/audio.gin builds it, calling the tasks themselves."""
    from loguru import logger

    from ginpipe.core.state import State, TaskView
    from ginpipe.tasks.data.audio_features import LogMel
    from ginpipe.tasks.data.decoders import AudioDecoder
    from ginpipe.tasks.extract import extract_features
    from ginpipe.tasks.load import load_table
    from ginpipe.tasks.split import split_dataset

    logger.remove()
    logger.add(lambda message: counts.append(str(message)), level="INFO")
    state = State()
    decoder = AudioDecoder(sample_rate=RATE, duration=1.0)
    extract = {
        "function": LogMel(sample_rate=RATE, n_fft=512, hop_length=512, n_mels=40),
        "store": str(store),
        "workers": WORKERS,
        "shard_size": SHARD_SIZE,
        "progress": False,
    }
    steps = [
        (load_table, (), {"path": str(labels_csv), "extra_columns": ["group"], "decoder": decoder}),
        (split_dataset, ("dataset",), {"method": "group", "column": "group"}),
        (extract_features, ("dataset", "splits"), extract),
    ]
    for task, reads, params in steps:
        if task is extract_features:
            print(json.dumps({"event": "extract_start", "t": time.time()}), flush=True)
            start = time.perf_counter()
        for key, value in task(TaskView(state, task.__name__, reads), **params).items():
            state.set(key, value)
    state.set("extract_s", time.perf_counter() - start)
    return {"data": state["data"], "extract_s": state["extract_s"]}


def child_extract(labels_csv: Path, store: Path) -> dict[str, Any]:
    counts: list[str] = []
    built = build_data(labels_csv, store, counts)
    summary = next(line for line in counts if "items computed" in line)
    words = summary.split("extract_features: ", 1)[1].split()
    data = built["data"]
    return {
        "items": int(words[0]) + int(words[3]),
        "computed": int(words[0]),
        "reused": int(words[3]),
        "extract_s": built["extract_s"],
        "train_items": len(data["train"]["y"]),
        "normalize": data["normalize"],
        "main_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child_epoch(labels_csv: Path, store: Path) -> dict[str, Any]:
    import torch
    from torch.utils.data import DataLoader

    from ginpipe.tasks.data.datasets import make_dataset

    start = time.perf_counter()
    data = build_data(labels_csv, store, [])["data"]
    metadata_s = time.perf_counter() - start
    loader = DataLoader(
        make_dataset(data, "train"),
        batch_size=BATCH_SIZE,
        shuffle=True,
        num_workers=WORKERS,
        multiprocessing_context="spawn",
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
        "normalize": data["normalize"],
        "main_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# -- variants --------------------------------------------------------------------------------


def ginpipe_cmd(mode: str, labels_csv: Path, store: Path) -> list[str]:
    return [PYTHON, "-m", "benchmarks.feature_extraction", "--child", mode, "--csv",
            str(labels_csv), "--store", str(store)]  # fmt: skip


def run_child(mode: str, labels_csv: Path, store: Path, **kwargs: Any) -> dict[str, Any]:
    measurement = run_measured(ginpipe_cmd(mode, labels_csv, store), timeout=3600, **kwargs)
    if measurement.killed:
        start = [json.loads(line) for line in measurement.stdout.splitlines() if "event" in line]
        return {"wall": measurement.wall, "killed": True, "start": start[0]["t"] if start else 0}
    return {**measurement.check(f"ginpipe {mode}").last_json_line(), "wall": measurement.wall}


def extraction_variants(folder: Path) -> dict[str, Callable[[int], dict[str, Any]]]:
    base, plus = subset(folder, FILES), subset(folder, FILES + EXTRA)

    def hand_written(_: int) -> dict[str, Any]:
        with fresh_dir("pool-") as out:
            cmd = [PYTHON, str(POOL_BASELINE), "--csv", str(base), "--out", str(out / "npy")]
            measurement = run_measured([*cmd, "--workers", str(WORKERS)], timeout=3600)
            return {**measurement.check("hand-written pool").last_json_line(),
                    "wall": measurement.wall}  # fmt: skip

    def full_then_one_percent(_: int) -> dict[str, Any]:
        with fresh_dir("extract-") as root:
            full = run_child("extract", base, root / "features")
            more = run_child("extract", plus, root / "features")
            return {"full": full, "incremental": more}

    def killed_then_resumed(_: int) -> dict[str, Any]:
        with fresh_dir("kill-") as root:
            store = root / "features"
            half = FILES // SHARD_SIZE // 2
            killed_at: list[float] = []

            def half_done() -> bool:
                if len(list(store.glob("*/shard-*.json"))) >= half:
                    killed_at.append(time.time())
                    return True
                return False

            killed = run_child("extract", base, store, kill_when=half_done)
            if not killed.get("killed"):
                raise RuntimeError("the extraction ended before it was half done")
            committed = len(list(store.glob("*/shard-*.json")))
            resumed = run_child("extract", base, store)
            before_kill = killed_at[0] - killed["start"] if killed["start"] else killed["wall"]
            return {
                "killed_wall": killed["wall"],
                "killed_extract_s": before_kill,
                "committed_shards": committed,
                "resumed": resumed,
            }

    return {
        "hand-written pool": hand_written,
        "ginpipe full + 1 %": full_then_one_percent,
        "ginpipe killed + resumed": killed_then_resumed,
    }


def epoch_variants(folder: Path, store: Path, npy: Path) -> dict[str, Callable[[int], Any]]:
    """ginpipe before the baseline: the baseline takes its item count and normalization
    from the ginpipe run just before."""
    latest: dict[int, dict[str, Any]] = {}

    def ginpipe(rows: int) -> Callable[[int], dict[str, Any]]:
        def go(_: int) -> dict[str, Any]:
            latest[rows] = run_child("epoch", subset(folder, rows), store)
            return latest[rows]

        return go

    def baseline(rows: int) -> Callable[[int], dict[str, Any]]:
        def go(_: int) -> dict[str, Any]:
            reference = latest[rows]
            cmd = [PYTHON, str(LOADER_BASELINE), "--dir", str(npy), "--limit",
                   str(reference["items"]), "--mean", str(reference["normalize"]["mean"]),
                   "--std", str(reference["normalize"]["std"])]  # fmt: skip
            measurement = run_measured(cmd)
            return {**measurement.check("hand-written loader").last_json_line(),
                    "wall": measurement.wall}  # fmt: skip

        return go

    return {
        f"ginpipe {FILES}": ginpipe(FILES),
        f"hand-written {FILES}": baseline(FILES),
        f"ginpipe {SMALL}": ginpipe(SMALL),
        f"hand-written {SMALL}": baseline(SMALL),
    }


# -- report ----------------------------------------------------------------------------------


def extraction_report(rounds: dict[str, list[Any]]) -> tuple[str, list[Target]]:
    pool = rounds["hand-written pool"]
    gp = rounds["ginpipe full + 1 %"]
    killed = rounds["ginpipe killed + resumed"]
    full = [r["full"] for r in gp]
    inc = [r["incremental"] for r in gp]
    full_rate = [f["items"] / f["extract_s"] for f in full]
    rate = paired_ratios(full_rate, [p["items_per_s"] for p in pool])
    wall = paired_ratios([p["wall"] for p in pool], [f["wall"] for f in full])
    inc_ratio = paired_ratios([i["extract_s"] for i in inc], [f["extract_s"] for f in full])
    inc_wall = paired_ratios([i["wall"] for i in inc], [f["wall"] for f in full])
    kill_total = paired_ratios(
        [k["killed_extract_s"] + k["resumed"]["extract_s"] for k in killed],
        [f["extract_s"] for f in full],
    )
    kill_wall = paired_ratios(
        [k["killed_wall"] + k["resumed"]["wall"] for k in killed], [f["wall"] for f in full]
    )

    def col(rows: list[dict[str, Any]], key: str, digits: int = 1) -> str:
        return summarize([r[key] for r in rows]).fmt(digits)

    table = markdown_table(
        ["", "hand-written pool", "ginpipe", "ratio"],
        [
            ["items", col(pool, "items", 0), col(full, "items", 0), ""],
            ["extraction s (pool start to last item stored)", col(pool, "seconds"),
             col(full, "extract_s"), ""],
            ["items/s", col(pool, "items_per_s", 0),
             summarize([f["items"] / f["extract_s"] for f in full]).fmt(0),
             f"{rate.fmt(3)} (ginpipe / hand-written)"],
            ["whole process s (imports, table, split included)", col(pool, "wall"),
             col(full, "wall"), f"{wall.fmt(3)} (hand-written / ginpipe)"],
            [f"add {EXTRA} files ({EXTRA / FILES:.0%}), rerun: extraction s", "",
             col(inc, "extract_s", 2), f"{inc_ratio.fmt(3)} of the full extraction"],
            ["  same, whole process s", "", col(inc, "wall"), f"{inc_wall.fmt(3)} of the full"],
            ["  items computed / reused", "",
             f"{summarize([i['computed'] for i in inc]).median:.0f} / "
             f"{summarize([i['reused'] for i in inc]).median:.0f}", ""],
            ["killed at half-way: shards committed before the kill", "",
             summarize([k["committed_shards"] for k in killed]).fmt(0), ""],
            ["  extraction s before the kill + after resume", "",
             summarize([k["killed_extract_s"] + k["resumed"]["extract_s"] for k in killed]).fmt(1),
             f"{kill_total.fmt(3)} of uninterrupted"],
            ["  whole processes s (killed + resumed)", "",
             summarize([k["killed_wall"] + k["resumed"]["wall"] for k in killed]).fmt(1),
             f"{kill_wall.fmt(3)} of uninterrupted"],
            ["  items computed by the resume", "",
             summarize([k["resumed"]["computed"] for k in killed]).fmt(0), ""],
        ],
    )  # fmt: skip
    targets = [
        Target("extraction items/s ginpipe / hand-written pool", rate.median, THROUGHPUT_LIMIT,
               higher_is_better=True),
        Target("add 1 % files: extraction time / full extraction", inc_ratio.median,
               INCREMENTAL_LIMIT),
        Target("killed at ~50 % + resume / uninterrupted, extraction time", kill_total.median,
               KILL_LIMIT),
    ]  # fmt: skip
    return table, targets


def epoch_report(rounds: dict[str, list[Any]]) -> tuple[str, list[Target]]:
    gp, base = rounds[f"ginpipe {FILES}"], rounds[f"hand-written {FILES}"]
    rate = paired_ratios([g["items_per_s"] for g in gp], [b["items_per_s"] for b in base])
    rows, growth = [], {}
    for label in ("hand-written", "ginpipe"):
        small = rounds[f"{label} {SMALL}"]
        big = rounds[f"{label} {FILES}"]
        extra = (
            summarize([b["items"] for b in big]).median
            - summarize([s["items"] for s in small]).median
        )
        per_item = [
            (b["main_rss_mb"] - s["main_rss_mb"]) * 2**20 / extra
            for b, s in zip(big, small, strict=True)
        ]
        growth[label] = summarize(per_item).median
        rows.append([label, summarize([s["main_rss_mb"] for s in small]).fmt(1),
                     summarize([b["main_rss_mb"] for b in big]).fmt(1),
                     summarize(per_item).fmt(0)])  # fmt: skip
    table = markdown_table(
        ["", "hand-written", "ginpipe", "ratio ginpipe / hand-written"],
        [
            ["train items per epoch", summarize([b["items"] for b in base]).fmt(0),
             summarize([g["items"] for g in gp]).fmt(0), ""],
            ["items/s, whole epoch", summarize([b["items_per_s"] for b in base]).fmt(0),
             summarize([g["items_per_s"] for g in gp]).fmt(0), rate.fmt(3)],
            ["first batch s", summarize([b["first_batch_s"] for b in base]).fmt(2),
             summarize([g["first_batch_s"] for g in gp]).fmt(2), ""],
            ["metadata steps s (load, split, extraction all reused)", "",
             summarize([g["metadata_s"] for g in gp]).fmt(2), ""],
        ],
    )  # fmt: skip
    memory = markdown_table(
        ["main process peak RSS MiB", f"{SMALL} files", f"{FILES} files", "bytes per extra item"],
        rows,
    )
    targets = [
        Target("shard epoch items/s ginpipe / hand-written np.load(mmap)", rate.median,
               THROUGHPUT_LIMIT, higher_is_better=True),
        Target("shard epoch: main-process RSS growth, bytes per extra item", growth["ginpipe"],
               GROWTH_LIMIT_BYTES),
    ]  # fmt: skip
    return f"{table}\n\n{memory}", targets


def scale_report(results: dict[int, list[dict[str, Any]]]) -> tuple[str, list[Target]]:
    rows = []
    per_item: dict[int, float] = {}
    for size, runs in results.items():
        seconds = summarize([r["extract_s"] for r in runs])
        per_item[size] = seconds.median / size * 1e6
        rows.append([f"{size:,}", seconds.fmt(1), f"{per_item[size]:.0f}",
                     summarize([r["main_rss_mb"] for r in runs]).fmt(0)])  # fmt: skip
    sizes = sorted(results)
    ratio = per_item[sizes[-1]] / per_item[sizes[1] if len(sizes) > 2 else sizes[0]]
    table = markdown_table(
        ["files", "extraction s", "µs per item", "main process peak RSS MiB"], rows
    )
    target = Target(
        f"extraction µs per item at {sizes[-1]:,} / at {sizes[1]:,} files", ratio, SCALE_LIMIT
    )
    return table, [target]


def run(repeats: int, scale: tuple[int, ...] = SCALE) -> BenchResult:
    folder = ensure_audio(max(FILES + EXTRA, *scale))
    log("features: extraction, 1 % more, kill + resume")
    # A shared machine disturbs most rounds: rerun at most one, or this takes an hour.
    extraction = interleave(extraction_variants(folder), repeats, max_redos=1)
    extraction_table, targets = extraction_report(extraction)

    log("features: epochs from the shards")
    epoch_root = WORK / "tmp" / "epoch-store"
    shutil.rmtree(epoch_root, ignore_errors=True)
    npy = epoch_root / "npy"
    run_child("extract", subset(folder, FILES), epoch_root / "features")
    run_measured([PYTHON, str(POOL_BASELINE), "--csv", str(subset(folder, FILES)), "--out",
                  str(npy)], timeout=3600).check("hand-written pool")  # fmt: skip
    epochs = interleave(epoch_variants(folder, epoch_root / "features", npy), repeats, max_redos=1)
    shutil.rmtree(epoch_root, ignore_errors=True)
    epoch_table, epoch_targets = epoch_report(epochs)

    log("features: scaling")
    scaled: dict[int, list[dict[str, Any]]] = {size: [] for size in scale}
    for _ in range(max(1, repeats // 3)):
        for size in scale:
            with fresh_dir("scale-") as root:
                scaled[size].append(run_child("extract", subset(folder, size), root / "f"))
    scale_table, scale_targets = scale_report(scaled)

    body = "\n\n".join(
        filter(
            None,
            [
                f"WAV files of synthetic events (`scripts/make_audio_dataset.py`, 1 s at 16 kHz), "
                f"log-mel (40 bands, hop 512) of every item, {WORKERS} worker processes on both "
                f"sides; ginpipe writes shards of {SHARD_SIZE} items, the hand-written pool one "
                f"`.npy` per item. {FILES:,} files; the incremental run adds {EXTRA} more; the "
                "kill is a SIGKILL of the process group once half of the shards are committed. "
                "Extraction seconds are measured inside each process (the task call, or the "
                "pool's start to its end); whole-process figures add the interpreter, imports, "
                "table and split.",
                extraction_table,
                quiet_note(extraction),
                f"One epoch of the train split read back, batch {BATCH_SIZE}, {WORKERS} spawned "
                "workers, shuffled, no model: ginpipe's shard dataset (memory-mapped shards) "
                "against the hand-written Dataset over the per-item `.npy` files of the pool "
                f"baseline. Peak RSS of the main process at {SMALL:,} and {FILES:,} items "
                "(metadata steps, extraction fully reused, one epoch).",
                epoch_table,
                quiet_note(epochs),
                "Extraction from scratch (fresh store) at growing sizes, one process each.",
                scale_table,
            ],
        )
    )
    return BenchResult(
        key="features",
        title="Slow features: extraction, increments, kill, epochs",
        body=body,
        targets=targets + epoch_targets + scale_targets,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=("extract", "epoch"), help="one ginpipe child")
    parser.add_argument("--csv", type=Path, help="labels.csv for --child")
    parser.add_argument("--store", type=Path, help="feature store for --child")
    parser.add_argument("--scale", default=",".join(map(str, SCALE)), help="sizes to scale over")
    args = parser.parse_args()
    if args.child == "extract":
        print(json.dumps(child_extract(args.csv, args.store)))
    elif args.child == "epoch":
        print(json.dumps(child_epoch(args.csv, args.store)))
    else:
        sizes = tuple(int(size) for size in args.scale.split(","))
        print(run(args.repeats, sizes).body)
        sys.exit(0)
