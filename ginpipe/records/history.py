"""Looking back: list runs, select them by config value, tag or note, diff two runs (macros
resolved to values, only what changed), inspect the cache. The ``runs`` table itself is
``ginpipe/records/table.py``.

Reads only the files runs leave behind (``run.json``, ``resolved.gin``); never imports
torch or parses configs with gin, so these commands are instant.
"""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from ginpipe.base.atomic import TMP_PREFIX
from ginpipe.base.errors import ConfigError, DamagedRunError, GinpipeError
from ginpipe.base.suggest import did_you_mean
from ginpipe.base.tables import render_table
from ginpipe.config.gintext import GinSyntaxError, split_statements
from ginpipe.layout import rundir
from ginpipe.records.labels import Labels, read_labels

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclass
class RunInfo:
    path: Path
    record: dict[str, Any]
    bindings: dict[str, str]
    damage: str | None = None  # why this run's own files cannot be read, if they cannot
    labels: Labels = field(default_factory=Labels)

    @property
    def name(self) -> str:
        """``PROJECT/NAME``, as the table shows it."""
        return f"{self.path.parent.name}/{self.path.name}"

    @property
    def values(self) -> dict[str, str]:
        """The bindings with macros replaced by their values (``Trainer.max_epochs = 5``,
        not ``%EPOCHS``)."""
        return resolve_macros(self.bindings)

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
        labels = read_labels(path)
    except (GinpipeError, OSError) as error:
        return RunInfo(path, {}, {}, damage=str(error))
    return RunInfo(path, record, bindings, labels=labels)


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
            # gin writes long values on continuation lines (``run.tasks = \\``)
            bindings[key.strip()] = " ".join(value.replace("\\\n", " ").split())
    return bindings


_STRING = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_MACRO = re.compile(r"%([A-Za-z_][\w./]*)")


def resolve_macros(bindings: dict[str, str]) -> dict[str, str]:
    """Each value with ``%NAME`` replaced by the text bound to ``NAME`` (macros of macros
    too); a reference to nothing bound, and text inside quotes, stay as they are."""

    def substitute(text: str, seen: frozenset[str]) -> str:
        parts = _STRING.split(text)  # odd indices: quoted strings, left alone
        for i in range(0, len(parts), 2):
            parts[i] = _MACRO.sub(lambda m: replace(m, seen), parts[i])
        return "".join(parts)

    def replace(match: re.Match[str], seen: frozenset[str]) -> str:
        name = match.group(1)
        if name not in bindings or name in seen:
            return match.group(0)
        return substitute(bindings[name], seen | {name})

    return {key: substitute(value, frozenset({key})) for key, value in bindings.items()}


def parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text.strip("'\"")


def lookup(bindings: dict[str, str], key: str) -> str | None:
    """Exact key, or a binding whose key ends with ``.key`` (short vs qualified names)."""
    if key in bindings:
        return bindings[key]
    for bound, value in bindings.items():
        if bound.endswith("." + key) or key.endswith("." + bound):
            return value
    return None


# --where keys that select by a run's labels rather than its config (``ginpipe tag``/``note``)
TAG_KEYS = ("tag", "tags")
NOTE_KEY = "note"


def _matches(run: RunInfo, conditions: list[tuple[str, str]]) -> bool:
    for key, wanted in conditions:
        if key in TAG_KEYS:
            if wanted not in run.labels.tags:
                return False
            continue
        if key == NOTE_KEY:
            if wanted.lower() not in run.labels.note.lower():
                return False
            continue
        value = lookup(run.values, key)
        if value is None or parse_value(value) != parse_value(wanted):
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
            if path.parent.name.startswith(TMP_PREFIX):  # being removed by ginpipe rm
                continue
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
        if key not in (*TAG_KEYS, NOTE_KEY) and lookup(known, key) is None:
            raise ConfigError(f"no run has a binding '{key}'{did_you_mean(key, known)}")


def diff_runs(a: Path, b: Path) -> str:
    """What differs between two runs: config values (macros resolved), metrics, labels.
    Only what changed is printed."""
    runs = []
    for path in (a, b):
        if not (path / rundir.CONFIG).exists():
            raise ConfigError(f"not a run directory (no {rundir.CONFIG}): {path}")
        run = inspect_run(path)
        if run.damage is not None:
            raise DamagedRunError(f"cannot diff {path}: {run.damage}")
        runs.append(run)
    lines = [f"--- {a}", f"+++ {b}"]
    lines += _section("config", config_changes(runs[0], runs[1]))
    lines += _section(
        "metrics", metric_changes(metrics_of(runs[0].record), metrics_of(runs[1].record))
    )
    la, lb = runs[0].labels, runs[1].labels
    labels = []
    if la.tags != lb.tags:
        before, after = ", ".join(la.tags) or "(none)", ", ".join(lb.tags) or "(none)"
        labels.append(f"  tags: {before} -> {after}")
    if la.note != lb.note:
        labels.append(f"  note: {la.note or '(none)'!r} -> {lb.note or '(none)'!r}")
    if labels:
        lines += ["labels:", *labels]
    return "\n".join(lines)


def _section(title: str, changes: list[str]) -> list[str]:
    return [f"{title}:", *(changes or ["  (identical)"])]


def config_changes(a: RunInfo, b: RunInfo) -> list[str]:
    """``key: old -> new`` for each binding whose value differs once macros are resolved."""
    va, vb = a.values, b.values
    return [
        f"  {key}: {va.get(key, '(unset)')} -> {vb.get(key, '(unset)')}"
        for key in sorted(set(va) | set(vb))
        if key not in va or key not in vb or parse_value(va[key]) != parse_value(vb[key])
    ]


def metric_changes(ma: dict[str, Any], mb: dict[str, Any]) -> list[str]:
    """``name: old -> new (delta)`` for each metric that changed (or exists in one run)."""
    lines = []
    for key in sorted(set(ma) | set(mb)):
        va, vb = ma.get(key), mb.get(key)
        if va == vb:
            continue
        if _is_number(va) and _is_number(vb) and f"{va:.4f}" == f"{vb:.4f}":
            # a change below the shown precision is still a change: shown in full
            lines.append(f"  {key}: {va!r} -> {vb!r}  ({vb - va:+.3g})")
            continue
        delta = f"  ({vb - va:+.4f})" if _is_number(va) and _is_number(vb) else ""
        lines.append(f"  {key}: {_fmt(va)} -> {_fmt(vb)}{delta}")
    return lines


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metrics_of(record: dict[str, Any]) -> dict[str, Any]:
    metrics = record.get("metrics")
    return metrics if isinstance(metrics, dict) else {}


def _fmt(value: Any) -> str:
    if value is None:
        return "(none)"
    return f"{value:.4f}" if _is_number(value) else str(value)


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
