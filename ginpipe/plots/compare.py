"""Runs side by side: their learning curves overlaid (one colour per run, train dashed, val
solid, the legend saying what differs), and below, the main metric against each config
value that differs among them, every point labelled with its run."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ginpipe.plots.epochlog import PANELS, EpochLog
from ginpipe.plots.figures import agg_figure, integer_ticks, short, value_ticks

COLOURS = [f"C{i}" for i in range(10)]


@dataclass
class ComparedRun:
    """One run as the comparison shows it."""

    name: str
    log: EpochLog
    metric: float | None
    # The config values that differ among the compared runs: key -> value text.
    values: dict[str, str] = field(default_factory=dict)

    def label(self) -> str:
        shown = ", ".join(f"{k}={short(v, 40)}" for k, v in self.values.items())
        return f"{self.name} ({shown})" if shown else self.name


def compare_figure(runs: Sequence[ComparedRun], metric: str, keys: Sequence[str]) -> Figure:
    """Curves and a legend of the runs on the top row, ``metric`` against each of ``keys``
    on the bottom row."""
    curve_panels = [
        (title, names)
        for title, names in PANELS.items()
        if any(run.log.series.get(n) for run in runs for n in names)
    ]
    # With curves: curves and the legend on top, a row of value panels below; without:
    # the legend beside the value panels.
    if curve_panels:
        columns, rows = max(len(curve_panels) + 1, len(keys), 2), 1 + (1 if keys else 0)
    else:
        columns, rows = len(keys) + 1, 1
    height = 4.2 * rows + 0.9
    figure = agg_figure(figsize=(4.8 * columns, height))
    figure.subplots_adjust(
        left=0.35 / columns,
        right=0.98,
        top=1 - 0.75 / height,
        bottom=0.55 / height,
        hspace=0.45,
        wspace=0.3,
    )
    count = f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
    figure.suptitle(f"{count} compared on {metric}", fontsize=12)
    for index, (title, names) in enumerate(curve_panels):
        _curves(figure.add_subplot(rows, columns, index + 1), runs, title, names)
    _legend(figure.add_subplot(rows, columns, len(curve_panels) + 1), runs, bool(curve_panels))
    first = columns + 1 if curve_panels else 2
    for index, key in enumerate(keys):
        axes = figure.add_subplot(rows, columns, first + index)
        _metric_against(axes, runs, metric, key)
    return figure


def _legend(axes: Axes, runs: Sequence[ComparedRun], curves: bool) -> None:
    """A panel of its own naming each run's colour and what differs: the curves stay clear."""
    axes.set_axis_off()
    handles = [
        Line2D([], [], color=COLOURS[i % len(COLOURS)], marker="o", label=_wrapped(run.label()))
        for i, run in enumerate(runs)
    ]
    if curves:
        handles += [
            Line2D([], [], color="grey", linestyle="--", label="train"),
            Line2D([], [], color="grey", linestyle="-", label="val"),
        ]
    else:
        axes.set_title("(no run logged training curves)", fontsize=9)
    axes.legend(handles=handles, loc="upper left", fontsize=8, frameon=False, title="runs")


def _wrapped(text: str, width: int = 44) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _curves(axes: Axes, runs: Sequence[ComparedRun], title: str, names: tuple[str, ...]) -> None:
    epochs: list[int] = []
    for index, run in enumerate(runs):
        colour = COLOURS[index % len(COLOURS)]
        for name in names:
            xs, ys = run.log.points(name)
            if not xs:
                continue
            epochs += xs
            style = "--" if name.startswith("train") else "-"
            axes.plot(xs, ys, style, marker="o", markersize=4, color=colour, label=run.name)
    integer_ticks(axes, epochs)
    axes.set_xlabel("epoch")
    axes.set_ylabel(title)
    axes.set_title(f"{title} (train dashed, val solid)", fontsize=10)
    axes.grid(alpha=0.3)


def _metric_against(axes: Axes, runs: Sequence[ComparedRun], metric: str, key: str) -> None:
    shown = [(run, run.values.get(key, "-"), run.metric) for run in runs if run.metric is not None]
    numbers = [_float(text) for _, text, _ in shown]
    if shown and all(n is not None for n in numbers):
        xs = [float(n) for n in numbers if n is not None]
        positive = [x for x in xs if x > 0]
        if len(positive) == len(xs) and max(xs) / min(xs) >= 100:
            axes.set_xscale("log")
        value_ticks(axes, xs, [text for _, text, _ in shown])
    else:
        categories = list(dict.fromkeys(text for _, text, _ in shown))
        xs = [float(categories.index(text)) for _, text, _ in shown]
        axes.set_xticks(range(len(categories)), [short(c, 22) for c in categories])
        axes.set_xlim(-0.5, len(categories) - 0.5)
    together: dict[tuple[float, str], list[str]] = {}  # runs at one point share a label
    for x, (run, _, value) in zip(xs, shown, strict=True):
        colour = COLOURS[runs.index(run) % len(COLOURS)]
        axes.plot([x], [value], "o", markersize=8, color=colour)
        together.setdefault((x, f"{value:.4f}"), []).append(run.name)
    for (x, value_text), names in together.items():
        axes.annotate(
            f"{', '.join(names)}\n{value_text}",
            (x, float(value_text)),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=7,
        )
    axes.set_xlabel(key)
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} against {key}", fontsize=10)
    axes.grid(alpha=0.3)
    axes.margins(x=0.25, y=0.2)


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
