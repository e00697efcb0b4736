"""What a task may ask about the config: the configured form of a callable, and its bindings.

Tasks that build objects themselves (``fit`` builds the Lightning ``Trainer``) use these
instead of gin's internals. A callable the config never names is not registered with gin;
it then has no bindings, and ``configured`` returns it unchanged.
"""

from __future__ import annotations

from typing import Any

from ginpipe.config import ginapi

NOT_BOUND: Any = object()


def configured(obj: Any) -> Any:
    """``obj`` with the config's bindings applied when called (``obj`` if it has none)."""
    registration = ginapi.registration_of(obj)
    return registration.wrapper if registration is not None else obj


def selector_of(obj: Any) -> str | None:
    """The name the config knows ``obj`` by (``pytorch_lightning.Trainer``), if any."""
    registration = ginapi.registration_of(obj)
    return registration.selector if registration is not None else None


def bound_value(obj: Any, parameter: str, default: Any = NOT_BOUND) -> Any:
    """The value the config binds to ``obj``'s ``parameter`` (macros followed), else
    ``default``. References stay references: nothing is called."""
    selector = selector_of(obj)
    if selector is None:
        return default
    try:
        value = ginapi.query(f"{selector}.{parameter}")
    except ValueError:
        return default
    return ginapi.follow_macros(value)


def is_bound(obj: Any, parameter: str) -> bool:
    return bound_value(obj, parameter) is not NOT_BOUND


def bound_class(obj: Any, parameter: str) -> Any:
    """The class or function a config binds to ``obj``'s ``parameter`` by reference
    (``fit.model = @mymodels.Net`` -> ``mymodels.Net``), without calling anything; None if
    the parameter is unbound or bound to a plain value."""
    value = bound_value(obj, parameter, None)
    if not ginapi.is_reference(value) or ginapi.is_macro(value):
        return None
    configurable, _, _ = ginapi.reference_parts(value)
    return configurable.wrapped
