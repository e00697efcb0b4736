"""Tracking cost: the default pipeline with ``loggers/mlflow`` (SQLite store) against the same
run without it.

Both variants are ``ginpipe run base models/resnet`` through the real CLI, each in a fresh
root (nothing comes from the cache), interleaved round by round. The MLflow variant tracks
into one SQLite database that a first, quick run created (``MLFLOW_TRACKING_URI``), as a user's
runs do after their first: creating the database (MLflow's schema migrations) happens once
per project, and is measured once, separately. What tracking adds per run, in a process of
its own (ginpipe/tasks/tracking_sidecar.py): importing mlflow and its SQLAlchemy store,
creating the MLflow run with every binding as a param, the live training metrics, and at the
end (waited for) the test metrics, the run's files and the model as a pyfunc model.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.common import (
    BASE_CONFIGS,
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
    quiet_note,
    read_run_json,
    run_measured,
    summarize,
    task_seconds,
)

WALL_RATIO_LIMIT = 1.05
RUN_NAME = "t"
TRACKING = ("loggers/mlflow",)
STORE = WORK / "tracking"


@dataclass
class TrackedRun:
    measurement: Measurement
    record: dict[str, Any]

    @property
    def accuracy(self) -> float:
        return float(self.record["metrics"]["accuracy"])

    @property
    def tasks(self) -> dict[str, float]:
        return task_seconds(self.record)


def database_uri() -> str:
    return f"sqlite:///{(STORE / 'mlflow.db').absolute()}"


def pipeline_run(extra: tuple[str, ...], env: dict[str, str] | None = None) -> TrackedRun:
    with fresh_dir("tracking-") as root:
        cmd = ginpipe_cmd("run", *BASE_CONFIGS, *extra, "--root", str(root), "--name", RUN_NAME)
        measurement = run_measured(cmd, env=env).check("ginpipe run")
        return TrackedRun(measurement, read_run_json(find_run_dir(root, RUN_NAME)))


def without(_: int = 0) -> TrackedRun:
    return pipeline_run(())


def with_mlflow(_: int = 0) -> TrackedRun:
    return pipeline_run(TRACKING, child_env(MLFLOW_TRACKING_URI=database_uri()))


def first_run_of_project() -> Measurement:
    """A quick run (no training) into a database that does not exist yet: MLflow creates
    it, and the tracked rounds log into it afterwards."""
    with fresh_dir("tracking-first-") as root:
        cmd = ginpipe_cmd("run", "base", "models/logreg", *TRACKING, "--root", str(root))
        env = child_env(MLFLOW_TRACKING_URI=database_uri())
        return run_measured(cmd, env=env).check("ginpipe run (new database)")


def variants() -> dict[str, Callable[[int], Any]]:
    return {"without tracking": without, "loggers/mlflow": with_mlflow}


def report(results: Mapping[str, list[TrackedRun]], first: Measurement | None) -> BenchResult:
    base, tracked = results["without tracking"], results["loggers/mlflow"]
    walls = [r.measurement.wall for r in tracked]
    base_walls = [r.measurement.wall for r in base]
    wall_ratio = paired_ratios(walls, base_walls)
    rows = [
        ["wall s", summarize(base_walls).fmt(1), summarize(walls).fmt(1), wall_ratio.fmt(3)],
        [
            "CPU s (user + system)",
            summarize([r.measurement.cpu_s for r in base]).fmt(1),
            summarize([r.measurement.cpu_s for r in tracked]).fmt(1),
            paired_ratios(
                [r.measurement.cpu_s for r in tracked], [r.measurement.cpu_s for r in base]
            ).fmt(3),
        ],
        [
            "peak RSS MiB",
            summarize([r.measurement.max_rss_mb for r in base]).fmt(0),
            summarize([r.measurement.max_rss_mb for r in tracked]).fmt(0),
            paired_ratios(
                [r.measurement.max_rss_mb for r in tracked],
                [r.measurement.max_rss_mb for r in base],
            ).fmt(3),
        ],
        [
            "test accuracy",
            summarize([r.accuracy for r in base]).fmt(4),
            summarize([r.accuracy for r in tracked]).fmt(4),
            "",
        ],
    ]
    for name in tracked[0].tasks:
        rows.append(
            [
                f"`{name}` s",
                summarize([r.tasks.get(name, 0.0) for r in base]).fmt(2),
                summarize([r.tasks.get(name, 0.0) for r in tracked]).fmt(2),
                "",
            ]
        )
    rows.append(
        [
            "outside tasks s (start-up, imports, tracker's start and end)",
            summarize([r.measurement.wall - sum(r.tasks.values()) for r in base]).fmt(2),
            summarize([r.measurement.wall - sum(r.tasks.values()) for r in tracked]).fmt(2),
            "",
        ]
    )
    table = markdown_table(
        ["", "without tracking", "with loggers/mlflow", "ratio with / without"], rows
    )
    intro = (
        f"`ginpipe run base models/resnet [loggers/mlflow] --root <fresh> --name {RUN_NAME}` "
        f"({len(tracked)} rounds, interleaved; ratios are per round). The tracked runs log "
        "into one SQLite database (`MLFLOW_TRACKING_URI=sqlite:///...`) that a first, quick "
        "run created: every binding as a param, train/val metrics live, the test metrics, "
        "config.gin, operative.gin, metrics.json, predictions.csv, the plots and the model "
        "as a pyfunc model."
    )
    parts = [intro, table]
    if first is not None:
        parts.append(
            "A project's first tracked run also creates its database (MLflow's schema "
            "migrations): `ginpipe run base models/logreg loggers/mlflow` into a new "
            f"database took {first.wall:.1f} s wall, once."
        )
    body = "\n\n".join(filter(None, [*parts, quiet_note(results)]))
    return BenchResult(
        key="tracking",
        title="Tracking: default pipeline with and without loggers/mlflow",
        body=body,
        targets=[
            Target("wall ratio with / without loggers/mlflow", wall_ratio.median, WALL_RATIO_LIMIT)
        ],
    )


def run(repeats: int, max_redos: int | None = None) -> BenchResult:
    STORE.mkdir(parents=True, exist_ok=True)
    (STORE / "mlflow.db").unlink(missing_ok=True)
    first = first_run_of_project()
    results = interleave(variants(), repeats, max_redos=max_redos)
    return report(results, first)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--max-redos", type=int, default=None, help="disturbed rounds run again (default: repeats)"
    )
    args = parser.parse_args()
    result = run(args.repeats, args.max_redos)
    for target in result.targets:
        print(target)
    print(result.body)
