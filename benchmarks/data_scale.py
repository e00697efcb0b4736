"""Scale of the data steps: a data-only pipeline (seed -> load_csv_features -> split ->
StandardScaler features) through the real CLI on numeric CSV tables of 1k, 10k and 100k
rows, each in a fresh root.

The whole process is dominated by its fixed start-up at 1k rows, so the fair per-row
figure is the time of the data tasks themselves, as ``run.json`` records them (their
seconds include storing their outputs in the cache).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    CONFIGS,
    PYTHON,
    WORK,
    BenchResult,
    Measurement,
    Target,
    find_run_dir,
    fresh_dir,
    ginpipe_cmd,
    interleave,
    log,
    markdown_table,
    profile_top,
    quiet_note,
    read_run_json,
    run_measured,
    summarize,
    task_seconds,
)

CONFIG = CONFIGS / "data_scale.gin"
SIZES = (1_000, 10_000, 100_000)
FEATURES = 64
CLASSES = 10
DATA_TASKS = ("load_csv_features", "split_dataset", "make_features")
PER_ROW_RATIO_LIMIT = 1.5


@dataclass
class ScaleRun:
    rows: int
    measurement: Measurement
    tasks: dict[str, float]

    @property
    def data_seconds(self) -> float:
        return sum(self.tasks.get(name, 0.0) for name in DATA_TASKS)


def ensure_table(rows: int) -> Path:
    """A CSV of ``FEATURES`` float columns and an integer label, written once into _work
    (by a child process, so this one does not grow by the table's size)."""
    path = WORK / "tables" / f"rows_{rows}.csv"
    if not path.is_file():
        log(f"scale: writing {path}")
        cmd = [PYTHON, "-m", "benchmarks.data_scale", "--write-table", str(rows), str(path)]
        run_measured(cmd).check("writing a table")
    return path


def write_table(rows: int, path: Path) -> None:
    """Gaussian clusters around one center per class, so the label is learnable."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(rows)
    labels = rng.integers(0, CLASSES, size=rows)
    centers = rng.normal(size=(CLASSES, FEATURES))
    features = centers[labels] + rng.normal(size=(rows, FEATURES))
    table = pd.DataFrame(features, columns=[f"f{i}" for i in range(FEATURES)])
    table["label"] = labels
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    table.to_csv(tmp, index=False, float_format="%.6g")
    tmp.rename(path)


def cli_args(table: Path, root: Path) -> list[str]:
    mod = f"load_csv_features.path='{table}'"
    return ["run", str(CONFIG), "--root", str(root), "--name", "scale", "--mod", mod]


def scale_run(rows: int, table: Path) -> ScaleRun:
    with fresh_dir("scale-") as root:
        measurement = run_measured(ginpipe_cmd(*cli_args(table, root))).check(f"{rows} rows")
        record = read_run_json(find_run_dir(root, "scale"))
        return ScaleRun(rows, measurement, task_seconds(record))


def variants(tables: dict[int, Path]) -> dict[str, Callable[[int], ScaleRun]]:
    def make(rows: int) -> Callable[[int], ScaleRun]:
        return lambda _: scale_run(rows, tables[rows])

    return {f"{rows} rows": make(rows) for rows in tables}


def report(results: dict[str, list[ScaleRun]]) -> BenchResult:
    by_size = {runs[0].rows: runs for runs in results.values()}
    smallest, largest = min(by_size), max(by_size)
    base_rss = summarize([r.measurement.max_rss_mb for r in by_size[smallest]]).median

    def per_row(runs: list[ScaleRun], value: Callable[[ScaleRun], float]) -> list[float]:
        return [value(r) / r.rows for r in runs]

    rows = []
    for size, runs in sorted(by_size.items()):
        rss = [r.measurement.max_rss_mb for r in runs]
        marginal = (
            f"{(summarize(rss).median - base_rss) * 2**20 / (size - smallest):.0f}"
            if size != smallest
            else ""
        )
        rows.append(
            [
                f"{size:,}",
                summarize([r.measurement.wall for r in runs]).fmt(2),
                summarize(per_row(runs, lambda r: r.measurement.wall * 1e6)).fmt(1),
                summarize([r.data_seconds for r in runs]).fmt(3),
                summarize(per_row(runs, lambda r: r.data_seconds * 1e6)).fmt(2),
                summarize(rss).fmt(0),
                summarize(per_row(runs, lambda r: r.measurement.max_rss_mb * 2**20)).fmt(0),
                marginal,
            ]
        )
    table = markdown_table(
        [
            "rows",
            "wall s",
            "wall µs/row",
            "data tasks s",
            "data tasks µs/row",
            "peak RSS MiB",
            "peak RSS B/row",
            f"RSS B per row beyond {smallest:,}",
        ],
        rows,
    )
    sizes = sorted(by_size)
    per_task = markdown_table(
        ["task", *(f"{size:,} rows, s" for size in sizes)],
        [
            [f"`{name}`", *(summarize([r.tasks[name] for r in by_size[s]]).fmt(3) for s in sizes)]
            for name in ("seed_everything", *DATA_TASKS)
        ],
    )

    def median_per_row(size: int) -> float:
        return summarize(per_row(by_size[size], lambda r: r.data_seconds)).median

    ratio = median_per_row(largest) / median_per_row(smallest)
    middle = sorted(by_size)[-2]
    upper_ratio = median_per_row(largest) / median_per_row(middle)
    wall_ratio = (
        summarize(per_row(by_size[largest], lambda r: r.measurement.wall)).median
        / summarize(per_row(by_size[smallest], lambda r: r.measurement.wall)).median
    )
    body = "\n\n".join(
        [
            f'`ginpipe run benchmarks/configs/data_scale.gin --mod "load_csv_features.path=..."` '
            f"on CSV tables of {FEATURES} float columns + label, fresh root each run, "
            f"{len(next(iter(results.values())))} rounds interleaved over the sizes.",
            table,
            per_task,
            f"Per-row cost ratio {largest:,} / {smallest:,} rows: data tasks {ratio:.2f}, "
            f"whole process {wall_ratio:.3f} (start-up dominates small tables); data tasks "
            f"{largest:,} / {middle:,} rows: {upper_ratio:.2f}. The marginal peak RSS per row "
            f"compares with {FEATURES * 4} B of float32 features per row.",
        ]
    )
    body = "\n\n".join(filter(None, [body, quiet_note(results)]))
    return BenchResult(
        key="scale",
        title="Scale of the data steps",
        body=body,
        targets=[
            Target(
                f"data-task time per row, {largest:,} / {smallest:,} rows",
                ratio,
                PER_ROW_RATIO_LIMIT,
            )
        ],
        profile=lambda: profile_largest(largest),
    )


def profile_largest(rows: int) -> str:
    with fresh_dir("profile-") as root:
        return profile_top(["-m", "ginpipe.cli", *cli_args(ensure_table(rows), root)])


def run(repeats: int) -> BenchResult:
    tables = {rows: ensure_table(rows) for rows in SIZES}
    return report(interleave(variants(tables), repeats))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write-table", nargs=2, metavar=("ROWS", "PATH"), help="only write")
    args = parser.parse_args()
    if args.write_table:
        write_table(int(args.write_table[0]), Path(args.write_table[1]))
    else:
        print(run(args.repeats).body)
