"""Cache: time from process start to the first training step, cold (fresh root, every step
computed) against warm (same root, only the model changed, so load, split and the expensive
feature step come from the cache).

The config ``benchmarks/configs/cache_heavy.gin`` puts a kernel-PCA denoising step over
jittered digits in front of fit; ``FirstStepClock`` (``benchmarks/clock.py``) writes
the time of the first training batch and stops training.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BASE_CONFIGS,
    CONFIGS,
    PYTHON,
    WORK,
    BenchResult,
    Measurement,
    Target,
    child_env,
    find_run_dir,
    fresh_dir,
    ginpipe_cmd,
    interleave,
    markdown_table,
    paired_ratios,
    profile_top,
    quiet_note,
    read_run_json,
    run_measured,
    summarize,
    task_seconds,
)

CONFIG = CONFIGS / "cache_heavy.gin"
CLOCK_MOD = "fit.callbacks=[@benchmarks.clock.FirstStepClock()]"
WARM_MOD = "ResNet.width=24"  # any model change: fit reruns, the data steps do not
RATIO_LIMIT = 0.2
DATA_TASKS = ("load_digits_jittered", "split_dataset", "make_features")


@dataclass
class StartRun:
    measurement: Measurement
    to_first_step: float  # seconds from process start to the first training batch
    record: dict[str, Any]

    @property
    def statuses(self) -> dict[str, str]:
        return {t["name"]: t["status"] for t in self.record.get("tasks", [])}


def args_for(root: Path, name: str, *mods: str) -> list[str]:
    mod_args = [arg for mod in (CLOCK_MOD, *mods) for arg in ("--mod", mod)]
    return ["run", *BASE_CONFIGS, str(CONFIG), "--root", str(root), "--name", name, *mod_args]


def start_run(root: Path, name: str, *mods: str) -> StartRun:
    clock = root / f"clock-{name}"
    env = child_env(GINPIPE_BENCH_CLOCK=str(clock))
    measurement = run_measured(ginpipe_cmd(*args_for(root, name, *mods)), env=env)
    measurement.check(f"ginpipe run ({name})")
    first_step = float(clock.read_text()) - measurement.started
    return StartRun(measurement, first_step, read_run_json(find_run_dir(root, name)))


def variants() -> tuple[dict[str, Callable[[int], Any]], Callable[[], None]]:
    """Cold in a fresh root, then warm in that same root, then the floor of any Lightning
    program (importing it); and a clean-up function."""
    roots: list[Path] = []

    def cold(round_index: int) -> StartRun:
        (WORK / "tmp").mkdir(parents=True, exist_ok=True)
        roots.append(Path(tempfile.mkdtemp(prefix="cache-", dir=WORK / "tmp")))
        return start_run(roots[-1], "cold")

    def warm(round_index: int) -> StartRun:
        try:
            return start_run(roots[-1], "warm", WARM_MOD)
        finally:
            shutil.rmtree(roots[-1], ignore_errors=True)

    def clean_up() -> None:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)

    def floor(round_index: int) -> Measurement:
        return run_measured([PYTHON, "-c", "import pytorch_lightning"]).check("import")

    return {"cold": cold, "warm": warm, "floor": floor}, clean_up


def report(results: dict[str, list[Any]]) -> BenchResult:
    cold: list[StartRun] = results["cold"]
    warm: list[StartRun] = results["warm"]
    floor: list[Measurement] = results["floor"]
    ratio = paired_ratios([w.to_first_step for w in warm], [c.to_first_step for c in cold])
    features = [task_seconds(c.record).get("make_features", 0.0) for c in cold]
    table = markdown_table(
        ["", "cold (fresh root)", "warm (model changed)", "ratio warm / cold"],
        [
            [
                "process start -> first training step, s",
                summarize([c.to_first_step for c in cold]).fmt(2),
                summarize([w.to_first_step for w in warm]).fmt(2),
                ratio.fmt(3),
            ],
            [
                "whole process, s",
                summarize([c.measurement.wall for c in cold]).fmt(2),
                summarize([w.measurement.wall for w in warm]).fmt(2),
                paired_ratios(
                    [w.measurement.wall for w in warm], [c.measurement.wall for c in cold]
                ).fmt(3),
            ],
            [
                'same, divided by `python -c "import pytorch_lightning"` of the round',
                paired_ratios([c.to_first_step for c in cold], [f.wall for f in floor]).fmt(2),
                paired_ratios([w.to_first_step for w in warm], [f.wall for f in floor]).fmt(2),
                "",
            ],
            [
                "peak RSS MiB",
                summarize([c.measurement.max_rss_mb for c in cold]).fmt(0),
                summarize([w.measurement.max_rss_mb for w in warm]).fmt(0),
                "",
            ],
        ],
    )
    statuses = warm[0].statuses
    body = "\n\n".join(
        [
            "`ginpipe run configs/base.gin configs/models/resnet.gin "
            f"benchmarks/configs/cache_heavy.gin --mod '{CLOCK_MOD}'`: cold in a fresh root, "
            f"then warm in the same root with `--mod {WARM_MOD}` and another `--name` "
            f"({len(cold)} rounds).",
            table,
            f"The cached feature step (`make_features`, kernel PCA) took "
            f"{summarize(features).fmt(1, ' s')} in the cold runs. Task status in the warm "
            "run: " + ", ".join(f"{name}: {status}" for name, status in statuses.items()) + ".",
        ]
    )
    notes = [
        f"Warm run did not reuse `{name}` (status {statuses.get(name)!r})."
        for name in DATA_TASKS
        if statuses.get(name) != "cached"
    ]
    body = "\n\n".join(filter(None, [body, quiet_note(results)]))
    return BenchResult(
        key="cache",
        title="Cache: cold vs warm start",
        body=body,
        targets=[Target("warm / cold time to first training step", ratio.median, RATIO_LIMIT)],
        notes=notes,
        profile=profile_warm,
    )


def profile_warm() -> str:
    """A cold run (not profiled) to fill the cache, then the warm run under the profiler."""
    with fresh_dir("profile-") as root:
        start_run(root, "cold")
        env = child_env(GINPIPE_BENCH_CLOCK=str(root / "clock-profile"))
        return profile_top(["-m", "ginpipe.cli", *args_for(root, "warm", WARM_MOD)], env=env)


def run(repeats: int) -> BenchResult:
    variant_fns, clean_up = variants()
    try:
        return report(interleave(variant_fns, repeats))
    finally:
        clean_up()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    print(run(parser.parse_args().repeats).body)
