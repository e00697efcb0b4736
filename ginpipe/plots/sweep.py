"""A sweep's figures: the objective per trial (whole trial numbers, the best so far as a
step line) and the objective against each swept value, every point labelled with its
trial."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from ginpipe.plots.figures import agg_figure, integer_ticks, short, value_ticks


def history_figure(
    title: str, metric: str, direction: str, trials: Sequence[tuple[int, float]]
) -> Figure:
    """``trials``: (trial number, objective) of the completed trials, in number order."""
    numbers = [n for n, _ in trials]
    values = [v for _, v in trials]
    pick = max if direction == "maximize" else min
    best = [pick(values[: i + 1]) for i in range(len(values))]
    figure = agg_figure(figsize=(6.5, 4.4))
    figure.subplots_adjust(left=0.13, right=0.96, bottom=0.13, top=0.85)
    axes = figure.add_subplot()
    axes.plot(numbers, values, "o", label=metric)
    axes.step(numbers, best, where="post", label=f"best so far ({direction})")
    for number, value in trials:
        axes.annotate(
            f"{value:.4f}", (number, value), textcoords="offset points", xytext=(4, 4), fontsize=7
        )
    integer_ticks(axes, numbers)
    axes.set_xlabel("trial")
    axes.set_ylabel(metric)
    axes.set_title(f"{title}: {metric} per trial", fontsize=11)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    axes.margins(x=0.1, y=0.15)
    return figure


def param_figure(
    title: str,
    metric: str,
    key: str,
    points: Sequence[tuple[int, str, float]],
    *,
    categories: Sequence[str] | None = None,
    log_scale: bool = False,
) -> Figure:
    """``points``: (trial number, value text, objective). With ``categories`` the x axis
    is the list of choices; otherwise the values are numbers."""
    figure = agg_figure(figsize=(6.5, 4.4))
    figure.subplots_adjust(left=0.13, right=0.96, bottom=0.15, top=0.88)
    axes = figure.add_subplot()
    if categories is not None:
        labels = list(categories)
        xs = [float(labels.index(v)) if v in labels else -1.0 for _, v, _ in points]
        axes.set_xticks(range(len(labels)), [short(c, 18) for c in labels])
        axes.set_xlim(-0.5, len(labels) - 0.5)
    else:
        xs = [float(v) for _, v, _ in points]
        if log_scale:
            axes.set_xscale("log")
        value_ticks(axes, xs, [v for _, v, _ in points])
    values = [v for _, _, v in points]
    axes.plot(xs, values, "o")
    for x, (number, _, value) in zip(xs, points, strict=True):
        axes.annotate(
            f"trial {number}\n{value:.4f}",
            (x, value),
            textcoords="offset points",
            xytext=(5, 3),
            fontsize=7,
        )
    axes.set_xlabel(key)
    axes.set_ylabel(metric)
    axes.set_title(f"{title}: {metric} against {key}", fontsize=11)
    axes.grid(alpha=0.3)
    axes.margins(x=0.2, y=0.2)
    return figure
