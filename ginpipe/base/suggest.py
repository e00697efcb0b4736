"""Did-you-mean suggestions for names a user typed (configurables, parameters, macros)."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable
from typing import Any


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``word``, or None if nothing is close enough."""
    pool = sorted(set(candidates))
    match = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not match:
        lowered = {c.lower(): c for c in pool}
        match = [lowered[w] for w in difflib.get_close_matches(word.lower(), lowered, n=1)]
    return match[0] if match else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    best = closest(word, candidates)
    return f" (did you mean '{best}'?)" if best and best != word else ""


def parameter_names(fn_or_cls: Any) -> list[str]:
    """Keyword parameters a configurable accepts (a class's from its ``__init__``)."""
    target = fn_or_cls.__init__ if inspect.isclass(fn_or_cls) else fn_or_cls
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.kind in kinds and p.name not in ("self", "state")]
