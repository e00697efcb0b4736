"""``ginpipe runs``: which columns, in which order, as a table, JSON or CSV.

By default the columns are the run, its status, start and duration, then one column per
config value that differs among the listed runs (found, not asked for), the main metric,
and the tags and note when a run has any. ``--columns`` names them instead: built-in
columns, config keys (short or qualified), or metric names; ``auto`` stands for the
differing config values. Reads only what ``history`` reads: nothing is written.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ginpipe.base.errors import ConfigError
from ginpipe.base.suggest import did_you_mean
from ginpipe.base.tables import render_table
from ginpipe.records.differing import MAX_CELL, differing_keys, shortened
from ginpipe.records.history import RunInfo, list_runs, lookup, metrics_of, parse_value

BUILTIN = ("run", "status", "started", "duration", "metric", "tags", "note")
AUTO = "auto"
DEFAULT = ("run", "status", "started", "duration", AUTO, "metric", "tags", "note")
FORMATS = ("table", "json", "csv")
# A config value longer than this is cut in the table (JSON and CSV keep it whole).


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "builtin", "config" or "metric"


def choose_columns(runs: Sequence[RunInfo], requested: Sequence[str] | None) -> list[Column]:
    """The columns to show: ``requested`` (comma lists allowed) or the default set."""
    names = (
        [n.strip() for item in requested for n in item.split(",") if n.strip()]
        if requested
        else list(DEFAULT)
    )
    chosen: list[Column] = []
    for name in names:
        if name == AUTO:
            chosen += [Column(key, "config") for key in differing_keys(runs)]
        elif name.lower() in BUILTIN:
            if requested or _shown_by_default(runs, name):
                chosen.append(Column(name.lower(), "builtin"))
        else:
            chosen.append(_named_column(runs, name))
    return chosen


def _shown_by_default(runs: Sequence[RunInfo], name: str) -> bool:
    if name == "tags":
        return any(run.labels.tags for run in runs)
    if name == "note":
        return any(run.labels.note for run in runs)
    return True


def _named_column(runs: Sequence[RunInfo], name: str) -> Column:
    if any(name in metrics_of(run.record) for run in runs):
        return Column(name, "metric")
    if any(lookup(run.bindings, name) is not None for run in runs):
        return Column(name, "config")
    known = {key: "" for run in runs for key in (*run.bindings, *metrics_of(run.record))}
    known.update({b: "" for b in BUILTIN})
    raise ConfigError(
        f"no column '{name}': not a config key or metric of these runs, nor one of "
        f"{', '.join(BUILTIN)}{did_you_mean(name, known)}"
    )


def value(run: RunInfo, column: Column) -> Any:
    """The cell as data (None where the run has no value): what sorting, JSON and CSV use."""
    record = run.record
    if column.kind == "config":
        text = lookup(run.values, column.name)
        return None if text is None else parse_value(text)
    if column.kind == "metric":
        return metrics_of(record).get(column.name)
    if column.name == "run":
        return run.name
    if column.name == "status":
        return run.status
    if column.name == "started":
        return record.get("first_started") or record.get("started")
    if column.name == "duration":
        duration = record.get("duration_s")
        return float(duration) if isinstance(duration, (int, float)) else None
    if column.name == "metric":
        return metrics_of(record).get(str(record.get("main_metric", "")))
    if column.name == "tags":
        return list(run.labels.tags)
    return run.labels.note or None


def sort_runs(runs: Sequence[RunInfo], key: str, descending: bool = False) -> list[RunInfo]:
    """By a column, metric or config value; runs without a value always last."""
    column = Column(key.lower(), "builtin") if key.lower() in BUILTIN else _named_column(runs, key)

    def order(run: RunInfo) -> tuple[int, float, str]:
        cell = value(run, column)
        if isinstance(cell, bool) or not isinstance(cell, (int, float)):
            return (1, 0.0, "" if cell is None else _text(cell))
        return (0, float(cell), "")

    present = [run for run in runs if value(run, column) not in (None, [])]
    missing = [run for run in runs if value(run, column) in (None, [])]
    return sorted(present, key=order, reverse=descending) + missing


def render(runs: Sequence[RunInfo], columns: Sequence[Column], fmt: str = "table") -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown --format {fmt!r}: use {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps([_json_row(run, columns) for run in runs], indent=2, default=str)
    if fmt == "csv":
        return _csv(runs, columns)
    if not runs:
        return "no runs found"
    header = [c.name.upper() if c.kind == "builtin" else c.name for c in columns]
    rows = [[_cell(run, c) for c in columns] for run in runs]
    for index, column in enumerate(columns):
        if column.kind == "config":
            texts = [_text(v) if (v := value(run, column)) is not None else None for run in runs]
            _shorten(rows, index, texts)
    lines = [render_table(rows, header)]
    lines += [f"damaged: {run.damage}" for run in runs if run.damage]
    return "\n".join(lines)


def _cell(run: RunInfo, column: Column) -> str:
    if run.damage is not None and column.name not in ("run", "status"):
        return "-"
    cell = value(run, column)
    if column.name == "metric" and column.kind == "builtin":
        name = str(run.record.get("main_metric", ""))
        return f"{name}={cell:.4f}" if isinstance(cell, (int, float)) else "-"
    if column.name == "duration" and column.kind == "builtin":
        return duration_text(cell) if isinstance(cell, float) else "-"
    if column.name == "started" and column.kind == "builtin":
        return str(cell)[:19].replace("T", " ") if cell else "-"
    if column.name == "tags" and column.kind == "builtin":
        return ",".join(cell) if cell else "-"
    if cell is None:
        return "-"
    if column.kind == "metric" and isinstance(cell, float):
        return f"{cell:.4f}"
    text = _text(cell)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _shorten(rows: list[list[str]], index: int, texts: list[str | None]) -> None:
    for row, text in zip(rows, shortened(texts), strict=True):
        if text is not None:
            row[index] = text


def _text(cell: Any) -> str:
    if isinstance(cell, str):
        return cell
    return repr(cell) if isinstance(cell, float) else str(cell)


def duration_text(seconds: float) -> str:
    """7.1s, 2m05s, 1h02m: wall time as a person reads it."""
    if not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _json_row(run: RunInfo, columns: Sequence[Column]) -> dict[str, Any]:
    row: dict[str, Any] = {"run": run.name, "dir": str(run.path), "status": run.status}
    if run.damage is not None:
        row["damage"] = run.damage
        return row
    record = run.record
    row.update(
        started=value(run, Column("started", "builtin")),
        duration_s=value(run, Column("duration", "builtin")),
        attempts=record.get("attempts"),
        main_metric=record.get("main_metric"),
        metric=value(run, Column("metric", "builtin")),
        config={c.name: value(run, c) for c in columns if c.kind == "config"},
        metrics=metrics_of(record),
        tags=list(run.labels.tags),
        note=run.labels.note,
    )
    return row


def _csv(runs: Sequence[RunInfo], columns: Sequence[Column]) -> str:
    """One row per run, the table's columns with whole values; the main metric as two
    columns (its name and value), the duration in seconds."""
    header: list[str] = []
    for column in columns:
        if column.kind == "builtin" and column.name == "metric":
            header += ["main_metric", "metric"]
        elif column.kind == "builtin" and column.name == "duration":
            header.append("duration_s")
        else:
            header.append(column.name)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for run in runs:
        row: list[Any] = []
        for column in columns:
            cell = (
                value(run, column)
                if run.damage is None or column.name in ("run", "status")
                else None
            )
            if column.kind == "builtin" and column.name == "metric":
                row.append(run.record.get("main_metric", ""))
            if isinstance(cell, list):
                cell = " ".join(cell)
            row.append("" if cell is None else cell)
        writer.writerow(row)
    return out.getvalue().rstrip("\n")


def format_runs(
    runs: Sequence[RunInfo],
    columns: Sequence[str] | None = None,
    sort: str | None = None,
    descending: bool = False,
    fmt: str = "table",
) -> str:
    """The whole ``ginpipe runs`` output for ``runs`` (already selected by ``--where``)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown --format {fmt!r}: use {', '.join(FORMATS)}")
    chosen = choose_columns(runs, columns)
    ordered = sort_runs(runs, sort, descending) if sort else list(runs)
    return render(ordered, chosen, fmt)


def show_runs(
    root: Path,
    project: str | None = None,
    where: Sequence[str] = (),
    columns: Sequence[str] | None = None,
    sort: str | None = None,
    descending: bool = False,
    fmt: str = "table",
    plot: Path | None = None,
) -> tuple[str, str | None]:
    """``ginpipe runs``: select, order and format; with ``plot``, also draw the listed runs
    side by side (``ginpipe/records/compare.py``). The output, and what the plot wrote (for
    the console, apart from a JSON or CSV output)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown --format {fmt!r}: use {', '.join(FORMATS)}")
    found = list_runs(root, project=project, where=where)
    out = format_runs(found, columns, sort, descending, fmt)
    if plot is not None:
        from ginpipe.records.compare import compare_runs

        ordered = sort_runs(found, sort, descending) if sort else found
        return out, compare_runs([run for run in ordered if run.damage is None], plot)
    return out, None
