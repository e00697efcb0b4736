"""Sweeps: a 6-trial grid through ``ginpipe sweep --jobs 1`` against a shell loop of the same
6 ``ginpipe run`` commands, and Optuna's own per-trial cost (ask/tell on the journal file).

Both sides start from a fresh root and do the same training (pruning off, so no trial is
cut short); the loop's runs share that root's cache too. What the sweep can save is the
process start of every trial but the first (interpreter, torch and Lightning imports, gin
registrations); what it adds is the study (ask, tell, journal writes, sweep.json).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BASE_CONFIGS,
    GINPIPE,
    PYTHON,
    BenchResult,
    Measurement,
    Target,
    fresh_dir,
    ginpipe_cmd,
    interleave,
    markdown_table,
    paired_ratios,
    quiet_note,
    run_measured,
    summarize,
)

LRS = ("0.003", "0.01", "0.03")
WIDTHS = ("8", "16")
FIXED = ("Trainer.max_epochs=3", "ResNet.blocks_per_stage=[1, 1]")
WALL_RATIO_LIMIT = 0.9
OVERHEAD_LIMIT_S = 0.1
OVERHEAD_TRIALS = 40


def sweep_variant(round_index: int) -> Measurement:
    with fresh_dir("sweep-") as root:
        mods = [f"LR={','.join(LRS)}", f"ResNet.width={','.join(WIDTHS)}", *FIXED]
        args = ["sweep", *BASE_CONFIGS, *(a for m in mods for a in ("-m", m))]
        args += ["--jobs", "1", "--pruner", "none", "--root", str(root)]
        measurement = run_measured(ginpipe_cmd(*args)).check("ginpipe sweep")
        trials = list(root.glob("*/sweep-*/trial-*/run.json"))
        if len(trials) != len(LRS) * len(WIDTHS):
            raise RuntimeError(f"the sweep left {len(trials)} trials")
        return measurement


def loop_script(root: Path) -> str:
    fixed = " ".join(f"-m {shlex.quote(m)}" for m in FIXED)
    return (
        f"set -e; for lr in {' '.join(LRS)}; do for width in {' '.join(WIDTHS)}; do "
        f"{shlex.quote(GINPIPE)} run {' '.join(BASE_CONFIGS)} -m LR=$lr -m ResNet.width=$width "
        f"{fixed} --root {shlex.quote(str(root))} > /dev/null 2>&1; done; done"
    )


def loop_variant(round_index: int) -> Measurement:
    with fresh_dir("loop-") as root:
        measurement = run_measured(["bash", "-c", loop_script(root)]).check("shell loop")
        runs = list(root.glob("*/*/run.json"))
        if len(runs) != len(LRS) * len(WIDTHS):
            raise RuntimeError(f"the loop left {len(runs)} runs")
        return measurement


def overhead_variant(round_index: int) -> dict[str, float]:
    """Per trial, in a fresh process: Optuna's ask + tell on the journal file, and the whole
    bookkeeping a worker does around a trial (locks, ask, suggest, tell, sweep.json)."""
    result = run_measured([PYTHON, "-m", "benchmarks.sweep_grid", "--overhead-child"])
    return result.check("overhead child").last_json_line()


def overhead_child() -> None:

    from ginpipe.sweep.definition import Sweep
    from ginpipe.sweep.space import Param, Space
    from ginpipe.sweep.study import open_study
    from ginpipe.sweep.worker import next_job, write_results

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "proj" / "sweep-x"
        folder.mkdir(parents=True)
        space = Space(
            ["base"],
            [],
            [
                Param("LR", "loguniform", "-", low=1e-4, high=1e-1),
                Param("W", "int", "-", low=8, high=64),
            ],
        )
        sweep = Sweep(folder, space, trials=OVERHEAD_TRIALS, sampler="tpe")
        sweep.save()
        study = open_study(sweep)
        ask_tell, bookkeeping = [], []
        for i in range(OVERHEAD_TRIALS):
            t0 = time.perf_counter()
            job = next_job(sweep, study)
            study.tell(job.number, float(i % 7))
            t2 = time.perf_counter()
            job.claim.release()
            write_results(sweep, study)
            t3 = time.perf_counter()
            ask_tell.append(t2 - t0)
            bookkeeping.append(t3 - t0)
        optuna_only = []
        for i in range(OVERHEAD_TRIALS):  # plain Optuna on the same storage, no ginpipe locks
            t0 = time.perf_counter()
            trial = study.ask()
            trial.suggest_float("LR", 1e-4, 1e-1, log=True)
            study.tell(trial, float(i % 5))
            optuna_only.append(time.perf_counter() - t0)
    ask_tell.sort()
    bookkeeping.sort()
    optuna_only.sort()
    median = lambda v: v[len(v) // 2]  # noqa: E731
    print(
        json.dumps(
            {
                "ask_tell_s": median(ask_tell),
                "bookkeeping_s": median(bookkeeping),
                "optuna_only_s": median(optuna_only),
                "optuna_only_last_s": optuna_only[-1],
            }
        )
    )


def report(results: dict[str, list[Any]]) -> BenchResult:
    sweep: list[Measurement] = results["sweep"]
    loop: list[Measurement] = results["loop"]
    overhead: list[dict[str, float]] = results["overhead"]
    ratio = paired_ratios([s.wall for s in sweep], [lp.wall for lp in loop])
    ask_tell = summarize([o["ask_tell_s"] for o in overhead])
    table = markdown_table(
        ["", "ginpipe sweep --jobs 1", "shell loop of ginpipe run", "ratio sweep / loop"],
        [
            [
                "wall, 6 trials, s",
                summarize([s.wall for s in sweep]).fmt(1),
                summarize([lp.wall for lp in loop]).fmt(1),
                ratio.fmt(3),
            ],
            [
                "CPU, s",
                summarize([s.cpu_s for s in sweep]).fmt(1),
                summarize([lp.cpu_s for lp in loop]).fmt(1),
                paired_ratios([s.cpu_s for s in sweep], [lp.cpu_s for lp in loop]).fmt(3),
            ],
            [
                "peak RSS MiB (largest process)",
                summarize([s.max_rss_mb for s in sweep]).fmt(0),
                summarize([lp.max_rss_mb for lp in loop]).fmt(0),
                "",
            ],
        ],
    )
    per_trial = markdown_table(
        ["per trial, median of 40 (TPE, 2 parameters, journal file)", "seconds"],
        [
            ["ask (with ginpipe's locks and budget count) + suggest + tell", ask_tell.fmt(4)],
            [
                "the same + sweep.json rewritten",
                summarize([o["bookkeeping_s"] for o in overhead]).fmt(4),
            ],
            [
                "plain Optuna ask + suggest + tell",
                summarize([o["optuna_only_s"] for o in overhead]).fmt(4),
            ],
        ],
    )
    body = "\n\n".join(
        filter(
            None,
            [
                f"`ginpipe sweep base models/resnet -m LR={','.join(LRS)} -m "
                f"ResNet.width={','.join(WIDTHS)} "
                + " ".join(f"-m '{m}'" for m in FIXED)
                + " --jobs 1 --pruner none` in a fresh root, against a bash loop of the same "
                f"6 `ginpipe run` commands in a fresh root ({len(sweep)} rounds).",
                table,
                per_trial,
                quiet_note(results),
            ],
        )
    )
    return BenchResult(
        key="sweep",
        title="Sweep: one worker vs a shell loop",
        body=body,
        targets=[
            Target("sweep / loop wall, 6-trial grid", ratio.median, WALL_RATIO_LIMIT),
            Target("Optuna ask + tell per trial, s", ask_tell.median, OVERHEAD_LIMIT_S),
        ],
    )


def run(repeats: int) -> BenchResult:
    variants = {"sweep": sweep_variant, "loop": loop_variant, "overhead": overhead_variant}
    return report(interleave(variants, repeats))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--overhead-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.overhead_child:
        overhead_child()
        sys.exit(0)
    print(run(args.repeats).body)
