"""Every use of gin-config's private state, in one place.

gin 0.5.0 has no public way to list its registry, read raw bindings without calling
``@X()`` references, follow a macro, or keep registration open after ``finalize``; the
rest of ginpipe asks this module instead of reaching into ``gin.config`` itself, so a gin
upgrade touches one file. docs/gin-notes.md explains each trap worked around here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import gin
from gin import config as _gin
from gin import config_parser as _parser

MACRO = "gin.macro"

if TYPE_CHECKING:  # gin ships no type information: what ginpipe reads of its two classes

    class Configurable(Protocol):
        """``gin.config.Configurable``, a NamedTuple: one registration."""

        @property
        def wrapper(self) -> Callable[..., Any]: ...
        @property
        def wrapped(self) -> Callable[..., Any]: ...
        @property
        def name(self) -> str: ...
        @property
        def module(self) -> str: ...
        @property
        def selector(self) -> str: ...

    class Reference(Protocol):
        """``gin.config.ConfigurableReference``: ``@scope/name`` or ``@scope/name()``."""

        _configurable: Configurable
        _scopes: list[str]
        _evaluate: bool

else:
    Configurable = _gin.Configurable
    Reference = _gin.ConfigurableReference


# -- the registry -------------------------------------------------------------------------


def find(selector: str) -> Configurable | None:
    """The configurable a (possibly partial) selector names, or None.

    Raises ``ValueError`` when the selector is ambiguous (two modules register the name).
    """
    try:
        return _gin._REGISTRY.get_match(selector)
    except KeyError as e:  # gin's selector map says "ambiguous" with a KeyError
        raise ValueError(str(e).strip("'\"")) from None


def configurables() -> list[Configurable]:
    """Every registered configurable except gin's macro helper, sorted by selector."""
    return [c for s, c in sorted(_gin._REGISTRY.items()) if s != MACRO]


def selectors() -> list[str]:
    return [c.selector for c in configurables()]


def registration_of(obj: Any) -> Configurable | None:
    """The registration of a class or function (or its gin wrapper), if it has one."""
    try:
        found = _gin._inverse_lookup(obj)
    except TypeError:  # unhashable objects are never registered
        return None
    if found is None:  # the subclass gin makes for an external class is only a wrapper
        found = next((c for _, c in _gin._REGISTRY.items() if c.wrapper is obj), None)
    return found


def register(obj: Any, name: str, module: str) -> Any:
    """Make a third-party callable configurable as ``module.name`` without decorating it.

    Works while the config is locked too: modules that tasks import late may register.
    """
    with gin.unlock_config():
        return gin.external_configurable(obj, name=name, module=module)


def unlock() -> None:
    """Keep registration open after ``finalize`` (which locks the config).

    Bindings never change after composing; registration must stay possible because
    tasks import modules that register configurables after the config is final.
    """
    _gin._set_config_is_locked(False)


# -- bindings --------------------------------------------------------------------------------


def bindings() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(scope, selector, {parameter: raw value})`` for every bound configurable.

    Raw means references stay references: nothing is called (``gin.get_bindings``
    would call ``@X()`` values).
    """
    for (scope, selector), values in _gin._CONFIG.items():
        yield scope, selector, values


def bound_values(selector: str, scopes: set[str]) -> Iterator[tuple[str, str, Any]]:
    """``(scope, parameter, raw value)`` bound to ``selector`` in any of ``scopes``."""
    for scope, bound, values in bindings():
        if bound == selector and scope in scopes:
            for name, value in values.items():
                yield scope, name, value


def is_bound(selector: str, parameter: str, scopes: set[str]) -> bool:
    return any(name == parameter for _, name, _ in bound_values(selector, scopes))


def macro_names() -> list[str]:
    return [scope for scope, selector, _ in bindings() if selector == MACRO]


def macro_value(name: str) -> Any:
    """The raw value bound to macro ``name`` (None when unbound)."""
    return _gin._CONFIG.get((name, MACRO), {}).get("value")


def bind(key: str | tuple[str, str, str], value: Any) -> None:
    gin.bind_parameter(key, value)


def bind_macro(name: str, value: Any) -> None:
    gin.bind_parameter((name, MACRO, "value"), value)


def query(key: str) -> Any:
    """The raw value bound to ``key``; ``ValueError`` when nothing is bound."""
    return gin.query_parameter(key)


def parse_value(text: str) -> Any:
    return gin.config.parse_value(text)


# -- references ----------------------------------------------------------------------------


def is_reference(value: Any) -> bool:
    return isinstance(value, _gin.ConfigurableReference)


def is_macro(value: Any) -> bool:
    return is_reference(value) and value._configurable.selector == MACRO


def is_required(value: Any) -> bool:
    """``%gin.REQUIRED``: a value the config must still set."""
    return value is gin.REQUIRED


def macro_name(ref: Reference) -> str:
    return "/".join(ref._scopes)


def reference_parts(ref: Reference) -> tuple[Configurable, str, bool]:
    """``(configurable, scope, called)`` of ``@scope/name`` or ``@scope/name()``."""
    return ref._configurable, "/".join(ref._scopes), bool(ref._evaluate)


def follow_macros(value: Any) -> Any:
    """``%MACRO`` -> its value (macros may point at macros)."""
    seen: set[str] = set()
    while is_macro(value):
        name = "/".join(value._scopes)
        if name in seen:
            return None  # a cycle; the composer reports it
        seen.add(name)
        value = macro_value(name)
    return value


def referenced_macros() -> set[str]:
    """Macros the bindings use, directly or through other macros (macro definitions that
    nothing uses are not counted)."""
    found: set[str] = set()
    pending: list[Any] = [values for _, selector, values in bindings() if selector != MACRO]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, (list, tuple, set)):
            pending.extend(value)
        elif is_macro(value):
            name = "/".join(value._scopes)
            if name not in found:
                found.add(name)
                pending.append(macro_value(name))
    return found


def referenced_selectors(
    roots: list[Any], skip: Mapping[str, Collection[str]] | None = None
) -> set[str]:
    """Selectors reachable from ``roots`` (values) through references, macros followed, and
    through the bindings of every configurable reached.

    ``skip``: parameters not followed, by configurable name (``{"fit": {"optimizer"}}``:
    parameters a task said it did not use).
    """
    skip = skip or {}
    found: set[str] = set()
    pending = list(roots)
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, (list, tuple, set)):
            pending.extend(value)
        elif is_macro(value):
            pending.append(macro_value("/".join(value._scopes)))
        elif is_reference(value):
            selector = value._configurable.selector
            if selector not in found:
                found.add(selector)
                skipped = skip.get(selector.rpartition(".")[2], ())
                pending.extend(
                    v
                    for _, s, vs in bindings()
                    if s == selector
                    for name, v in vs.items()
                    if name not in skipped
                )
    return found


def macro_chain(name: str) -> list[str]:
    """Macro names visited from ``name`` until a non-macro value or a repeat."""
    chain = [name]
    value = macro_value(name)
    while is_macro(value):
        nxt = "/".join(value._scopes)
        chain.append(nxt)
        if nxt in chain[:-1]:
            break
        value = macro_value(nxt)
    return chain


# -- syntax ------------------------------------------------------------------------------------


class _SyntaxOnly(_parser.ParserDelegate):
    """Parses values without looking anything up: references and macros become None."""

    def configurable_reference(self, scoped_name: str, evaluate: bool) -> None:
        return None

    def macro(self, scoped_name: str) -> None:
        return None


def check_syntax(text: str) -> None:
    """Raise ``SyntaxError`` for text gin cannot parse, without importing or resolving
    anything it names."""
    for _ in _parser.ConfigParser(text, _SyntaxOnly()):
        pass


# -- strings -------------------------------------------------------------------------------


def config_text() -> str:
    """Every binding, canonical and re-parseable."""
    return gin.config_str()


def operative_text() -> str:
    """The bindings calls actually used so far, defaults included."""
    return gin.operative_config_str()


def unwrap_call_error(error: BaseException) -> BaseException:
    """The exception a configurable really raised.

    gin re-raises an error from inside a configurable as a proxy of a dynamic subclass whose
    message gains ``In call to configurable 'fit' (<function fit at 0x...>)``
    (docs/gin-notes.md, trap 3); the original is the proxy's context. Reports use the
    original: one line, the task's own words, no memory address.
    """
    code = getattr(getattr(type(error), "__init__", None), "__code__", None)
    from_gin = code is not None and Path(code.co_filename).parts[-2:] == ("gin", "utils.py")
    if from_gin and error.__context__ is not None:
        return unwrap_call_error(error.__context__)
    return error
