"""What tells listed runs apart: the config keys whose values differ, and long values cut
to the part that differs. Shared by the runs table and the comparison plot."""

from __future__ import annotations

from collections.abc import Sequence

from ginpipe.records.history import RunInfo, parse_value

MAX_CELL = 40


def differing_keys(runs: Sequence[RunInfo]) -> list[str]:
    """Config keys whose value (macros resolved) is not the same among the listed runs that
    set them (at least two do).

    A key set by one run only (a scikit-learn run's ``LogisticRegression.C`` among network
    runs) says which model it is, which ``run.tasks`` already shows; a key whose own text is
    the same in every run setting it (``AdamW.lr = %LR``) differs only through a macro,
    which is itself a column: both are left out.
    """
    readable = [run for run in runs if run.damage is None]
    values = [run.values for run in readable]
    found = []
    for key in sorted({key for run in readable for key in run.bindings}):
        setting = [i for i, run in enumerate(readable) if key in run.bindings]
        if len(setting) < 2:
            continue
        texts = {readable[i].bindings[key] for i in setting}
        resolved = {repr(parse_value(values[i][key])) for i in setting}
        if len(resolved) > 1 and len(texts) > 1:
            found.append(key)
    return found


def shortened(texts: Sequence[str | None], limit: int = MAX_CELL) -> list[str | None]:
    """Long values of one column, cut so that what tells them apart stays: the start they
    all share is replaced by ``…`` (``…@fit_sklearn, @evaluate_sklearn]``)."""
    present = [t for t in texts if t is not None]
    if not present or max(len(t) for t in present) <= limit:
        return list(texts)
    common = _shared_start(present) if len(present) > 1 else 0
    out: list[str | None] = []
    for text in texts:
        if text is None or len(text) <= limit:
            out.append(text)
            continue
        tail = "…" + text[common:] if common > 3 else text
        out.append(tail if len(tail) <= limit else tail[: limit - 1] + "…")
    return out


def _shared_start(texts: list[str]) -> int:
    """Length of the start all ``texts`` share, cut back to just after a ``, `` so that the
    first differing item is shown whole."""
    first = texts[0]
    length = 0
    while length < len(first) and all(
        len(t) > length and t[length] == first[length] for t in texts
    ):
        length += 1
    cut = first.rfind(", ", 0, length)
    return cut + 2 if cut >= 0 else 0
