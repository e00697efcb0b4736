"""``ginpipe compare RUN... -o compare.png`` (and ``ginpipe runs --plot``): runs in one
picture, drawn by ``ginpipe/plots/compare.py`` from the files the runs left (their config,
``run.json`` and Lightning's CSV log). Writes only the figure."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ginpipe.base.errors import ConfigError, DamagedRunError
from ginpipe.base.oserrors import reported
from ginpipe.layout import rundir
from ginpipe.plots.compare import ComparedRun, compare_figure
from ginpipe.plots.epochlog import TRAINING_LOG, read_epoch_log
from ginpipe.plots.figures import save_figure
from ginpipe.records.differing import differing_keys, shortened
from ginpipe.records.history import RunInfo, inspect_run, lookup, metrics_of

# Panels of "metric against a value" at most; the legend still names every difference.
MAX_VALUE_PANELS = 4


def load_runs(paths: Sequence[Path]) -> list[RunInfo]:
    runs = []
    for path in paths:
        if not (path / rundir.CONFIG).is_file():
            raise ConfigError(f"not a run directory (no {rundir.CONFIG}): {path}")
        run = inspect_run(path)
        if run.damage is not None:
            raise DamagedRunError(f"cannot compare {path}: {run.damage}")
        runs.append(run)
    return runs


def check_output(output: Path) -> None:
    """A PNG outside every run directory (a run's files are its own)."""
    if output.suffix.lower() != ".png":
        raise ConfigError(f"-o {output}: the comparison is written as PNG; name a .png file")
    folder = Path(os.path.abspath(output)).parent
    for parent in (folder, *folder.parents):
        if (parent / rundir.CONFIG).is_file():
            raise ConfigError(
                f"-o {output} is inside the run directory {parent}; write it elsewhere"
            )
    if output.is_dir():
        raise ConfigError(f"-o {output} is a folder; name a .png file")


def main_metric(runs: Sequence[RunInfo], metric: str | None) -> str:
    if metric is not None:
        if not any(metric in metrics_of(run.record) for run in runs):
            known = sorted({k for run in runs for k in metrics_of(run.record)})
            raise ConfigError(f"no run has a metric '{metric}' (they have: {', '.join(known)})")
        return metric
    names = [str(run.record.get("main_metric") or "") for run in runs]
    found = next((n for n in names if n), "")
    if not found:
        raise ConfigError("these runs record no main metric: pick one with --metric")
    return found


def compared(runs: Sequence[RunInfo], metric: str) -> tuple[list[ComparedRun], list[str]]:
    """The runs as the figure takes them, and the config keys that differ among them."""
    keys = differing_keys(runs)
    # per key, the values as the table shows them (long ones cut to what differs)
    texts = {key: shortened([lookup(run.values, key) for run in runs]) for key in keys}
    shown = []
    for index, run in enumerate(runs):
        value = metrics_of(run.record).get(metric)
        shown.append(
            ComparedRun(
                name=run.path.name,
                log=read_epoch_log(run.path / TRAINING_LOG),
                metric=float(value) if isinstance(value, (int, float)) else None,
                values={key: texts[key][index] or "(unset)" for key in keys},
            )
        )
    return shown, keys


def compare_runs(runs: Sequence[RunInfo], output: Path, metric: str | None = None) -> str:
    """Draw the comparison of ``runs`` into ``output``; what was written."""
    check_output(output)
    if not runs:
        raise ConfigError("no runs to compare")
    name = main_metric(runs, metric)
    shown, keys = compared(runs, name)
    figure = compare_figure(shown, name, keys[:MAX_VALUE_PANELS])
    with reported(output, "write"):
        save_figure(figure, output)
    differs = ", ".join(keys) if keys else "nothing in their configs"
    more = f" (panels for the first {MAX_VALUE_PANELS})" if len(keys) > MAX_VALUE_PANELS else ""
    count = f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
    return f"wrote {output}: {count} on {name}; differing: {differs}{more}"
