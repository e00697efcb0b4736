"""A confusion matrix a person can read: counts beside the same matrix normalised by true
class (each row sums to 1, so a small class's errors show as much as a large one's), each
with a colour bar; numbers only where a cell is non-zero, light on dark cells and dark on
light ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ginpipe.plots.figures import agg_figure, short, text_colour

CMAP = "Blues"
# Above this many classes the cells are too small for numbers; colours still tell.
MAX_ANNOTATED = 30
LABEL_INCHES_PER_CHAR = 0.085


def confusion_figure(
    confusion: np.ndarray,
    classes: Sequence[str],
    title: str,
) -> Figure:
    """Counts (left) and row-normalised rates (right); ``title`` names the run and metric."""
    counts = np.asarray(confusion, dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    names = [short(name, 16) for name in classes]
    side = max(3.5, 0.42 * len(names) + 1.5)
    label = LABEL_INCHES_PER_CHAR * max((len(n) for n in names), default=1)
    width, height = 2 * (side + label + 1.2), side + label + 1.2
    figure = agg_figure(figsize=(width, height))
    figure.subplots_adjust(
        left=(label + 0.6) / width,
        right=1 - 0.75 / width,  # the right colour bar's tick labels
        bottom=(label + 0.6) / height,
        top=1 - 0.75 / height,
        wspace=(label + 1.6) / (side + 0.6),
    )
    figure.suptitle(title, fontsize=11)
    left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    _matrix(figure, left, counts, names, "counts", lambda v: f"{v:.0f}")
    _matrix(figure, right, rates, names, "normalised by true class", lambda v: f"{v:.2f}")
    return figure


def _matrix(
    figure: Figure,
    axes: Axes,
    values: np.ndarray,
    names: list[str],
    title: str,
    fmt: Callable[[float], str],
) -> None:
    vmax = float(values.max()) if values.size and values.max() > 0 else 1.0
    image = axes.imshow(values, cmap=CMAP, vmin=0, vmax=vmax, interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    ticks = range(len(names))
    axes.set_xticks(ticks, names, rotation=90)
    axes.set_yticks(ticks, names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title, fontsize=10)
    if len(names) > MAX_ANNOTATED:
        return
    for (row, column), value in np.ndenumerate(values):
        if value == 0:
            continue
        colour = text_colour(image.cmap(image.norm(value)))
        axes.text(column, row, fmt(value), ha="center", va="center", color=colour, fontsize=8)
