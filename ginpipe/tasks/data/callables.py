"""Per-item callables (decoders, feature functions) as JSON specs, rebuilt without gin.

A decoder or feature function runs in worker processes, which may be spawned and then see
none of gin's bindings (see docs/state-keys.md). So the main process turns the configured
object into a spec, ``{"target": "package.module.Name", "kwargs": {...}}``, which the
state keys can store without pickle, and each worker rebuilds it by importing ``target``:

* an instance of a dataclass (``AudioDecoder(sample_rate=16000)``): its fields are kwargs;
* a module-level function or class (``mydecoders.read``): no kwargs;
* ``functools.partial(fn, key=value)`` with keyword arguments only;
* a function configured with gin (``@mydecoders.read`` and ``mydecoders.read.scale = 2.0``):
  the function by import path, the bound values as kwargs.

Anything else (a lambda, a nested function, an object with hidden state) cannot be rebuilt
in another process and is refused with a message saying what works.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from ginpipe import ConfigError

Spec = dict[str, Any]


def to_spec(obj: Any, what: str) -> Spec:
    """The JSON spec of ``obj``; ``what`` names the parameter in error messages."""
    if isinstance(obj, functools.partial):
        if obj.args:
            raise ConfigError(
                f"{what}: functools.partial with positional arguments cannot be rebuilt in "
                "worker processes; pass them by keyword"
            )
        spec: Spec = {"target": _import_path(obj.func, what), "kwargs": dict(obj.keywords)}
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}
        spec = {"target": _import_path(type(obj), what), "kwargs": fields, "instance": True}
    elif _gin_bindings(obj) is not None:
        # `@mydecoders.read` with `mydecoders.read.scale = 2.0`: gin's wrapper of an
        # importable function; the worker calls the function with the bound values
        spec = {"target": _import_path(obj.__wrapped__, what), "kwargs": _gin_bindings(obj)}
    elif callable(obj) and hasattr(obj, "__qualname__"):
        spec = {"target": _import_path(obj, what), "kwargs": {}}
    else:
        raise ConfigError(
            f"{what}: {type(obj).__name__} cannot be sent to worker processes; use a "
            "module-level function, a dataclass instance or functools.partial"
        )
    try:
        return json.loads(json.dumps(spec))  # tuples -> lists: the form the store gives back
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{what}: its parameters must be plain values ({error})") from error


def from_spec(spec: Mapping[str, Any]) -> Callable[..., Any]:
    """The callable a spec describes (imports its module; never reads gin)."""
    target = resolve(str(spec["target"]))
    kwargs = dict(spec.get("kwargs") or {})
    if spec.get("instance"):
        return target(**kwargs)
    return functools.partial(target, **kwargs) if kwargs else target


def spec_digest(spec: Mapping[str, Any]) -> str:
    """A stable short hash of a spec (its JSON with sorted keys)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def spec_name(spec: Mapping[str, Any]) -> str:
    """The short name users know the callable by, for messages."""
    return str(spec["target"]).rsplit(".", 1)[-1]


def resolve(path: str) -> Any:
    """Import ``package.module.Name`` (the longest importable module prefix wins)."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attribute in parts[cut:]:
                obj = getattr(obj, attribute)
        except AttributeError:
            break
        return obj
    raise ConfigError(f"cannot import '{path}'")


def _gin_bindings(obj: Any) -> dict[str, Any] | None:
    """The values gin binds for ``obj`` when it is gin's wrapper of a function, else None."""
    if not callable(obj) or getattr(obj, "__wrapped__", None) is None:
        return None
    import gin

    try:
        return dict(gin.get_bindings(obj))
    except (ValueError, KeyError, TypeError):  # not a configurable gin knows
        return None


def _import_path(obj: Any, what: str) -> str:
    """``module.qualname`` of ``obj``, checked to import back to the same object."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        raise ConfigError(
            f"{what}: {qualname or obj!r} is not importable by name from worker processes; "
            "define it at module level in an importable module"
        )
    path = f"{module}.{qualname}"
    try:
        found = resolve(path)
    except ConfigError as error:
        raise ConfigError(f"{what}: {error}") from None
    if found is not obj and getattr(found, "__wrapped__", None) is not obj:
        raise ConfigError(f"{what}: '{path}' imports as another object than the one configured")
    return path
