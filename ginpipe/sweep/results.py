"""What a sweep found: the trials table (``ginpipe runs --sweep DIR``), the results in
``sweep.json`` (best trial, per-trial metric) and the plots in the sweep folder.

The study says each trial's state and value; the trial's own ``run.json`` its duration.
Reading never writes: ``runs --sweep`` opens the study without creating or repairing it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ginpipe.base.errors import ConfigError
from ginpipe.base.tables import render_table
from ginpipe.runs import rundir
from ginpipe.sweep import definition
from ginpipe.sweep.definition import Sweep, trial_name
from ginpipe.sweep.space import value_text
from ginpipe.sweep.study import CLAIMS, reading_storage

STATES = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}
_ORDER = {"complete": 0, "pruned": 1, "running": 2, "stopped": 2, "waiting": 3, "failed": 4}
SEED_KEYS = ("SEED", "seed_everything.seed")
HISTORY_PLOT = "optimization_history.png"
COMPARE_PLOT = "compare.png"
COMPARED_TRIALS = 8  # the best ones: more curves would hide each other


@dataclass
class Row:
    number: int
    state: str
    values: dict[str, str]
    value: float | None
    duration_s: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "trial": self.number,
            "dir": trial_name(self.number),
            "state": self.state,
            "params": self.values,
            "value": self.value,
            "duration_s": self.duration_s,
        }


def _claimed(sweep: Sweep, number: int) -> bool:
    """A RUNNING trial whose claim lock is held has a live worker; otherwise it stopped."""
    import fcntl
    import os

    path = sweep.dir / CLAIMS / f"{trial_name(number)}.lock"
    if not path.is_file():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _duration(sweep: Sweep, trial: FrozenTrial) -> float | None:
    try:
        record = rundir.load_run_json(sweep.trial_dir(trial.number))
    except Exception:  # a trial killed before its run.json: the study's clock
        record = {}
    duration = record.get("duration_s")
    if isinstance(duration, (int, float)):
        return float(duration)
    if trial.datetime_start and trial.datetime_complete:
        return (trial.datetime_complete - trial.datetime_start).total_seconds()
    return None


def rows(sweep: Sweep, trials: list[FrozenTrial]) -> list[Row]:
    """One row per trial, best first: completed by value, then pruned, running, failed."""
    found = []
    for trial in trials:
        state = STATES.get(trial.state, trial.state.name.lower())
        if state == "running" and not _claimed(sweep, trial.number):
            state = "stopped"  # its worker died: --resume continues it
        values = {
            p.key: value_text(trial.params[p.key])
            for p in sweep.space.params
            if p.key in trial.params
        }
        value = trial.value if trial.state == TrialState.COMPLETE else None
        found.append(Row(trial.number, state, values, value, _duration(sweep, trial)))
    sign = -1.0 if sweep.direction == "maximize" else 1.0

    def order(row: Row) -> tuple[int, float, int]:
        value = sign * row.value if row.value is not None else math.inf
        return (_ORDER.get(row.state, 5), value, row.number)

    return sorted(found, key=order)


def results(sweep: Sweep, found: list[Row]) -> dict[str, Any]:
    """What ``sweep.json`` records about the trials so far."""
    complete = [r for r in found if r.state == "complete"]
    best = complete[0].to_json() if complete else None
    counts = {state: sum(r.state == state for r in found) for state in _ORDER}
    return {
        "metric": sweep.metric,
        "direction": sweep.direction,
        "best": best,
        "counts": counts,
        "trials": [r.to_json() for r in sorted(found, key=lambda r: r.number)],
    }


def write_results(sweep: Sweep, study: optuna.Study) -> list[Row]:
    found = rows(sweep, study.get_trials(deepcopy=False))
    sweep.save(results(sweep, found))
    return found


def load_rows(sweep_dir: Path) -> tuple[Sweep, list[Row]]:
    """The trials of a sweep folder, read without writing anything."""
    sweep = definition.load(sweep_dir)
    try:
        study = optuna.load_study(study_name=sweep.study_name, storage=reading_storage(sweep))
    except KeyError:
        return sweep, []  # created, no trial asked yet
    return sweep, rows(sweep, study.get_trials(deepcopy=False))


def format_table(sweep: Sweep, found: list[Row]) -> str:
    """``runs --sweep``: one row per trial with the swept values as columns, best first;
    with the seed swept, mean and std of the metric per configuration below it."""
    if not found:
        return f"no trials yet in {sweep.dir}"
    keys = [p.key for p in sweep.space.params]
    header = ("TRIAL", "STATE", *keys, sweep.metric.upper(), "DURATION")
    table: list[tuple[str, ...]] = []
    for row in found:
        table.append(
            (
                trial_name(row.number),
                row.state,
                *(row.values.get(k, "-") for k in keys),
                f"{row.value:.4f}" if row.value is not None else "-",
                f"{row.duration_s:.1f}s" if row.duration_s is not None else "-",
            )
        )
    lines = [render_table(table, header)]
    counts = results(sweep, found)["counts"]
    summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    lines.append(
        f"{len(found)} of {sweep.trials} trials ({summary}); {sweep.direction} {sweep.metric}"
    )
    seeds = [k for k in keys if k in SEED_KEYS]
    if seeds:
        lines += ["", *_by_configuration(sweep, found, keys, seeds[0])]
    return "\n".join(lines)


def _by_configuration(sweep: Sweep, found: list[Row], keys: list[str], seed: str) -> list[str]:
    others = [k for k in keys if k != seed]
    groups: dict[tuple[str, ...], list[float]] = {}
    for row in found:
        if row.value is not None:
            groups.setdefault(tuple(row.values.get(k, "-") for k in others), []).append(row.value)
    reverse = sweep.direction == "maximize"
    ordered = sorted(groups.items(), key=lambda item: statistics.fmean(item[1]), reverse=reverse)
    header = (*others, f"{sweep.metric.upper()} MEAN", "STD", f"N ({seed})")
    table: list[tuple[str, ...]] = []
    for config, values in ordered:
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        table.append((*config, f"{statistics.fmean(values):.4f}", f"{std:.4f}", str(len(values))))
    return [f"per configuration, over {seed}:", render_table(table, header)]


def draw_plots(sweep: Sweep, found: list[Row]) -> list[Path]:
    """``optimization_history.png`` and ``<key>.png`` (metric against each swept value),
    drawn by ``ginpipe/plots/sweep.py``."""
    from ginpipe.plots.figures import save_figure
    from ginpipe.plots.sweep import history_figure, param_figure

    done = sorted((r for r in found if r.value is not None), key=lambda r: r.number)
    if not done:
        return []
    title = sweep.dir.name
    trials = [(r.number, float(r.value)) for r in done if r.value is not None]
    figure = history_figure(title, sweep.metric, sweep.direction, trials)
    written = [save_figure(figure, sweep.dir / HISTORY_PLOT)]
    for param in sweep.space.params:
        points = [
            (r.number, r.values[param.key], float(r.value))
            for r in done
            if r.value is not None and param.key in r.values
        ]
        categorical = param.kind in ("grid", "choice")
        figure = param_figure(
            title,
            sweep.metric,
            param.key,
            points,
            categories=list(param.values) if categorical else None,
            log_scale=param.kind == "loguniform",
        )
        written.append(save_figure(figure, sweep.dir / f"{_safe(param.key)}.png"))
    written += _compare_best(sweep, found)
    return written


def _compare_best(sweep: Sweep, found: list[Row]) -> list[Path]:
    """``compare.png``: the best trials' learning curves overlaid and their metric against
    each swept value, as ``ginpipe compare`` draws runs."""
    from ginpipe.records.compare import compare_runs, load_runs
    from ginpipe.records.history import metrics_of

    best = [r for r in found if r.value is not None][:COMPARED_TRIALS]
    dirs = [sweep.trial_dir(r.number) for r in best]
    runs = load_runs([d for d in dirs if (d / rundir.CONFIG).is_file()])
    if not runs:
        return []
    final = any(sweep.metric in metrics_of(run.record) for run in runs)
    path = sweep.dir / COMPARE_PLOT
    compare_runs(runs, path, sweep.metric if final else None)
    return [path]


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)


def check_sweep_dir(path: Path) -> None:
    if not (path / definition.SWEEP_FILE).is_file():
        raise ConfigError(f"not a sweep directory (no {definition.SWEEP_FILE}): {path}")
