"""``ginpipe ls``: what a config can name, with parameters, defaults and a doc line."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Sequence

import gin

from ginpipe.errors import ConfigError
from ginpipe.taskdef import SPEC_ATTR


def import_modules(names: Sequence[str]) -> None:
    """Import each module and, for a package, its submodules (they register configurables)."""
    from ginpipe.config import prepare_registry

    prepare_registry()
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            raise ConfigError(f"cannot import module '{name}': {e}") from e
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=f"{name}."):
            importlib.import_module(info.name)


def _signature(fn: object) -> str:
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
    """Tasks first (with reads/writes), then other configurables, grouped by module."""
    import_modules(modules)
    tasks, others = [], []
    for selector, configurable in sorted(gin.config._REGISTRY.items()):
        if selector == "gin.macro" or (filter_text and filter_text.lower() not in selector.lower()):
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
    return "\n".join(out)
