"""Scale of config composition: a generated config of 5,000 and 20,000 lines composed and
validated as ``ginpipe config`` does, next to plain gin parsing the same file.

The config mixes what long configs are made of: comment lines, one-line macro
definitions, a list spanning a quarter of the file that uses every macro, and bindings
that later lines replace. Each variant is a fresh process that imports first and then
times only the work on the config (wall and CPU seconds), so the figures are "beyond the
imports"; the whole ``ginpipe config`` process is measured as well.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import (
    PYTHON,
    BenchResult,
    Measurement,
    Target,
    fresh_dir,
    ginpipe_cmd,
    interleave,
    markdown_table,
    paired_ratios,
    profile_top,
    quiet_note,
    run_measured,
    summarize,
)

SIZES = (5_000, 20_000)
COMPOSE_LIMIT_S = 2.0  # 20,000 lines, beyond the imports
PER_LINE_RATIO_LIMIT = 1.5  # time per line at 20,000 / at 5,000
TASKS_MODULE = "bench_config_tasks"
TASKS = """\
from ginpipe import task


@task(writes=("numbers",))
def numbers(state, *, n: int = 3, values: list = ()):
    return {"numbers": list(range(n)) + list(values)}


@task(reads=("numbers",), writes=("total",))
def total(state, *, scale: float = 1.0):
    return {"total": sum(state["numbers"]) * scale}
"""


def config_text(lines: int) -> str:
    """``lines`` lines: a quarter comments, a quarter macros, a quarter one list using
    them, the rest bindings that later ones replace."""
    quarter = lines // 4
    out = [f"import {TASKS_MODULE}", "run.tasks = [@numbers, @total]"]
    out += [f"# comment {i}: the knobs below are generated" for i in range(quarter)]
    out += [f"V_{i} = {i}  # macro {i}" for i in range(quarter)]
    out += ["numbers.values = [", *(f"    %V_{i}," for i in range(quarter)), "]"]
    out += [f"numbers.n = {i % 100}" for i in range(lines - len(out))]
    return "\n".join(out) + "\n"


def write_project(root: Path) -> dict[int, Path]:
    (root / f"{TASKS_MODULE}.py").write_text(TASKS)
    paths = {}
    for lines in SIZES:
        paths[lines] = root / f"lines_{lines}.gin"
        paths[lines].write_text(config_text(lines))
    return paths


# -- the child: import, then time the work on one config ---------------------------------


def child(mode: str, path: Path) -> None:
    """Print ``{"wall": s, "cpu": s}`` of composing ``path`` (imports not counted)."""
    sys.path.insert(0, str(path.parent))
    import gin

    import ginpipe.config.settings  # noqa: F401  (registers `run`, as ginpipe does)
    from ginpipe.runs.runner import RunRequest, prepare

    __import__(TASKS_MODULE)
    wall, cpu = time.perf_counter(), time.process_time()
    if mode == "ginpipe":
        prepare(RunRequest(files=[str(path)]))
    else:  # plain gin: parse, finalize and print the config, as composing does
        gin.parse_config_file(str(path))
        gin.finalize()
        gin.config_str()
    print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}))


def child_cmd(mode: str, path: Path) -> list[str]:
    return [PYTHON, "-m", "benchmarks.config_scale", "--child", mode, str(path)]


def run(repeats: int) -> BenchResult:
    with fresh_dir("config-") as root:
        paths = write_project(root)
        big = paths[SIZES[-1]]

        def timed(mode: str, path: Path) -> Callable[[int], dict[str, float]]:
            def measure(_: int) -> dict[str, float]:
                done = run_measured(child_cmd(mode, path), cwd=root).check(f"{mode} {path.name}")
                return done.last_json_line()

            return measure

        def whole(_: int) -> Measurement:
            return run_measured(ginpipe_cmd("config", big.name), cwd=root).check("config")

        variants: dict[str, Callable[[int], object]] = {
            f"ginpipe, {n:,} lines": timed("ginpipe", path) for n, path in paths.items()
        }
        variants[f"gin alone, {SIZES[-1]:,} lines"] = timed("gin", big)
        variants[f"`ginpipe config`, {SIZES[-1]:,} lines, whole process"] = whole
        results = interleave(variants, repeats, warmup=1)

    def walls(name: str) -> list[float]:
        return [r.wall if isinstance(r, Measurement) else r["wall"] for r in results[name]]

    def cpus(name: str) -> list[float]:
        return [r.cpu_s if isinstance(r, Measurement) else r["cpu"] for r in results[name]]

    small_name, big_name = (f"ginpipe, {n:,} lines" for n in SIZES)
    gin_name = f"gin alone, {SIZES[-1]:,} lines"
    rows = [
        [f"{name}", summarize(walls(name)).fmt(3, " s"), summarize(cpus(name)).fmt(3, " s")]
        for name in results
    ]
    ratio_to_gin = paired_ratios(walls(big_name), walls(gin_name))
    per_line = paired_ratios(
        [w / SIZES[-1] for w in walls(big_name)], [w / SIZES[0] for w in walls(small_name)]
    )
    big_wall = summarize(walls(big_name)).median
    body = "\n\n".join(
        filter(
            None,
            [
                f"{repeats} rounds interleaved after one discarded warm-up round. The "
                "ginpipe and gin rows time only the work on the config, in a process that has "
                "already imported everything (ginpipe: compose, check syntax, names, values "
                "and wiring, as `ginpipe config`; gin: `parse_config_file`, `finalize`, "
                "`config_str`). The last row is the whole `ginpipe config` process.",
                markdown_table(["variant", "wall: median (min-max)", "CPU s"], rows),
                f"ginpipe / gin alone at {SIZES[-1]:,} lines: {ratio_to_gin.fmt(2)}; time "
                f"per line at {SIZES[-1]:,} / at {SIZES[0]:,} lines: {per_line.fmt(2)}.",
                quiet_note(results),
            ],
        )
    )
    return BenchResult(
        key="config",
        title="Scale of config composition",
        body=body,
        targets=[
            Target(
                f"{SIZES[-1]:,}-line config composed, s beyond imports", big_wall, COMPOSE_LIMIT_S
            ),
            Target(
                f"time per line, {SIZES[-1]:,} / {SIZES[0]:,} lines",
                per_line.median,
                PER_LINE_RATIO_LIMIT,
            ),
        ],
        profile=lambda: _profile(),
    )


def _profile() -> str:
    with fresh_dir("config-profile-") as root:
        path = write_project(root)[SIZES[-1]]
        return profile_top(["-m", "benchmarks.config_scale", "--child", "ginpipe", str(path)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
    else:
        print(run(args.repeats).body)
