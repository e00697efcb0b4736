"""What a run directory tells an experiment tracker: where it lives, its bindings, its tags,
its training log and the files worth keeping.

Trackers (``ginpipe/tasks/tracking.py``, ``ginpipe/tasks/tracking_tensorboard.py``) read
the files the runner writes (``resolved.gin``, ``run.json``, ``logs/metrics.csv``) rather
than the engine's objects: the task library reaches the engine only through ``ginpipe``'s
public names (docs/architecture.md), and the files are what a run is anyway.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ginpipe

RESOLVED = "resolved.gin"
RECORD = "run.json"
# A folder of runs (a sweep: ROOT/PROJECT/SWEEP/NAME) holds this file (ginpipe/runs/rundir.py).
GROUP_FILE = "sweep.json"
TRAINING_LOG = Path("logs") / "metrics.csv"
# Files of a finished run kept with its tracked record, in this order; folders keep their tree.
ARTIFACT_FILES = ("config.gin", "operative.gin", "metrics.json", "predictions.csv")
ARTIFACT_DIRS = ("plots",)
BUNDLE_DIR = "model"
# A quoted string literal of gin (Python syntax), escapes included.
STRING = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"")
# Columns of the training log that are positions, not metrics.
LOG_POSITIONS = ("epoch", "step")


@dataclass(frozen=True)
class RunPlace:
    """A run directory's place: ``ROOT/PROJECT/NAME`` or ``ROOT/PROJECT/SWEEP/NAME``."""

    dir: Path
    name: str
    project: str
    root: Path
    sweep: Path | None

    @property
    def project_dir(self) -> Path:
        return self.root / self.project


def place_of(run_dir: Path) -> RunPlace:
    """Where ``run_dir`` sits among the runs of its root (absolute paths)."""
    path = Path(run_dir).absolute()
    if (path.parent / GROUP_FILE).is_file():
        return RunPlace(
            path, path.name, path.parent.parent.name, path.parent.parent.parent, path.parent
        )
    return RunPlace(path, path.name, path.parent.name, path.parent.parent, None)


def read_record(run_dir: Path) -> dict[str, Any]:
    """``run.json`` as it is now; {} when it is missing or unreadable."""
    try:
        record = json.loads((Path(run_dir) / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def resolved_bindings(run_dir: Path) -> dict[str, str]:
    """Every binding of ``resolved.gin`` as ``key -> value text``, macros included and
    ``%MACRO`` references replaced by the macro's value (``AdamW.lr -> 0.01``)."""
    path = Path(run_dir) / RESOLVED
    if not path.is_file():
        return {}
    bindings: dict[str, str] = {}
    for statement in _statements(path.read_text()):
        key, _, value = statement.partition("=")
        if key.strip() and value.strip():
            bindings[key.strip()] = " ".join(value.split())
    return {key: _resolve(value, bindings) for key, value in bindings.items()}


def _statements(text: str) -> list[str]:
    """gin statements of a file gin wrote: comments dropped, continued lines joined (a line
    ending in ``\\``, or brackets still open)."""
    statements, current, depth = [], "", 0
    for raw in text.splitlines():
        line = raw.split("#", 1)[0] if raw.lstrip().startswith("#") else raw
        if not line.strip() and not current:
            continue
        line = line.rstrip()
        continued = line.endswith("\\")
        current += " " + line.rstrip("\\")
        code = STRING.sub("", line)  # brackets inside quotes open nothing
        depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
        if not continued and depth <= 0:
            statements.append(current.strip())
            current, depth = "", 0
    if current.strip():
        statements.append(current.strip())
    return [s for s in statements if "=" in s and not s.startswith(("import ", "include "))]


def _resolve(value: str, bindings: dict[str, str]) -> str:
    """``%LR`` -> the value of ``LR`` (followed a few levels, a macro may name a macro)."""
    for _ in range(8):
        if not value.startswith("%") or value[1:] not in bindings:
            return value
        value = bindings[value[1:]]
    return value


def run_tags(place: RunPlace, record: dict[str, Any]) -> dict[str, str]:
    """Tags naming where a run lives and what code made it."""
    tags = {
        "ginpipe.run_dir": str(place.dir),
        "ginpipe.version": ginpipe.__version__,
        "ginpipe.main_metric": str(record.get("main_metric") or ""),
    }
    git = record.get("git")
    if isinstance(git, dict):
        tags["git.commit"] = str(git.get("commit") or "")
        tags["git.dirty"] = str(bool(git.get("dirty"))).lower()
        tags["git.branch"] = str(git.get("branch") or "")
    if place.sweep is not None:
        tags["ginpipe.sweep"] = place.sweep.name
        tags["ginpipe.trial"] = place.name
    return {key: value for key, value in tags.items() if value}


def final_metrics(run_dir: Path, outcome: dict[str, Any]) -> dict[str, float]:
    """The numbers a run reported (``run.json``'s metrics, per-class entries of
    ``metrics.json`` too); not-a-number and infinite values are left out."""
    metrics: dict[str, Any] = dict(outcome.get("metrics") or {})
    path = Path(run_dir) / "metrics.json"
    if metrics and path.is_file():
        with contextlib.suppress(ValueError):
            metrics = {**json.loads(path.read_text()), **metrics}
    return {
        key: float(value)
        for key, value in metrics.items()
        if isinstance(value, (int, float)) and math.isfinite(value)
    }


def training_history(run_dir: Path) -> list[tuple[int, dict[str, float]]]:
    """``(step, {metric: value})`` for each row of ``logs/metrics.csv`` (the log fit keeps
    for every run, also one whose fit was read from the cache); ``epoch`` is a metric too."""
    path = Path(run_dir) / TRAINING_LOG
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            step = _number(row.get("step"))
            values = {
                k: v for k, v in ((k, _number(x)) for k, x in row.items() if k) if v is not None
            }
            values.pop("step", None)
            if step is not None and set(values) - set(LOG_POSITIONS):
                rows.append((int(step), values))
    return rows


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def artifact_paths(run_dir: Path) -> list[tuple[Path, str]]:
    """``(file, folder in the tracked record)`` for the files worth keeping that exist."""
    run_dir = Path(run_dir)
    found = [(run_dir / name, "") for name in ARTIFACT_FILES if (run_dir / name).is_file()]
    for folder in ARTIFACT_DIRS:
        base = run_dir / folder
        if base.is_dir():
            found += [
                (path, str(path.parent.relative_to(run_dir)))
                for path in sorted(base.rglob("*"))
                if path.is_file() and not path.is_symlink()
            ]
    return found


def has_bundle(run_dir: Path) -> bool:
    return (Path(run_dir) / BUNDLE_DIR / "model.json").is_file()
