"""Looking back: list runs, select them by config value, diff two runs, inspect the cache.

Reads only the files runs leave behind (``run.json``, ``resolved.gin``); never imports
torch or parses configs with gin, so these commands are instant.
"""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ginpipe.base.errors import ConfigError, DamagedRunError, GinpipeError
from ginpipe.base.suggest import did_you_mean
from ginpipe.base.tables import render_table
from ginpipe.config.gintext import GinSyntaxError, split_statements
from ginpipe.runs import rundir

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclass
class RunInfo:
    path: Path
    record: dict[str, Any]
    bindings: dict[str, str]
    damage: str | None = None  # why this run's own files cannot be read, if they cannot

    @property
    def status(self) -> str:
        if self.damage is not None:
            return "damaged"
        status = str(self.record.get("status", "unknown"))
        if status == "running" and not rundir.is_locked(self.path):
            return "stopped"  # its process died without saying so (kill -9, power loss)
        return status


def inspect_run(path: Path) -> RunInfo:
    """A run as its files say; a damaged file marks the run damaged instead of raising."""
    try:
        record = rundir.load_run_json(path)
        bindings = _parse_bindings(path)
    except (GinpipeError, OSError) as error:
        return RunInfo(path, {}, {}, damage=str(error))
    return RunInfo(path, record, bindings)


def read_bindings(path: Path) -> dict[str, str]:
    """``key -> value text`` of a saved resolved.gin (macros and parameters); {} when it is
    missing or damaged."""
    try:
        return _parse_bindings(path)
    except (GinpipeError, OSError):
        return {}


def _parse_bindings(path: Path) -> dict[str, str]:
    file = path / rundir.RESOLVED
    if not file.exists():
        return {}
    text = rundir.read_text_file(file)
    try:
        statements = split_statements(text, str(file))
    except GinSyntaxError as error:
        raise DamagedRunError(f"{file} is damaged ({error})") from None
    bindings = {}
    for stmt in statements:
        if stmt.kind == "other" and "=" in stmt.text:
            key, value = stmt.text.split("=", 1)
            bindings[key.strip()] = " ".join(value.split())
    return bindings


def _value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text.strip("'\"")


def _lookup(bindings: dict[str, str], key: str) -> str | None:
    """Exact key, or a binding whose key ends with ``.key`` (short vs qualified names)."""
    if key in bindings:
        return bindings[key]
    for bound, value in bindings.items():
        if bound.endswith("." + key) or key.endswith("." + bound):
            return value
    return None


def _matches(run: RunInfo, conditions: list[tuple[str, str]]) -> bool:
    for key, wanted in conditions:
        value = _lookup(run.bindings, key)
        if value is None or _value(value) != _value(wanted):
            return False
    return True


def list_runs(root: Path, project: str | None = None, where: Sequence[str] = ()) -> list[RunInfo]:
    conditions = []
    for item in where:
        if "=" not in item:
            raise ConfigError(f"malformed --where {item!r}: expected KEY=VALUE, e.g. LR=0.01")
        key, value = item.split("=", 1)
        conditions.append((key.strip(), value.strip()))
    if not root.is_dir():
        return []
    projects = [root / project] if project else sorted(p for p in root.iterdir() if p.is_dir())
    found = []
    for project_dir in projects:
        for path in sorted(project_dir.glob(f"*/{rundir.CONFIG}")):
            run = inspect_run(path.parent)
            # a damaged run is listed (as damaged) unless the listing selects by config
            if (not conditions) if run.damage else _matches(run, conditions):
                found.append(run)
    if conditions and not found:
        _check_keys_exist(projects, [key for key, _ in conditions])
    return found


def _check_keys_exist(projects: list[Path], keys: list[str]) -> None:
    """No run matched: if a --where key is bound in no run at all, it is likely a typo."""
    known: dict[str, str] = {}
    for project in projects:
        for path in project.glob(f"*/{rundir.CONFIG}"):
            known.update(read_bindings(path.parent))
    for key in keys:
        if _lookup(known, key) is None:
            raise ConfigError(f"no run has a binding '{key}'{did_you_mean(key, known)}")


def format_table(runs: list[RunInfo]) -> str:
    """``ginpipe runs``: one line per run, then why each damaged one is."""
    if not runs:
        return "no runs found"
    rows: list[tuple[str, ...]] = []
    for run in runs:
        record = run.record
        metric_name = str(record.get("main_metric", ""))
        value = _metrics(record).get(metric_name)
        metric = f"{metric_name}={value:.4f}" if isinstance(value, (int, float)) else "-"
        duration = record.get("duration_s")
        rows.append(
            (
                f"{run.path.parent.name}/{run.path.name}",
                run.status,
                str(record.get("started") or "-")[:19].replace("T", " "),
                f"{duration:.1f}s" if isinstance(duration, (int, float)) else "-",
                metric,
            )
        )
    lines = [render_table(rows, ("RUN", "STATUS", "STARTED", "DURATION", "METRIC"))]
    lines += [f"damaged: {run.damage}" for run in runs if run.damage]
    return "\n".join(lines)


def diff_runs(a: Path, b: Path) -> str:
    runs = []
    for path in (a, b):
        if not (path / rundir.CONFIG).exists():
            raise ConfigError(f"not a run directory (no {rundir.CONFIG}): {path}")
        run = inspect_run(path)
        if run.damage is not None:
            raise DamagedRunError(f"cannot diff {path}: {run.damage}")
        runs.append(run)
    ba, bb = runs[0].bindings, runs[1].bindings
    lines = [f"--- {a}", f"+++ {b}", "config:"]
    changed = False
    for key in sorted(set(ba) | set(bb)):
        if ba.get(key) != bb.get(key):
            changed = True
            lines.append(f"  {key}: {ba.get(key, '(unset)')} -> {bb.get(key, '(unset)')}")
    if not changed:
        lines.append("  (identical)")
    ma = _metrics(runs[0].record)
    mb = _metrics(runs[1].record)
    if ma or mb:
        lines.append("metrics:")
        for key in sorted(set(ma) | set(mb)):
            va, vb = ma.get(key), mb.get(key)
            delta = f"  ({vb - va:+.4f})" if isinstance(va, float) and isinstance(vb, float) else ""
            lines.append(f"  {key}: {_fmt(va)} -> {_fmt(vb)}{delta}")
    return "\n".join(lines)


def _metrics(record: dict[str, Any]) -> dict[str, Any]:
    metrics = record.get("metrics")
    return metrics if isinstance(metrics, dict) else {}


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not match:
        raise ConfigError(f"malformed duration {text!r}: use e.g. 30m, 12h, 7d")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not match:
        raise ConfigError(f"malformed size {text!r}: use e.g. 500M, 10G")
    return int(float(match.group(1)) * _SIZES[match.group(2).upper()])


def _store(root: Path) -> Any:
    from ginpipe.core.store import CACHE_DIR, ArtifactStore

    return ArtifactStore(root / CACHE_DIR)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}TiB"


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def format_cache(root: Path) -> str:
    """``ginpipe cache ls``: the entries, most recently used first, and their total size."""
    entries = _store(root).entries()
    if not entries:
        return "cache is empty"
    now = time.time()
    rows: list[tuple[str, ...]] = []
    for e in sorted(entries, key=lambda e: e.last_used, reverse=True):
        rows.append(
            (
                e.key[:12],
                e.task,
                _human(e.size),
                _age(now - e.created) + " ago",
                _age(now - e.last_used) + " ago",
            )
        )
    total = sum(e.size for e in entries)
    table = render_table(rows, ("KEY", "TASK", "SIZE", "CREATED", "LAST USED"))
    return "\n".join([table, f"{len(entries)} entries, {_human(total)}"])


def prune_cache(root: Path, older_than: str | None, max_size: str | None, dry_run: bool) -> str:
    if older_than is None and max_size is None:
        raise ConfigError("say what to prune: --older-than 7d and/or --max-size 10G")
    removed = _store(root).prune(
        older_than=parse_duration(older_than) if older_than else None,
        max_bytes=parse_size(max_size) if max_size else None,
        dry_run=dry_run,
    )
    verb = "would remove" if dry_run else "removed"
    freed = sum(e.size for e in removed)
    return f"{verb} {len(removed)} entries ({_human(freed)})"
