"""Resolve the names a config uses, when it uses them.

A config may name any importable callable by its dotted path (``@mymodels.Net``,
``@torch.utils.data.DataLoader``, ``sklearn.svm.SVC.C = 1``) or by a short name that a
name table maps to such a path (``@AdamW`` -> ``torch.optim.AdamW``). Nothing is imported
or registered up front: the composer calls ``make_configurable`` for each name a statement
uses, just before gin reads that statement, so a config imports exactly the modules it
names.

Name tables come from the ``ginpipe.names`` entry point group: each entry point is a
``dict[str, str]`` of short name -> dotted path. ginpipe's own task library publishes its
table there (pyproject.toml), and so can any installed package.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from ginpipe.base.errors import ConfigError
from ginpipe.base.suggest import did_you_mean
from ginpipe.config import ginapi
from ginpipe.config.checks import install_hint

ENTRY_POINT_GROUP = "ginpipe.names"


@dataclass(frozen=True)
class NameTables:
    """Short names from every installed table; a name two tables disagree on is left out."""

    paths: dict[str, str]
    ambiguous: dict[str, tuple[str, ...]]


@cache
def tables() -> NameTables:
    found: dict[str, set[str]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        table = entry.load()
        for short, path in dict(table).items():
            found.setdefault(short, set()).add(path)
    paths = {short: next(iter(p)) for short, p in found.items() if len(p) == 1}
    ambiguous = {short: tuple(sorted(p)) for short, p in found.items() if len(p) > 1}
    return NameTables(paths, ambiguous)


def short_names() -> dict[str, str]:
    """Short name -> dotted path, for every unambiguous name of the installed tables."""
    return tables().paths


def known_names() -> list[str]:
    """Everything a config may name without a dotted path: registered and table names."""
    registered = [s.rpartition(".")[2] for s in ginapi.selectors()]
    return sorted({*registered, *short_names()})


def is_known(selector: str) -> bool:
    """True if ``selector`` is registered or in a table (nothing is imported)."""
    try:
        if ginapi.find(selector) is not None:
            return True
    except ValueError:
        return True  # ambiguous, but known; gin reports it where it matters
    return _table_path(selector) is not None


def make_configurable(selector: str) -> None:
    """Import and register what ``selector`` names, unless gin already knows it.

    Unknown short names are left alone: gin then reports them, with a did-you-mean.
    Raises ``ConfigError`` for a dotted path that cannot be imported or resolved.
    """
    try:
        if ginapi.find(selector) is not None:
            return
    except ValueError:
        return
    path = _table_path(selector)
    if path is None:
        if "." not in selector:
            ambiguous = tables().ambiguous.get(selector)
            if ambiguous:
                raise ConfigError(f"'{selector}' is ambiguous: write one of {', '.join(ambiguous)}")
            return
        path = selector
    obj = import_object(path)
    if ginapi.find(selector) is not None:  # importing its module registered it
        return
    if not callable(obj):
        raise ConfigError(
            f"'{selector}' is a {type(obj).__name__}, not a class or function, so it cannot "
            "be configured"
        )
    existing = ginapi.registration_of(obj)
    if existing is not None:
        raise ConfigError(
            f"'{selector}' is already configurable as '{existing.selector}': use that name"
        )
    module, _, name = path.rpartition(".")
    ginapi.register(obj, name, module)


def _table_path(selector: str) -> str | None:
    """The dotted path a short name (or a suffix of a table's path) stands for."""
    paths = short_names()
    if selector in paths:
        return paths[selector]
    short = selector.rpartition(".")[2]
    path = paths.get(short)
    if path is not None and (path == selector or path.endswith("." + selector)):
        return path
    return None


def import_object(path: str) -> Any:
    """The object at a dotted path: the longest importable module, then attributes."""
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        module = import_module(module_name, missing_ok=True)
        if module is None:
            continue
        obj: Any = module
        for depth, attribute in enumerate(parts[split:], start=split):
            if not hasattr(obj, attribute):
                owner = ".".join(parts[:depth])
                public = [n for n in dir(obj) if not n.startswith("_")]
                raise ConfigError(
                    f"'{owner}' has no attribute '{attribute}'{did_you_mean(attribute, public)}"
                )
            obj = getattr(obj, attribute)
        return obj
    hint = did_you_mean(path.rpartition(".")[2], known_names())
    raise ConfigError(f"unknown configurable '{path}': no module '{parts[0]}' to import{hint}")


def _moved_library_hint(name: str) -> str:
    """GinPipe configs import the task library as ``tasks.X``; here it is ``ginpipe.tasks.X``
    (docs/coming-from-ginpipe.md)."""
    if not name.startswith("tasks.") and name != "tasks":
        return ""
    moved = f"ginpipe.{name}"
    try:
        found = importlib.util.find_spec(moved) is not None
    except ModuleNotFoundError:
        found = False
    return f"; the standard task library is {moved} now: import {moved}" if found else ""


def import_module(name: str, *, missing_ok: bool = False) -> Any:
    """Import a module a config names; one line naming the module if that fails.

    With ``missing_ok``, a module that does not exist returns None (the caller tries a
    shorter prefix), but a module that exists and fails while importing still raises.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if missing == name or name.startswith(missing + "."):
            if missing_ok:
                return None
            raise ConfigError(
                f"cannot import module '{name}': no module named '{missing}'"
                f"{_moved_library_hint(name) or ' (is it on the path? the working directory is)'}"
            ) from e
        raise ConfigError(
            f"cannot import module '{name}': it needs '{missing}', which is not installed"
            f"{install_hint(missing)}"
        ) from e
    except Exception as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ConfigError(
            f"cannot import module '{name}': {type(e).__name__}"
            + (f": {message}" if message else "")
        ) from e
