"""Run the benchmarks side by side in one go and write ``benchmarks/RESULTS.md``.

    python benchmarks/run_all.py                       # everything -> benchmarks/RESULTS.md
    python benchmarks/run_all.py --only cli            # one benchmark (or a comma list)
    python benchmarks/run_all.py --only cache,scale --repeats 5

A partial run (``--only``) prints its Markdown and writes it to ``benchmarks/_work/``, so
RESULTS.md always holds one complete run. When a target is missed and pyinstrument is
installed, the slow part is profiled and the top frames go into the report.
"""

from __future__ import annotations

import argparse
import compileall
import importlib
import os
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `python benchmarks/run_all.py` puts benchmarks/ first

from benchmarks import overhead, resume  # noqa: E402
from benchmarks.common import (  # noqa: E402
    BENCH_DIR,
    DISTURBED_CORES,
    QUIET_WAIT_S,
    WORK,
    BenchResult,
    have_pyinstrument,
    interleave,
    log,
    machine_info,
    markdown_table,
)

# Key -> module, in the order they run: quick ones first, the long training runs last.
BENCHMARKS = {
    "cli": "benchmarks.cli_latency",
    "config": "benchmarks.config_scale",
    "scale": "benchmarks.data_scale",
    "loading": "benchmarks.data_loading",
    "predict": "benchmarks.predict_throughput",
    "predict_audio": "benchmarks.predict_audio",
    "serve": "benchmarks.serve",
    "features": "benchmarks.feature_extraction",
    "cache": "benchmarks.cache_warm",
    "sweep": "benchmarks.sweep_grid",
    "overhead": "benchmarks.overhead",
    "resume": "benchmarks.resume",
    "resume_start": "benchmarks.resume_first_step",
}
RESULTS = BENCH_DIR / "RESULTS.md"

# What the profiles showed when these benchmarks were written, per benchmark whose target
# can be missed; printed under the fresh profile so a reader can check it still holds.
ANALYSIS = {
    "overhead": (
        "On this shared 2-core machine a round's ratio moves by 5-10 % with the host's load, "
        "so compare the medians of the task rows with the script's phases. What side-by-side "
        "timings showed, and what was done: (1) start-up: names are registered with gin only "
        "when a config uses them; the config is composed with the garbage collector paused "
        "and what it imported is frozen (`ginpipe/runs/startup.py`), which removes ~2 s of "
        "collector rescans the script still pays; the benchmark compiles ginpipe's bytecode "
        "first, as pip does on install. (2) `fit`: the CSV training log was rewritten and "
        "fsynced at each of Lightning's ~46 flushes (~0.2 s): rows are now appended; "
        "checkpoints pickled on a worker thread held the interpreter between training's "
        "kernels (measured slower than writing in place): they are now serialized when "
        "Lightning saves them and only written and fsynced on the worker. (3) `evaluate`: "
        "the two plots take ~0.5 s (matplotlib holds the interpreter while drawing, so a "
        "thread cannot hide them, and a fresh process pays ~1.2 s to import matplotlib "
        "here); everything that computes with torch now runs before they start, and the "
        "file writes overlap them."
    ),
    "resume": (
        "A resumed process pays its start-up again (interpreter, Lightning import, config: "
        "the 'outside tasks' row), on top of the half epoch of work the kill lost; on this "
        "machine the start-up alone is about a third of the uninterrupted wall of this short "
        "pipeline, so <= 1.15x is out of reach for a job this short and easy for one of "
        "minutes. The resume itself starts from the last complete epoch (`last.ckpt` is "
        "written at the end of every epoch; the 'epochs in last.ckpt' row) and reaches its "
        "first training step as fast as a hand-written script resuming the same checkpoint "
        "(the 'Resume: process start to first training step' benchmark)."
    ),
    "config": (
        "One-line bindings skip the tokenizer and gin's parser (`gintext._SIMPLE_LINE`); what "
        "is left is mostly gin's own work on the quarter of the file that is one list of "
        "5,000 macro references: gin parses it twice (the syntax check that runs before "
        "anything is imported, then the binding) and `gin.config_str` formats and re-parses "
        "it for the config's digest. ginpipe is on par with gin alone on the same file; "
        "compare the CPU column with the wall on a shared machine."
    ),
    "cache": (
        "The warm run still pays the interpreter start, the Lightning import and config "
        "composition before its first step; the cache can only remove task work. Compare "
        "the warm time with the Lightning-import floor in the table."
    ),
    "predict": (
        "Both sides decode with the same calls in the same DataLoader settings and run the "
        "same network; ginpipe predict also checks that every file exists before it starts "
        "and writes each batch's rows as they come. A gap usually comes from the machine "
        "(2 workers on 2 cores); compare the profile taken without workers. Four runs on "
        "2026-11-28 gave 1.017, 0.845, 1.02 and 0.89, the hand-written side moving most "
        "(its seconds column). The peak RSS of the main process with two forked workers "
        "moves by tens of MiB between rounds on both sides (the ranges of the RSS table), "
        "so bytes per extra file at this size is within that noise: 423 and 3,076 in two "
        "runs of ginpipe, 680 and 19,008 for the hand-written loop."
    ),
    "loading": (
        "Both decode with the same calls (PIL open, convert, resize, /255, normalize) in "
        "two spawned workers; a gap usually comes from the machine (2 workers on 2 cores "
        "are sensitive to any other process). Compare the per-item frames of the two "
        "profiles above, taken without workers."
    ),
}


def run_selected(keys: list[str], repeats: int) -> list[BenchResult | tuple[str, str]]:
    """Each benchmark's result, or (key, traceback) for one that failed."""
    results: list[BenchResult | tuple[str, str]] = []
    pending = list(keys)
    if "overhead" in pending and "resume" in pending:
        # One interleaved loop of three variants: the uninterrupted ginpipe runs serve as
        # the subject of the overhead benchmark and the reference of the resume benchmark.
        log("overhead + resume: hand-written, ginpipe, ginpipe killed + resumed")
        try:
            shared = interleave({**overhead.variants(), **resume.variants()}, repeats)
            results += [overhead.report(shared), resume.report(shared)]
        except Exception:
            results += [(k, traceback.format_exc()) for k in ("overhead", "resume")]
        pending = [k for k in pending if k not in ("overhead", "resume")]
    for key in pending:
        log(f"{key}: starting")
        module: ModuleType = importlib.import_module(BENCHMARKS[key])
        try:
            results.append(module.run(repeats))
        except Exception:
            results.append((key, traceback.format_exc()))
        log(f"{key}: done")
    order = list(BENCHMARKS)
    return sorted(results, key=lambda r: order.index(r[0] if isinstance(r, tuple) else r.key))


def profile_misses(results: list[BenchResult | tuple[str, str]]) -> dict[str, str]:
    """A pyinstrument profile of the slow part of every benchmark that missed a target."""
    profiles: dict[str, str] = {}
    for result in results:
        if not isinstance(result, BenchResult) or not result.missed or result.profile is None:
            continue
        if not have_pyinstrument():
            profiles[result.key] = "(install pyinstrument to get a profile here)"
            continue
        log(f"{result.key}: target missed, profiling")
        try:
            profiles[result.key] = result.profile()
        except Exception as error:  # a failed profile must not lose the results
            profiles[result.key] = f"(profile failed: {error})"
    return profiles


def missed_section(result: BenchResult, profile: str | None) -> list[str]:
    lines = []
    for target in result.missed:
        lines.append(f"### {result.title}: {target.description}")
        lines.append(f"Measured {target.value:.3g}, target {target.row()[2]}.")
    if profile:
        lines.append("pyinstrument, top frames (share of the whole process):")
        lines.append(f"```\n{profile}\n```")
    if result.key in ANALYSIS:
        lines.append(f"Analysis: {ANALYSIS[result.key]}")
    return lines


def render(
    results: list[BenchResult | tuple[str, str]],
    info: dict[str, str],
    repeats: int,
    minutes: float,
    command: str,
    profiles: dict[str, str],
) -> str:
    done = [r for r in results if isinstance(r, BenchResult)]
    failed = [r for r in results if isinstance(r, tuple)]
    out = [
        "# Benchmark results",
        "",
        f"`{command}`, {repeats} rounds per benchmark (at least 5 for the CLI and data loading), "
        f"{minutes:.1f} min in all (profiles of missed targets taken afterwards). "
        "Every figure is a median over rounds with its range "
        "(min-max); ratios are taken per round between variants run next to each other "
        "(A B A B ...), then summarized. Every measured variant is a fresh process. The "
        "machine may be shared: before each round the runner waits (up to "
        f"{QUIET_WAIT_S:.0f} s) for other processes to go quiet, and a round during which "
        f"they used more than {DISTURBED_CORES} cores is run again (at most as many times "
        "as there are rounds); each section says how quiet its kept rounds were.",
        "",
        "## Machine",
        "",
        markdown_table(["", ""], [[k, v] for k, v in info.items()]),
        "",
        "## Targets",
        "",
        markdown_table(
            ["benchmark", "figure", "value (median)", "target", "status"],
            [[r.title, *t.row()] for r in done for t in r.targets],
        ),
    ]
    for result in done:
        out += ["", f"## {result.title}", "", result.body]
        out += [f"\n> Note: {note}" for note in result.notes]
    missed = [r for r in done if r.missed]
    if missed:
        out += ["", "## Missed targets: profile and cause", ""]
        for result in missed:
            out += ["\n\n".join(missed_section(result, profiles.get(result.key))), ""]
    for key, error in failed:
        out += ["", f"## {key}: FAILED", "", f"```\n{error}\n```"]
    return "\n".join(out).rstrip() + "\n"


def load_average() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def compile_sources() -> None:
    """Write the bytecode of ginpipe and of the benchmarks before measuring, as pip does
    when it installs a wheel. From a source checkout with ``PYTHONDONTWRITEBYTECODE`` set
    (as on this machine) every process would otherwise compile them again, a cost no
    installed user pays."""
    for package in (REPO / "ginpipe", BENCH_DIR):
        compileall.compile_dir(package, quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--repeats", type=int, default=3, help="rounds per benchmark (>= 3)")
    parser.add_argument("--output", type=Path, default=None, help="where to write the Markdown")
    parser.add_argument("--no-profile", action="store_true", help="skip profiling misses")
    args = parser.parse_args()

    keys = [k.strip() for k in args.only.split(",") if k.strip()] or list(BENCHMARKS)
    unknown = [k for k in keys if k not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    if args.repeats < 3:
        parser.error("--repeats must be at least 3 (a median and a spread need them)")

    WORK.mkdir(parents=True, exist_ok=True)
    compile_sources()
    info = machine_info()
    info["load average at start (1/5/15 min)"] = load_average()
    start = time.monotonic()
    results = run_selected(keys, args.repeats)
    info["load average at end (1/5/15 min)"] = load_average()
    minutes = (time.monotonic() - start) / 60
    profiles = {} if args.no_profile else profile_misses(results)
    command = "python benchmarks/run_all.py" + (f" --only {args.only}" if args.only else "")
    if args.repeats != 3:
        command += f" --repeats {args.repeats}"
    text = render(results, info, args.repeats, minutes, command, profiles)

    output = args.output or (RESULTS if not args.only else WORK / f"results-{'-'.join(keys)}.md")
    output.write_text(text)
    if args.only:
        print(text)
    log(f"wrote {output}")
    return 1 if any(isinstance(r, tuple) for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
