"""Bound values checked before any task runs: type hints, constraints, missing modules.

Three things a config can get wrong that would otherwise surface only when a task calls
the configurable, after the data steps:

* a value of the wrong type (``Trainer.max_epochs = 'abc'``): checked against the type
  hints of the configurable's signature. Unknown or unresolvable hints are skipped, and a
  hint is read the way the callee reads it at run time (an int is fine for a float, a
  string for a path); when in doubt a value passes.
* a value the callee refuses (``fit.batch_size = 0``): constraints in the signature
  (``batch_size: Annotated[int, Positive]``) or registered for a callable one does not own
  (``constrain(pl.Trainer, max_epochs=AtLeast(-1))``).
* a callable whose use needs a module that is not installed (``TensorBoardLogger`` without
  ``tensorboard``): registered with ``requires(obj, "tensorboard")``; the error names the
  extra that installs it when ginpipe has one.

Registrations are made by the modules that define or use the callables, when a config
imports them; nothing here imports a library. The two tables they fill are lookup tables of
the code, not of a run: like gin's own registry, an entry is written once when its module is
imported and read by every config after it, and no run, test or command changes one.
"""

from __future__ import annotations

import collections.abc
import enum
import importlib.util
import inspect
import os
import re
import sys
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import PurePath
from typing import Any

from ginpipe.base.errors import ConfigError
from ginpipe.base.install import DISTRIBUTION, install_line
from ginpipe.base.suggest import did_you_mean
from ginpipe.config import ginapi

__all__ = [
    "AtLeast",
    "Constraint",
    "GreaterThan",
    "NonNegative",
    "Positive",
    "constrain",
    "requires",
]


# -- constraints ---------------------------------------------------------------------------


class Constraint:
    """A rule a value of the right type must also follow; ``problem`` says how it fails."""

    def problem(self, value: Any) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class AtLeast(Constraint):
    """``value >= minimum``; ``note`` explains a special value (``-1: no limit``)."""

    minimum: float
    note: str = ""

    def problem(self, value: Any) -> str | None:
        if _is_number(value) and value < self.minimum:
            return f"must be >= {self.minimum}" + (f" ({self.note})" if self.note else "")
        return None


@dataclass(frozen=True)
class GreaterThan(Constraint):
    """``value > bound``."""

    bound: float

    def problem(self, value: Any) -> str | None:
        if _is_number(value) and value <= self.bound:
            return f"must be > {self.bound}"
        return None


Positive = GreaterThan(0)
NonNegative = AtLeast(0)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- registrations ---------------------------------------------------------------------------

_CONSTRAINTS: dict[Any, dict[str, tuple[Constraint, ...]]] = {}
_REQUIREMENTS: dict[Any, tuple[str, ...]] = {}


def constrain(obj: Any, **constraints: Constraint | Sequence[Constraint]) -> Any:
    """Constraints on parameters of ``obj`` (a class or function one does not own):

        constrain(pl.Trainer, max_epochs=AtLeast(-1, "-1: no limit"))

    A config binding a value that breaks one is refused before any task runs. Returns
    ``obj``. For one's own functions, ``Annotated[int, Positive]`` in the signature does
    the same."""
    own = _CONSTRAINTS.setdefault(obj, {})
    for name, rules in constraints.items():
        own[name] = (rules,) if isinstance(rules, Constraint) else tuple(rules)
    return obj


def requires(obj: Any, *modules: str) -> Any:
    """Using ``obj`` needs one of ``modules`` installed: a config that uses it without them
    is refused before any task runs, naming the extra to install. Returns ``obj`` (usable
    as ``requires(fn, "mlflow")`` after a definition)."""
    if not modules:
        raise ValueError("requires() needs at least one module name")
    _REQUIREMENTS[obj] = tuple(modules)
    return obj


def constraints_of(configurable: Any) -> dict[str, tuple[Constraint, ...]]:
    """Constraints registered for a configurable (as itself or as its gin wrapper)."""
    return _registered(_CONSTRAINTS, configurable) or {}


def requirement_of(configurable: Any) -> tuple[str, ...]:
    return _registered(_REQUIREMENTS, configurable) or ()


def _registered(table: dict[Any, Any], configurable: Any) -> Any:
    for obj in (configurable.wrapped, configurable.wrapper):
        try:
            if obj in table:
                return table[obj]
        except TypeError:  # unhashable
            continue
    return None


# -- missing modules -------------------------------------------------------------------------


def install_hint(module: str) -> str:
    """`` (pip install "ginpipe-ml[extra]")`` when an extra of ginpipe installs ``module``;
    otherwise `` (pip install dist)``."""
    top = module.partition(".")[0]
    extra = _extras().get(_normalize(top))
    if extra:
        return f" ({install_line(extra)})"
    return f" (pip install {top})"


@cache
def _extras() -> dict[str, str]:
    """Distribution name -> the ginpipe extra that installs it (not ``dev``)."""
    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return {}
    found: dict[str, str] = {}
    for line in requirements:
        match = re.match(r"^\s*([A-Za-z0-9._-]+).*;\s*extra\s*==\s*['\"]([^'\"]+)['\"]", line)
        if match and match.group(2) != "dev":
            found.setdefault(_normalize(match.group(1)), match.group(2))
    return found


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def is_installed(module: str) -> bool:
    if module in sys.modules:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_requirements(selectors: Iterable[str], sources: Sequence[Any]) -> None:
    """Refuse a configurable the run uses whose required modules are all missing."""
    for selector in sorted(selectors):
        configurable = _find(selector)
        if configurable is None:
            continue
        modules = requirement_of(configurable)
        if not modules or any(is_installed(m) for m in modules):
            continue
        name = selector.rpartition(".")[2]
        needed = " or ".join(f"'{m}'" for m in modules)
        where = _where_named(sources, name)
        raise ConfigError(
            f"{where}{name} needs {needed}, which is not installed{install_hint(modules[0])}"
        )


# -- type hints ------------------------------------------------------------------------------


class _Unrelated:
    """A literal value against a class that no literal is (``Tensor``): unknown on its own,
    a mismatch in a union that also lists the literal types it accepts."""


UNRELATED: Any = _Unrelated()
# str values are often accepted by classes that parse them (paths, devices, dtypes, enums).
_PARSES_STRINGS = ("device", "dtype")
_SCALARS = (bool, int, float, complex, str, bytes)


@dataclass(frozen=True)
class Parameter:
    hint: Any
    default: Any


@cache
def parameters(fn: Any) -> dict[str, Parameter]:
    """Each keyword parameter of ``fn`` (a class: its ``__init__``) with a resolved type
    hint; parameters whose hint cannot be resolved are left out."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    if target is object.__init__:
        return {}
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return {}
    hints = _hints(fn, target)
    found = {}
    for name, param in signature.parameters.items():
        if name in hints and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            found[name] = Parameter(hints[name], param.default)
    return found


def _hints(fn: Any, target: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:
        pass
    # One unresolvable annotation (a name imported only for type checkers) must not hide
    # the others: resolve them one by one.
    raw = getattr(inspect.unwrap(target), "__annotations__", None) or {}
    if not raw and inspect.isclass(fn):
        raw = getattr(fn, "__annotations__", {})  # dataclass-like classes
    namespace = getattr(inspect.unwrap(target), "__globals__", None)
    if namespace is None:
        module = sys.modules.get(getattr(fn, "__module__", ""), None)
        namespace = vars(module) if module else {}
    hints = {}
    for name, annotation in raw.items():
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, dict(namespace))  # an annotation, as typing does
            except Exception:
                continue
        hints[name] = annotation
    return hints


def problem(value: Any, hint: Any) -> str | None:
    """Why ``value`` does not fit ``hint`` (``expected int or None``), or None if it fits
    or nobody can tell."""
    verdict = _verdict(value, hint)
    if isinstance(verdict, str):
        return verdict
    if verdict is False:
        return f"expected {describe(hint)}{_closest_literal(value, hint)}"
    return None


def _closest_literal(value: Any, hint: Any) -> str:
    """`` (did you mean 'max'?)`` for a string near one a ``Literal`` in ``hint`` allows: a
    typo in a choice (``split_dataset.method = 'stratifed'``) gets the right spelling."""
    if not isinstance(value, str):
        return ""
    return did_you_mean(value, [a for a in _literals(hint) if isinstance(a, str)])


def _literals(hint: Any) -> list[Any]:
    """The values the ``Literal`` parts of ``hint`` allow (through ``Annotated`` and unions)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _literals(args[0])
    if origin is typing.Union or isinstance(hint, types.UnionType):
        return [allowed for member in args for allowed in _literals(member)]
    if origin is typing.Literal:
        return list(args)
    return []


def _verdict(value: Any, hint: Any) -> bool | str | _Unrelated | None:
    """True: fits; False: does not; a string: the type fits, a constraint does not; None:
    cannot tell; UNRELATED: see ``_Unrelated``."""
    if ginapi.is_macro(value):
        value = ginapi.follow_macros(value)
    if ginapi.is_reference(value) or ginapi.is_required(value):
        return None
    if hint is Any or hint is object or isinstance(hint, (str, typing.ForwardRef)):
        return None
    if isinstance(hint, typing.TypeVar):
        return None
    supertype = getattr(hint, "__supertype__", None)  # NewType
    if supertype is not None:
        return _verdict(value, supertype)
    alias_value = getattr(hint, "__value__", None)  # 3.12 `type X = ...`
    if alias_value is not None and type(hint).__name__ == "TypeAliasType":
        return _verdict(value, alias_value)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        base = _verdict(value, args[0])
        if base is not True:
            return base
        for rule in args[1:]:
            if isinstance(rule, Constraint):
                found = rule.problem(value)
                if found:
                    return found
        return True
    if origin is typing.Union or isinstance(hint, types.UnionType):
        return _union(value, args)
    if origin is typing.Literal:
        return any(_same_literal(value, a) for a in args)
    if hint is None or hint is type(None):
        return value is None
    if value is None:
        return False if (origin or hint) in _SCALARS else UNRELATED
    if origin is not None:
        return _generic(value, origin, args)
    if inspect.isclass(hint):
        return _class(value, hint)
    return None


def _union(value: Any, members: tuple[Any, ...]) -> bool | str | _Unrelated | None:
    verdicts = [_verdict(value, m) for m in members]
    if True in verdicts:
        return True
    for verdict in verdicts:
        if isinstance(verdict, str):
            return verdict
    if None in verdicts:
        return None
    lists_literals = any(m in _SCALARS or typing.get_origin(m) is typing.Literal for m in members)
    if any(v is UNRELATED for v in verdicts):
        # `lr: float | Tensor`: the literal types it takes are listed; 'abc' is not one.
        return False if lists_literals or value is None else None
    return False


def _same_literal(value: Any, allowed: Any) -> bool:
    if isinstance(allowed, enum.Enum):
        return value == allowed or value == allowed.value
    return value == allowed and isinstance(value, bool) == isinstance(allowed, bool)


def _generic(value: Any, origin: Any, args: tuple[Any, ...]) -> bool | str | _Unrelated | None:
    if origin is type or origin is collections.abc.Callable:
        return UNRELATED
    if not inspect.isclass(origin):
        return None
    if issubclass(origin, collections.abc.Mapping):
        if not isinstance(value, dict):
            return False
        if len(args) != 2:
            return True
        keys = [_verdict(k, args[0]) for k in value]
        return _all(keys + [_verdict(v, args[1]) for v in value.values()])
    if issubclass(origin, tuple) and isinstance(value, (list, tuple)):
        if len(args) == 2 and args[1] is Ellipsis:
            return _all([_verdict(v, args[0]) for v in value])
        if args and args != ((),):
            if len(args) != len(value):
                return False
            return _all([_verdict(v, a) for v, a in zip(value, args, strict=True)])
        return True
    if issubclass(origin, collections.abc.Iterable):
        if isinstance(value, str):
            # A str is a Sequence[str] to the type system; leave that to the callee.
            return False if issubclass(origin, (list, tuple, set, frozenset)) else None
        if not isinstance(value, (list, tuple, set, frozenset)):
            return False if _is_literal(value) else None
        if len(args) != 1:
            return True
        return _all([_verdict(v, args[0]) for v in value])
    return _class(value, origin)


def _all(verdicts: list[Any]) -> bool | str | None:
    for verdict in verdicts:
        if verdict is False or isinstance(verdict, str):
            return verdict
    if any(v is None or v is UNRELATED for v in verdicts):
        return None
    return True


def _is_literal(value: Any) -> bool:
    return value is None or isinstance(value, (*_SCALARS, list, tuple, dict))


def _class(value: Any, cls: type) -> bool | _Unrelated | None:
    if cls is float:
        return isinstance(value, (int, float))
    if cls is complex:
        return isinstance(value, (int, float, complex))
    if cls is bool:
        return isinstance(value, (bool, int)) and not isinstance(value, str)
    if cls in (list, tuple, set, frozenset):
        return isinstance(value, (list, tuple, set, frozenset))
    try:
        if isinstance(value, cls):
            return True
    except TypeError:  # protocols that are not runtime-checkable, odd metaclasses
        return None
    if cls in _SCALARS or cls is dict:
        return False
    try:
        parses = issubclass(cls, (PurePath, os.PathLike, enum.Enum))
    except TypeError:
        return None
    if parses or (isinstance(value, str) and cls.__name__ in _PARSES_STRINGS):
        return None  # a path, an enum (by name or value), a torch device or dtype
    return UNRELATED if _is_literal(value) else None


def describe(hint: Any) -> str:
    """A hint as a user reads it: ``int or None``, ``one of 'min', 'max'``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return describe(args[0])
    if origin is typing.Union or isinstance(hint, types.UnionType):
        literals = [a for m in args if typing.get_origin(m) is typing.Literal for a in m.__args__]
        parts: list[str] = []
        for member in args:
            if typing.get_origin(member) is typing.Literal:
                continue
            text = describe(member)
            if text not in parts:
                parts.append(text)
        if literals:
            parts.insert(0, describe(typing.Literal[tuple(literals)]))
        none = [p for p in parts if p == "None"]
        return " or ".join([p for p in parts if p != "None"] + none)
    if origin is typing.Literal:
        if len(args) == 1:
            return repr(args[0])
        return "one of " + ", ".join(repr(a) for a in args)
    if hint is None or hint is type(None):
        return "None"
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        inner = ", ".join("..." if a is Ellipsis else describe(a) for a in args)
        return f"{name}[{inner}]" if args else name
    if inspect.isclass(hint):
        return hint.__name__
    return str(hint).replace("typing.", "")


# -- the check over a composed config ------------------------------------------------------


def check_values(sources: Sequence[Any]) -> None:
    """Every bound value against its parameter's hint and constraints; the first that
    does not fit is a ``ConfigError`` naming the binding, the value, what was expected
    and where it was set."""
    for scope, selector, values in list(ginapi.bindings()):
        if selector == ginapi.MACRO:
            continue
        configurable = _find(selector)
        if configurable is None:
            continue
        fn = configurable.wrapped
        params = parameters(fn)
        rules = constraints_of(configurable)
        for name, raw in values.items():
            value, macro = _resolve(raw)
            if value is None and macro is None and raw is not None:
                continue
            if ginapi.is_reference(value) or ginapi.is_required(value):
                continue
            found = None
            param = params.get(name)
            if param is not None and not (value is None and param.default is None):
                found = problem(value, param.hint)
            if found is None:
                for rule in rules.get(name, ()):
                    found = rule.problem(value)
                    if found:
                        break
            if found:
                raise ConfigError(_message(sources, scope, selector, name, value, macro, found))


def _resolve(raw: Any) -> tuple[Any, str | None]:
    """A bound value with macros followed, and the last macro's name (None if direct)."""
    macro = None
    seen: set[str] = set()
    value = raw
    while ginapi.is_macro(value):
        name = ginapi.macro_name(value)
        if name in seen:
            return None, None
        seen.add(name)
        macro = name
        value = ginapi.macro_value(name)
    return value, macro


def _message(
    sources: Sequence[Any],
    scope: str,
    selector: str,
    param: str,
    value: Any,
    macro: str | None,
    found: str,
) -> str:
    source = _binding_source(sources, scope, selector, param)
    short = selector.rpartition(".")[2]
    key = source.statement.target if source is not None else f"{short}.{param}"
    if scope and source is None:
        key = f"{scope}/{key}"
    if macro is not None:
        definition = _macro_source(sources, macro)
        where = f"{definition.where}: " if definition is not None else ""
        return f"{where}{key}=%{macro}={value!r}: {found}"
    where = f"{source.where}: " if source is not None else ""
    return f"{where}{key}={value!r}: {found}"


def _find(selector: str) -> Any:
    try:
        return ginapi.find(selector)
    except ValueError:
        return None


def _binding_source(sources: Sequence[Any], scope: str, selector: str, param: str) -> Any:
    """The last statement binding ``scope/selector.param`` (it is the one that counts)."""
    for source in reversed(sources):
        stmt = source.statement
        if stmt.kind not in ("other", "append") or not stmt.configurable:
            continue
        if stmt.target.rpartition(".")[2] != param:
            continue
        own_scope = stmt.target.rpartition("/")[0] if "/" in stmt.target else ""
        if own_scope != scope:
            continue
        found = _find(stmt.configurable)
        if found is not None and found.selector == selector:
            return source
    return None


def binding_source(sources: Sequence[Any], key: str) -> Any:
    """The statement that sets ``key`` (``fit.monitor``), or None."""
    scope, _, rest = key.rpartition("/")
    selector, _, param = rest.rpartition(".")
    found = _find(selector)
    if found is None:
        return None
    return _binding_source(sources, scope, found.selector, param)


def _macro_source(sources: Sequence[Any], name: str) -> Any:
    for source in reversed(sources):
        if source.statement.kind == "other" and source.statement.target == name:
            return source
    return None


def _where_named(sources: Sequence[Any], name: str) -> str:
    """Where a configurable is first named by a statement (``@TensorBoardLogger``)."""
    for source in sources:
        stmt = source.statement
        names = {n.rpartition(".")[2] for n in (stmt.configurable, *stmt.references) if n}
        if name in names:
            return f"{source.where}: "
    return ""
