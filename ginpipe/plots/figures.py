"""What every figure shares: an Agg canvas outside pyplot, atomic PNG writes, integer ticks,
text that stays readable on any cell colour.

Figures are made with ``Figure`` and their own ``FigureCanvasAgg``: no pyplot, so no global
figure state and no GUI backend, and a figure can be drawn on a worker thread. Margins are
set by each plot from what it shows, not by a layout engine: constrained or tight layout
draws every figure twice, which doubles a report's plotting time.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from ginpipe.base.atomic import atomic_write_bytes

DPI = 100


def agg_figure(figsize: tuple[float, float]) -> Figure:
    """A figure drawn by the Agg backend, outside pyplot."""
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def save_figure(figure: Figure, path: Path) -> Path:
    """The figure as a PNG at ``path``, written atomically (a reader never sees half)."""
    atomic_write_bytes(path, png_bytes(figure))
    return path


def integer_ticks(axes: Axes, values: list[int] | list[float]) -> None:
    """Epoch or trial numbers on the x axis: whole numbers only; a single value gets one
    tick in the middle of a unit-wide axis instead of an axis from -0.04 to 0.04."""
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if values and min(values) == max(values):
        centre = float(values[0])
        axes.set_xlim(centre - 1, centre + 1)
        axes.set_xticks([centre])


# Up to this many distinct values, a numeric axis is ticked at exactly those values.
MAX_VALUE_TICKS = 8


def value_ticks(axes: Axes, values: list[float], labels: list[str]) -> None:
    """Ticks at the values a sweep or a comparison tried (``0.001, 0.01, 0.1``), labelled
    as the config wrote them, rather than at round numbers none of them is."""
    distinct = dict(zip(values, labels, strict=True))
    if 0 < len(distinct) <= MAX_VALUE_TICKS:
        axes.set_xticks(list(distinct), [short(t, 12) for t in distinct.values()])
        axes.xaxis.set_minor_locator(NullLocator())


def text_colour(rgba: Any) -> str:
    """Dark text on a light cell, light text on a dark one (relative luminance, sRGB)."""
    red, green, blue = (float(c) for c in rgba[:3])
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "black" if luminance > 0.5 else "white"


def short(value: object, limit: int = 24) -> str:
    """A value as it fits in a legend or a tick label."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
