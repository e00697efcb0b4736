"""Turn factories from the config into plain ``functools.partial`` objects.

A config hands ``fit`` gin's wrappers (``@AdamW``, ``@OneCycleLR``). Those wrappers do not
pickle, and they read gin's global state at call time, which a spawned process does not
have (docs/gin-notes.md). Resolving the bindings once, in the process that parsed the
config, gives an object that means the same thing everywhere.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import gin


def importable_original(factory: Callable[..., Any]) -> Callable[..., Any]:
    """The object found at the factory's import path: for a class that gin exposes through
    ``external_configurable`` this is the undecorated class, which pickles by reference."""
    module = importlib.import_module(factory.__module__)
    found: Any = module
    for part in factory.__qualname__.split("."):
        found = getattr(found, part, None)
        if found is None:
            return factory
    return found


def gin_bindings(factory: Callable[..., Any]) -> dict[str, Any]:
    """The parameters the config binds for ``factory`` (empty if gin does not know it)."""
    try:
        return gin.get_bindings(factory)
    except ValueError:
        return {}


def plain_factory(factory: Callable[..., Any]) -> functools.partial:
    """``partial(original, **config bindings, **partial's own keywords)``.

    Bindings are resolved only for gin's wrapper (what ``@AdamW`` in a config gives); a
    plain class passed as a default stays unconfigured, as calling it would. Keywords
    already fixed by a ``functools.partial`` win over the config's bindings, as they would
    when the partial is called.
    """
    keywords: dict[str, Any] = {}
    if isinstance(factory, functools.partial):
        if factory.args:
            raise TypeError(f"factory {factory!r} fixes positional arguments; use keywords")
        keywords = dict(factory.keywords)
        factory = factory.func
    original = importable_original(factory)
    bindings = gin_bindings(original) if original is not factory else {}
    return functools.partial(original, **{**bindings, **keywords})
