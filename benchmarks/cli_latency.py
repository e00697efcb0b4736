"""CLI latency: how long the commands that should feel instant take, next to the floors
``python -c "import pytorch_lightning"`` and ``python -c "import torch"``.

``--help`` and ``runs`` must not import torch at all. Composing a config imports exactly
what it names: a project of the user's own torch-free tasks validates without torch, a
syntax error in any file is reported before anything the configs name is imported, and
``config base models/resnet`` pays one Lightning import and little more.
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
TORCH_FLOOR = "import torch"
OWN_TASKS_RATIO_LIMIT = 0.3  # ginpipe config of torch-free tasks / import torch
SYNTAX_ERROR_RATIO_LIMIT = 0.25  # syntax error reported / import torch
CONFIG_RATIO_LIMIT = 1.1  # ginpipe config base models/resnet / import pytorch_lightning
OWN_TASKS = """\
from ginpipe import task


@task(writes=("numbers",))
def numbers(state, *, n: int = 3):
    return {"numbers": list(range(n))}


@task(reads=("numbers",), writes=("total",))
def total(state, *, scale: float = 1.0):
    return {"total": sum(state["numbers"]) * scale}
"""
OWN_CONFIG = "import bench_own_tasks\nrun.tasks = [@numbers, @total]\nnumbers.n = 10\n"
BROKEN_CONFIG = "fit.batch_size = 32\nResNet.activation = 'gelu\n"  # unterminated string


def make_user_project(root: Path) -> None:
    """A user's folder: torch-free tasks of their own, and a config with a syntax error."""
    (root / "bench_own_tasks.py").write_text(OWN_TASKS)
    (root / "own.gin").write_text(OWN_CONFIG)
    (root / "broken.gin").write_text(BROKEN_CONFIG)


def make_sample_runs(root: Path) -> None:
    """A few finished runs for ``ginpipe runs`` to list: the smoke-test pipeline with
    different seeds (steps after the first run come from the cache, so this is quick)."""
    for index in range(SAMPLE_RUNS):
        cmd = ginpipe_cmd(
            "run",
            *BASE_CONFIGS,
            "debug/fast",
            "--root",
            str(root),
            "--name",
            f"sample-{index}",
            "--mod",
            f"seed_everything.seed={index}",
        )
        run_measured(cmd).check(f"sample run {index}")


OWN = "ginpipe config own.gin (torch-free tasks)"
BROKEN = "ginpipe run base models/resnet broken.gin (syntax error)"
CONFIG = "ginpipe config base models/resnet"


def commands(root: Path) -> dict[str, tuple[list[str], Path | None]]:
    """name -> (command, working directory; None: the repository)."""
    return {
        "ginpipe --help": (ginpipe_cmd("--help"), None),
        f"ginpipe runs ({SAMPLE_RUNS} runs)": (ginpipe_cmd("runs", "--root", str(root)), None),
        CONFIG: (ginpipe_cmd("config", "base", "models/resnet"), root),
        OWN: (ginpipe_cmd("config", "own.gin"), root),
        BROKEN: (ginpipe_cmd("run", "base", "models/resnet", "broken.gin"), root),
        f'python -c "{FLOOR}"': ([PYTHON, "-c", FLOOR], None),
        f'python -c "{TORCH_FLOOR}"': ([PYTHON, "-c", TORCH_FLOOR], None),
        'python -c "pass"': ([PYTHON, "-c", "pass"], None),
    }


def run(repeats: int) -> BenchResult:
    repeats = max(repeats, MIN_REPEATS)
    with fresh_dir("cli-") as root:
        log("cli: creating sample runs")
        make_sample_runs(root)
        make_user_project(root)
        cmds = commands(root)

        def variant(cmd: list[str], cwd: Path | None, name: str) -> Callable[[int], Measurement]:
            def measure(_: int) -> Measurement:
                measured = run_measured(cmd, cwd=cwd) if cwd else run_measured(cmd)
                if name == BROKEN and measured.returncode != 2:
                    raise RuntimeError(f"{name}: expected exit 2, got {measured.returncode}")
                return measured if name == BROKEN else measured.check(" ".join(cmd))

            return measure

        results: dict[str, list[Measurement]] = interleave(
            {name: variant(cmd, cwd, name) for name, (cmd, cwd) in cmds.items()},
            repeats,
            warmup=1,
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
    torch_floor = [m.wall for m in results[f'python -c "{TORCH_FLOOR}"']]
    own_ratio = paired_ratios([m.wall for m in results[OWN]], torch_floor)
    broken_ratio = paired_ratios([m.wall for m in results[BROKEN]], torch_floor)
    config_ratio = paired_ratios([m.wall for m in results[CONFIG]], floor)
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
            Target(
                "own torch-free tasks validated / torch import",
                own_ratio.median,
                OWN_TASKS_RATIO_LIMIT,
            ),
            Target(
                "syntax error reported / torch import",
                broken_ratio.median,
                SYNTAX_ERROR_RATIO_LIMIT,
            ),
            Target(
                "`config base models/resnet` / Lightning import",
                config_ratio.median,
                CONFIG_RATIO_LIMIT,
            ),
        ],
        profile=lambda: profile_top(["-m", "ginpipe.cli", "--help"], threshold=0.01),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=MIN_REPEATS)
    print(run(parser.parse_args().repeats).body)
