"""Resume start-up: ``ginpipe resume RUN_DIR``, process start to the first training step,
against a hand-written Lightning script resuming the same model with
``trainer.fit(..., ckpt_path=...)``.

Each side first trains until half-way through epoch ``KILL_EPOCHS + 1`` and is SIGKILLed
there (not timed); then the resume is timed until its first training batch, which
``FirstStepClock`` (``benchmarks/clock.py``, the same callback on both sides) records
before it stops training. What ginpipe adds is everything between process start and that
batch beyond the script's own work: reading the run record, the pinned config, the cached
data steps and restoring from ``last.ckpt``.
"""

from __future__ import annotations

import argparse
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
from benchmarks.overhead import BASELINE, RUN_NAME
from benchmarks.resume import MidEpochKill, epochs_in_checkpoint

KILL_EPOCHS = 2  # complete epochs before the kill
RATIO_LIMIT = 1.1
CLOCK_MOD = "fit.callbacks=[@benchmarks.clock.FirstStepClock()]"
BASELINE_METRICS = "logs/lightning_logs/version_0/metrics.csv"  # CSVLogger(out / "logs")


@dataclass
class ResumeStart:
    """One timed resume: seconds from process start to its first training batch."""

    to_first_step: float
    measurement: Measurement
    epochs_in_checkpoint: int
    record: dict[str, Any] | None = None  # ginpipe's run.json after the resume


def killed(cmd: list[str], root: Path, pattern: str) -> None:
    """Run ``cmd`` until half-way through epoch KILL_EPOCHS + 1, then SIGKILL it."""
    watch = MidEpochKill(root, RUN_NAME, KILL_EPOCHS, pattern=pattern)
    measurement = run_measured(cmd, kill_when=watch)
    if not measurement.killed:
        raise RuntimeError(f"{cmd[0]} ended (exit {measurement.returncode}) before the kill")


def killed_ginpipe_run(root: Path) -> Path:
    """The default pipeline (with the clock, inert until a resume sets its file) in
    ``root``, SIGKILLed mid-epoch; its run directory."""
    run = ginpipe_cmd(
        "run", *BASE_CONFIGS, "--root", str(root), "--name", RUN_NAME, "--mod", CLOCK_MOD
    )
    killed(run, root, f"*/{RUN_NAME}/logs/metrics.csv")
    return find_run_dir(root, RUN_NAME)


def timed_resume(cmd: list[str], clock: Path, what: str) -> tuple[float, Measurement]:
    measurement = run_measured(cmd, env=child_env(GINPIPE_BENCH_CLOCK=str(clock)))
    measurement.check(what)
    if not clock.is_file():
        raise RuntimeError(f"{what} never reached a training step")
    return float(clock.read_text()) - measurement.started, measurement


def ginpipe_resume(_: int) -> ResumeStart:
    with fresh_dir("resume-start-") as root:
        run_dir = killed_ginpipe_run(root)
        epochs = epochs_in_checkpoint(run_dir / "checkpoints" / "last.ckpt")
        seconds, measurement = timed_resume(
            ginpipe_cmd("resume", str(run_dir)), root / "clock", "ginpipe resume"
        )
        return ResumeStart(seconds, measurement, epochs, read_run_json(run_dir))


def script_resume(_: int) -> ResumeStart:
    with fresh_dir("resume-start-script-") as root:
        out = root / "out"
        killed([PYTHON, str(BASELINE), "--out", str(out)], root, f"out/{BASELINE_METRICS}")
        last = out / "checkpoints" / "last.ckpt"
        epochs = epochs_in_checkpoint(last)
        cmd = [PYTHON, str(BASELINE), "--out", str(out), "--resume", str(last)]
        seconds, measurement = timed_resume(cmd, root / "clock", "the hand-written resume")
        return ResumeStart(seconds, measurement, epochs)


def variants() -> dict[str, Callable[[int], ResumeStart]]:
    return {"ginpipe resume": ginpipe_resume, "trainer.fit(ckpt_path=...)": script_resume}


def report(results: Mapping[str, list[ResumeStart]]) -> BenchResult:
    ours, script = results["ginpipe resume"], results["trainer.fit(ckpt_path=...)"]
    ratio = paired_ratios([r.to_first_step for r in ours], [r.to_first_step for r in script])
    outside = [
        r.to_first_step - sum(v for k, v in task_seconds(r.record or {}).items() if k != "fit")
        for r in ours
    ]
    table = markdown_table(
        ["", "ginpipe resume", "hand-written resume"],
        [
            [
                "process start -> first training step, s",
                summarize([r.to_first_step for r in ours]).fmt(2),
                summarize([r.to_first_step for r in script]).fmt(2),
            ],
            [
                f"epochs in last.ckpt (killed in epoch {KILL_EPOCHS + 1})",
                summarize([r.epochs_in_checkpoint for r in ours]).fmt(0),
                summarize([r.epochs_in_checkpoint for r in script]).fmt(0),
            ],
            ["of which outside the data tasks, s", summarize(outside).fmt(2), ""],
            [
                "peak RSS MiB",
                summarize([r.measurement.max_rss_mb for r in ours]).fmt(0),
                summarize([r.measurement.max_rss_mb for r in script]).fmt(0),
            ],
            ["**ratio ginpipe / hand-written**", ratio.fmt(3), ""],
        ],
    )
    record = ours[0].record or {}
    reused = ", ".join(f"{t['name']}: {t['status']}" for t in record.get("tasks", []))
    body = "\n\n".join(
        filter(
            None,
            [
                f"Both sides train the default pipeline, are SIGKILLed half-way through epoch "
                f"{KILL_EPOCHS + 1} and then resumed; timed from the resuming process's start "
                f"to its first training batch ({len(ours)} rounds, interleaved).",
                table,
                f"Tasks of ginpipe's resumed attempt (first round): {reused}.",
                quiet_note(results),
            ],
        )
    )
    return BenchResult(
        key="resume_start",
        title="Resume: process start to first training step",
        body=body,
        targets=[Target("resume to first step, ginpipe / hand-written", ratio.median, RATIO_LIMIT)],
        profile=profile_resume_start,
    )


def profile_resume_start() -> str:
    """Kill a run, then profile its ``ginpipe resume`` up to the first training step."""
    with fresh_dir("profile-") as root:
        run_dir = killed_ginpipe_run(root)
        return profile_top(
            ["-m", "ginpipe.cli", "resume", str(run_dir)],
            collapse=["Trainer.fit"],
            threshold=0.005,
            env=child_env(GINPIPE_BENCH_CLOCK=str(root / "clock")),
        )


def run(repeats: int) -> BenchResult:
    return report(interleave(variants(), repeats))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    print(run(parser.parse_args().repeats).body)
