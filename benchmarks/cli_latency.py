"""CLI latency: how long the commands that should feel instant take, next to the floor of
any Lightning tool, ``python -c "import pytorch_lightning"``.

``--help`` and ``runs`` must not import torch at all; ``config`` composes and validates a
config, which registers torch and Lightning classes with gin, so it pays one Lightning
import and little more.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import (
    BASE_CONFIGS,
    PYTHON,
    BenchResult,
    Measurement,
    Target,
    fresh_dir,
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

MIN_REPEATS = 5
HELP_LIMIT_S = 0.3
HELP_RATIO_LIMIT = 0.1
SAMPLE_RUNS = 3  # runs listed by `ginpipe runs`
FLOOR = "import pytorch_lightning"


def make_sample_runs(root: Path) -> None:
    """A few finished runs for ``ginpipe runs`` to list: the smoke-test pipeline with
    different seeds (steps after the first run come from the cache, so this is quick)."""
    for index in range(SAMPLE_RUNS):
        cmd = ginpipe_cmd(
            "run",
            *BASE_CONFIGS,
            "configs/debug/fast.gin",
            "--root",
            str(root),
            "--name",
            f"sample-{index}",
            "--mod",
            f"seed_everything.seed={index}",
        )
        run_measured(cmd).check(f"sample run {index}")


def commands(root: Path) -> dict[str, list[str]]:
    return {
        "ginpipe --help": ginpipe_cmd("--help"),
        f"ginpipe runs ({SAMPLE_RUNS} runs)": ginpipe_cmd("runs", "--root", str(root)),
        "ginpipe config base+resnet": ginpipe_cmd("config", *BASE_CONFIGS),
        f'python -c "{FLOOR}"': [PYTHON, "-c", FLOOR],
        'python -c "pass"': [PYTHON, "-c", "pass"],
    }


def run(repeats: int) -> BenchResult:
    repeats = max(repeats, MIN_REPEATS)
    with fresh_dir("cli-") as root:
        log("cli: creating sample runs")
        make_sample_runs(root)
        cmds = commands(root)

        def variant(cmd: list[str]) -> Callable[[int], Measurement]:
            return lambda _: run_measured(cmd).check(" ".join(cmd))

        results: dict[str, list[Measurement]] = interleave(
            {name: variant(cmd) for name, cmd in cmds.items()}, repeats, warmup=1
        )

    floor_name = f'python -c "{FLOOR}"'
    floor = [m.wall for m in results[floor_name]]
    rows = []
    for name, measurements in results.items():
        walls = [m.wall for m in measurements]
        rows.append(
            [
                f"`{name}`",
                summarize(walls).fmt(3, " s"),
                paired_ratios(walls, floor).fmt(3),
                f"{summarize([m.max_rss_mb for m in measurements]).median:.0f}",
            ]
        )
    help_walls = [m.wall for m in results["ginpipe --help"]]
    help_ratio = paired_ratios(help_walls, floor)
    body = "\n\n".join(
        [
            f"Each command is a fresh process, run {repeats} times interleaved after one "
            "discarded warm-up round. Ratio: to the Lightning import of the same round.",
            markdown_table(
                ["command", "wall: median (min-max)", "ratio to Lightning import", "peak RSS MiB"],
                rows,
            ),
        ]
    )
    body = "\n\n".join(filter(None, [body, quiet_note(results)]))
    return BenchResult(
        key="cli",
        title="CLI latency",
        body=body,
        targets=[
            Target("`ginpipe --help` seconds", summarize(help_walls).median, HELP_LIMIT_S),
            Target("`ginpipe --help` / Lightning import", help_ratio.median, HELP_RATIO_LIMIT),
        ],
        profile=lambda: profile_top(["-m", "ginpipe.cli", "--help"], threshold=0.01),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=MIN_REPEATS)
    print(run(parser.parse_args().repeats).body)
