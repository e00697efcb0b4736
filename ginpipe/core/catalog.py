"""``ginpipe ls``: what a config can name, with parameters, defaults and a doc line.

Beside the task definitions (``taskdef.py``), whose spec tells a task from another
configurable: it reads gin's registry, not runs, so it is neither the runner's nor the
records'.
"""

from __future__ import annotations

import inspect
import pkgutil
from collections.abc import Callable, Sequence
from typing import Any

import gin

from ginpipe.base.errors import ConfigError
from ginpipe.config import ginapi, names, settings  # noqa: F401  (settings registers `run`)
from ginpipe.core.taskdef import SPEC_ATTR


def import_modules(modules: Sequence[str]) -> None:
    """Import each module and, for a package, its submodules (they register configurables)."""
    for name in modules:
        module = names.import_module(name)
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=f"{name}."):
            names.import_module(info.name)


def import_short_names(filter_text: str) -> list[str]:
    """Register the table names matching ``filter_text``; returns those that failed."""
    failed = []
    for short, path in sorted(names.short_names().items()):
        if filter_text.lower() in short.lower() or filter_text.lower() in path.lower():
            try:
                names.make_configurable(path)
            except ConfigError as e:
                failed.append(f"  {short}: {e}")
    return failed


def _signature(fn: Callable[..., Any]) -> str:
    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return "(...)"
    shown = []
    for p in params:
        if p.name in ("self", "state") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is gin.REQUIRED:
            shown.append(f"{p.name}=REQUIRED")
        elif p.default is inspect.Parameter.empty:
            shown.append(p.name)
        else:
            shown.append(f"{p.name}={p.default!r}")
    return "(" + ", ".join(shown) + ")"


def _doc_line(fn: object) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def describe(filter_text: str | None, modules: Sequence[str]) -> str:
    """Tasks first (with reads/writes), then other configurables, grouped by module.

    Without a filter, the short names a config may use are listed by module without
    importing them; with a filter, the matching ones are imported and described.
    """
    import_modules(modules)
    failed = import_short_names(filter_text) if filter_text else []
    tasks, others = [], []
    for configurable in ginapi.configurables():
        selector = configurable.selector
        if filter_text and filter_text.lower() not in selector.lower():
            continue
        spec = getattr(configurable.wrapper, SPEC_ATTR, None)
        line = f"{configurable.name}{_signature(configurable.wrapped)}"
        doc = _doc_line(configurable.wrapped)
        if spec is not None:
            flow = f"reads {list(spec.reads)} -> writes {list(spec.writes)}"
            tasks.append(f"  {line}\n      {flow}" + (f"\n      {doc}" if doc else ""))
        else:
            others.append((configurable.module or "", f"  {line}" + (f"  # {doc}" if doc else "")))
    out = ["Tasks:", *(tasks or ["  (none)"]), "", "Configurables:"]
    current = None
    for module, line in others:
        if module != current:
            out.append(f" {module}")
            current = module
        out.append(line)
    if failed:
        out += ["", "Not importable here:", *failed]
    if not filter_text:
        out += ["", "Also configurable by short name (imported when a config uses one):"]
        out += _short_names_by_module()
    return "\n".join(out)


def _short_names_by_module() -> list[str]:
    registered = set(ginapi.selectors())
    by_module: dict[str, list[str]] = {}
    for short, path in names.short_names().items():
        if path not in registered:
            module, _, _ = path.rpartition(".")
            by_module.setdefault(module, []).append(short)
    return [
        f" {module}: {', '.join(sorted(shorts))}" for module, shorts in sorted(by_module.items())
    ]
