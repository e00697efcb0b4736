"""The search space: grid axes from ``-m "KEY=a,b,c"`` and distributions from sweep files.

A ``-m`` whose value is a comma list at the top level (outside brackets, parentheses and
quotes) is a grid axis; any other ``-m`` is a fixed override of every trial. A sweep file is
an ordinary gin file in which some bindings are distributions::

    LR = @loguniform(1e-4, 1e-1)
    ResNet.width = @choice([16, 32, 64])
    fit.batch_size = @int(32, 256)
    MLP.dropout = @uniform(0.0, 0.5)

Those lines are taken out (the rest of the file stays a config of every trial) and each
trial gets the sampled values as ``--mod`` bindings, so each is validated exactly like one.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ginpipe.base.errors import ConfigError
from ginpipe.config.compose import MOD_SOURCE
from ginpipe.config.gintext import GinSyntaxError, split_statements, split_top_level
from ginpipe.config.shipped import resolve_config

DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
_MOD_RE = re.compile(r"^\s*(?P<key>[A-Za-z_][\w./]*)\s*(?P<op>\+?=)(?P<value>.*)$", re.DOTALL)
_DISTRIBUTION_RE = re.compile(r"^@?(?P<kind>[A-Za-z_]\w*)\((?P<args>.*)\)$", re.DOTALL)


class SpaceError(ConfigError):
    """The search space is malformed (exit 2, before any trial starts)."""


@dataclass(frozen=True)
class Param:
    """One swept key: a grid axis or choice (gin value texts) or a numeric range."""

    key: str
    kind: str  # "grid" or one of DISTRIBUTIONS
    origin: str
    values: tuple[str, ...] = ()
    low: float = 0.0
    high: float = 0.0

    def first(self) -> str:
        """A value to validate the key with before any trial: the first, or the low end."""
        if self.values:
            return self.values[0]
        return str(int(self.low)) if self.kind == "int" else repr(float(self.low))

    def suggest(self, trial: Any) -> str:
        """Ask an Optuna trial for this parameter; the gin text of the value."""
        if self.kind in ("grid", "choice"):
            return str(trial.suggest_categorical(self.key, list(self.values)))
        if self.kind == "int":
            return str(trial.suggest_int(self.key, int(self.low), int(self.high)))
        log = self.kind == "loguniform"
        return repr(float(trial.suggest_float(self.key, self.low, self.high, log=log)))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["values"] = list(self.values)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Param:
        return cls(**{**data, "values": tuple(data.get("values", ()))})


def value_text(value: Any) -> str:
    """The gin text of a parameter value Optuna stored (categoricals are stored as text)."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass
class Space:
    """What every trial shares (``fixed`` mods, ``configs``) and what it varies (``params``)."""

    configs: list[str]
    fixed: list[str] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)

    @property
    def is_grid(self) -> bool:
        return bool(self.params) and all(p.kind == "grid" for p in self.params)

    def grid_size(self) -> int:
        return math.prod(len(p.values) for p in self.params if p.kind == "grid")

    def grid(self) -> dict[str, list[str]]:
        return {p.key: list(p.values) for p in self.params if p.kind == "grid"}

    def mods(self, values: dict[str, str]) -> list[str]:
        """The --mod list of a trial: fixed overrides, then the swept values."""
        return [*self.fixed, *(f"{p.key}={values[p.key]}" for p in self.params)]

    def first_mods(self) -> list[str]:
        return self.mods({p.key: p.first() for p in self.params})


def parse_mods(mods: Sequence[str]) -> tuple[list[str], list[Param]]:
    """``-m`` values -> (fixed mods, grid axes)."""
    fixed: list[str] = []
    axes: list[Param] = []
    for mod in mods:
        match = _MOD_RE.match(mod)
        if not match:
            fixed.append(mod)  # the compose check reports it with the expected form
            continue
        values = split_top_level(match.group("value"))
        if len(values) == 1:
            fixed.append(mod)
            continue
        origin = f"{MOD_SOURCE} {mod!r}"
        if match.group("op") == "+=":
            raise SpaceError(f"{origin}: a comma list cannot be appended (+=); sweep with =")
        if any(not v for v in values):
            raise SpaceError(f"{origin}: empty value in the comma list")
        if len(set(values)) != len(values):
            raise SpaceError(f"{origin}: a value is listed twice")
        axes.append(Param(match.group("key"), "grid", origin, values=tuple(values)))
    return fixed, axes


def comma_list_axis(mod: str) -> bool:
    """True when a ``--mod`` is a comma list (a sweep axis, not a single binding)."""
    match = _MOD_RE.match(mod)
    return match is not None and len(split_top_level(match.group("value"))) > 1


def parse_distribution(key: str, text: str, origin: str) -> Param | None:
    """A distribution binding's value -> Param; None when the value is no distribution."""
    match = _DISTRIBUTION_RE.match(text.strip())
    if not match or match.group("kind") not in DISTRIBUTIONS:
        return None
    kind, args = match.group("kind"), match.group("args").strip()
    if kind == "choice":
        inner = args
        if not (inner.startswith("[") and inner.endswith("]")):
            raise SpaceError(f"{origin}: choice needs a list, e.g. {key} = @choice([16, 32])")
        values = tuple(v for v in split_top_level(inner[1:-1]) if v)
        if len(values) < 2:
            raise SpaceError(f"{origin}: choice needs at least two values")
        if len(set(values)) != len(values):
            raise SpaceError(f"{origin}: a choice value is listed twice")
        return Param(key, kind, origin, values=values)
    bounds = split_top_level(args)
    try:
        low, high = (ast.literal_eval(b) for b in bounds)
    except (ValueError, SyntaxError, TypeError):
        raise SpaceError(
            f"{origin}: {kind} needs two numbers, e.g. {key} = @{kind}(1e-4, 1e-1)"
        ) from None
    if not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in (low, high)):
        raise SpaceError(f"{origin}: {kind} needs two numbers, got {args}")
    if kind == "int" and not all(isinstance(b, int) for b in (low, high)):
        raise SpaceError(f"{origin}: int needs two integers, got {args}")
    if not low < high:
        raise SpaceError(f"{origin}: {kind} needs low < high, got {args}")
    if kind == "loguniform" and low <= 0:
        raise SpaceError(f"{origin}: loguniform needs low > 0, got {args}")
    return Param(key, kind, origin, low=float(low), high=float(high))


@dataclass
class SweepFile:
    """A config file with its distribution lines taken out."""

    path: Path
    text: str
    params: list[Param]


def read_sweep_file(path: Path) -> SweepFile:
    """Find the distributions in a config file; includes made to resolve from anywhere."""
    try:
        text = path.read_text()
        statements = split_statements(text, str(path))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from e
    except GinSyntaxError as e:
        raise ConfigError(f"{path}:{e.line}: {e.message}") from e
    lines = text.splitlines()
    params = []
    for stmt in statements:
        if stmt.kind == "include":
            local = path.parent / stmt.value
            if not Path(stmt.value).is_absolute() and local.is_file():
                # the copy lives in the sweep folder: name the file this one meant
                lines[stmt.line - 1] = f"include '{local.resolve()}'"
            continue
        if stmt.kind != "other" or "=" not in stmt.text:
            continue
        key, value = (part.strip() for part in stmt.text.split("=", 1))
        param = parse_distribution(key, value, f"{path}:{stmt.line}")
        if param is None:
            continue
        params.append(param)
        for line in range(stmt.line - 1, stmt.end_line):
            lines[line] = "# swept: " + lines[line]
    return SweepFile(path, "\n".join(lines) + "\n", params)


def check_unique(params: Sequence[Param]) -> None:
    """A key swept twice (two axes, an axis and a distribution) is ambiguous: refused."""
    seen: dict[str, Param] = {}
    for param in params:
        if param.key in seen:
            raise SpaceError(
                f"{param.origin}: {param.key} is swept twice (also by {seen[param.key].origin})"
            )
        seen[param.key] = param


def build_space(configs: Sequence[str], mods: Sequence[str], copy_dir: Path | None) -> Space:
    """Parse the sweep's arguments; sweep files' remains are written into ``copy_dir``."""
    fixed, axes = parse_mods(mods)
    files: list[str] = []
    distributions: list[Param] = []
    for index, config in enumerate(configs):
        path = resolve_config(config)
        found = read_sweep_file(path)
        if not found.params:
            files.append(config)
            continue
        distributions += found.params
        if copy_dir is None:
            files.append(config)
            continue
        from ginpipe.base.atomic import atomic_write_text

        copy_dir.mkdir(parents=True, exist_ok=True)
        copy = copy_dir / f"{index}-{path.name}"
        atomic_write_text(copy, found.text)
        files.append(str(copy))
    params = [*axes, *distributions]
    check_unique(params)
    if not params:
        raise SpaceError(
            'nothing to sweep: give a comma list, e.g. -m "LR=1e-3,1e-2", or a sweep file with '
            "a distribution, e.g. LR = @loguniform(1e-4, 1e-1)"
        )
    return Space(files, fixed, params)
