"""Resume: the default pipeline killed with SIGKILL about half-way through, then continued
with ``ginpipe resume RUN_DIR``, against an uninterrupted run of the same round.

The kill comes at half the wall time of the uninterrupted run measured just before, with no
warning (no signal handler, no on-exception checkpoint): the resumed run starts from the
last end-of-epoch ``last.ckpt`` and reuses the cached data steps. The price of the
interruption is a second process start plus the part of an epoch that was lost.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BASE_CONFIGS,
    PYTHON,
    BenchResult,
    Measurement,
    Target,
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
from benchmarks.overhead import RUN_NAME, PipelineRun, baseline_settings, default_pipeline_run

MAX_EPOCHS = int(baseline_settings()["Trainer.max_epochs"])  # checked against the configs
HALF_EPOCHS = MAX_EPOCHS // 2
TOTAL_RATIO_LIMIT = 1.15


@dataclass
class ResumedRun:
    killed: Measurement
    resumed: Measurement
    record: dict[str, Any]  # run.json after the resume
    epochs_before_kill: int  # complete epochs in last.ckpt when the process died

    @property
    def total(self) -> float:
        return self.killed.wall + self.resumed.wall

    @property
    def accuracy(self) -> float:
        return float(self.record["metrics"]["accuracy"])


def epochs_in_checkpoint(path: Path) -> int:
    """Epochs whose training ``last.ckpt`` holds (0 if the run died before the first one).

    The loop's ``processed`` count, the epoch a resume starts from: an end-of-epoch
    checkpoint is saved before Lightning counts its epoch as ``completed``, so that count
    is one behind. Read in a child process: importing torch here would raise the peak RSS
    this process hands down to every later child it starts.
    """
    if not path.is_file():
        return 0
    code = (
        "import sys, torch; c = torch.load(sys.argv[1], map_location='cpu', weights_only=True); "
        "print(c['loops']['fit_loop']['epoch_progress']['current']['processed'])"
    )
    reading = run_measured([PYTHON, "-c", code, str(path)]).check("reading last.ckpt")
    return int(reading.stdout.strip().splitlines()[-1])


class MidEpochKill:
    """The kill condition: half-way through the epoch after ``epochs`` complete ones.

    Watches ``logs/metrics.csv``, which Lightning rewrites whenever it logs; a row with
    ``train_loss`` marks the end of an epoch (its checkpoint is already saved then). The
    kill comes half an epoch (as long as the last one took) after epoch ``epochs`` ended,
    so the resumed run loses about half an epoch of work, as after a random crash.
    """

    def __init__(self, root: Path, name: str, epochs: int, pattern: str | None = None) -> None:
        self.pattern = pattern or f"*/{name}/logs/metrics.csv"  # ROOT/PROJECT/NAME/...
        self.root = root
        self.metrics: Path | None = None
        self.epochs = epochs
        self.seen: dict[int, float] = {}  # complete epochs -> when first seen
        self.mtime = 0

    def complete_epochs(self, metrics: Path) -> int:
        try:
            with metrics.open(newline="") as file:
                rows = list(csv.DictReader(file))
        except OSError:
            return 0
        return len({row["epoch"] for row in rows if row.get("train_loss")})

    def __call__(self) -> bool:
        now = time.monotonic()
        if self.metrics is None:
            self.metrics = next(self.root.glob(self.pattern), None)
            if self.metrics is None:
                return False
        try:
            mtime = self.metrics.stat().st_mtime_ns
        except OSError:
            return False
        if mtime != self.mtime:
            self.mtime = mtime
            self.seen.setdefault(self.complete_epochs(self.metrics), now)
        end, before = self.seen.get(self.epochs), self.seen.get(self.epochs - 1)
        if end is None or before is None:
            return False
        return now >= end + (end - before) / 2


def start_and_kill(root: Path) -> tuple[Measurement, Path]:
    """The default pipeline in ``root``, SIGKILLed in the middle of the epoch after half."""
    cmd = ginpipe_cmd("run", *BASE_CONFIGS, "--root", str(root), "--name", RUN_NAME)
    killed = run_measured(cmd, kill_when=MidEpochKill(root, RUN_NAME, HALF_EPOCHS))
    if not killed.killed:
        raise RuntimeError(f"the run ended (exit {killed.returncode}) before it was killed")
    return killed, find_run_dir(root, RUN_NAME)


def killed_and_resumed() -> ResumedRun:
    with fresh_dir("resume-") as root:
        killed, run_dir = start_and_kill(root)
        epochs = epochs_in_checkpoint(run_dir / "checkpoints" / "last.ckpt")
        resumed = run_measured(ginpipe_cmd("resume", str(run_dir))).check("ginpipe resume")
        return ResumedRun(killed, resumed, read_run_json(run_dir), epochs)


def variants() -> dict[str, Callable[[int], Any]]:
    return {"ginpipe": default_pipeline_run, "killed + resumed": lambda _: killed_and_resumed()}


def report(results: Mapping[str, list[Any]]) -> BenchResult:
    plain: list[PipelineRun] = results["ginpipe"]
    resumed: list[ResumedRun] = results["killed + resumed"]
    plain_walls = [p.measurement.wall for p in plain]
    ratio = paired_ratios([r.total for r in resumed], plain_walls)
    same = sum(r.accuracy == p.accuracy for r, p in zip(resumed, plain, strict=True))
    table = markdown_table(
        ["", "seconds / value (median, range)"],
        [
            ["uninterrupted run, wall s", summarize(plain_walls).fmt(1)],
            ["run until SIGKILL, wall s", summarize([r.killed.wall for r in resumed]).fmt(1)],
            ["`ginpipe resume`, wall s", summarize([r.resumed.wall for r in resumed]).fmt(1)],
            [
                "of which outside tasks (start-up, imports, config), s",
                summarize(
                    [r.resumed.wall - sum(task_seconds(r.record).values()) for r in resumed]
                ).fmt(1),
            ],
            [
                "of which `fit` (from last.ckpt to the end), s",
                summarize([task_seconds(r.record).get("fit", 0.0) for r in resumed]).fmt(1),
            ],
            ["killed + resume, wall s", summarize([r.total for r in resumed]).fmt(1)],
            ["**ratio (killed + resume) / uninterrupted**", ratio.fmt(3)],
            [
                f"epochs in last.ckpt at the kill (of {MAX_EPOCHS})",
                summarize([r.epochs_before_kill for r in resumed]).fmt(0),
            ],
            ["test accuracy, uninterrupted", summarize([p.accuracy for p in plain]).fmt(4)],
            ["test accuracy, resumed", summarize([r.accuracy for r in resumed]).fmt(4)],
            ["rounds with identical accuracy", f"{same} of {len(resumed)}"],
        ],
    )
    tasks = resumed[0].record.get("tasks", [])
    reused = ", ".join(f"{t['name']}: {t['status']}" for t in tasks)
    body = "\n\n".join(
        [
            f"SIGKILL half-way through epoch {HALF_EPOCHS + 1} of {MAX_EPOCHS} (half an epoch "
            f"after `logs/metrics.csv` shows {HALF_EPOCHS} complete epochs), then "
            f"`ginpipe resume RUN_DIR`; {len(resumed)} rounds, interleaved with "
            "uninterrupted runs in fresh roots.",
            table,
            f"Tasks of the resumed attempt (first round): {reused}.",
        ]
    )
    notes = []
    stale = [r.epochs_before_kill for r in resumed if r.epochs_before_kill < HALF_EPOCHS]
    if stale:
        notes.append(
            f"In {len(stale)} of {len(resumed)} rounds `last.ckpt` held fewer epochs "
            f"({', '.join(map(str, stale))}) than had completed ({HALF_EPOCHS}) when the process "
            "was killed, so the resume redid those epochs: `fit` writes `last.ckpt` at the "
            "end of every epoch, so this means a write did not finish before the kill."
        )
    if same < len(resumed):
        notes.append(
            "The resumed accuracy differs from the uninterrupted one in some rounds "
            "(see the table); ginpipe documents bit-identical resumes from end-of-epoch "
            "checkpoints with deterministic kernels."
        )
    body = "\n\n".join(filter(None, [body, quiet_note(results)]))
    return BenchResult(
        key="resume",
        title="Resume after a kill",
        body=body,
        targets=[Target("(killed + resume) / uninterrupted wall", ratio.median, TOTAL_RATIO_LIMIT)],
        notes=notes,
        profile=profile_resume,
    )


def profile_resume() -> str:
    """Kill a run half-way, then profile its ``ginpipe resume``."""
    with fresh_dir("profile-") as root:
        _, run_dir = start_and_kill(root)
        return profile_top(
            ["-m", "ginpipe.cli", "resume", str(run_dir)], collapse=["Trainer.fit"], threshold=0.005
        )


def run(repeats: int) -> BenchResult:
    return report(interleave(variants(), repeats))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    print(run(parser.parse_args().repeats).body)
