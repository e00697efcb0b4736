"""Models of one run side by side: their overall test metrics, and a score per class.

Drawn by ``compare_models`` (``ginpipe/tasks/compare.py``) from the metrics each branch's
evaluation reported, so every model is scored on the same test split.
"""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.figure import Figure

from ginpipe.plots.figures import agg_figure

OVERALL = ("accuracy", "f1_macro")


def overall_names(models: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The overall metrics every model reports, in a fixed order."""
    return [name for name in OVERALL if all(name in m for m in models.values())]


def class_names(models: Mapping[str, Mapping[str, float]], score: str) -> list[str]:
    """Classes with a ``score/<class>`` value in every model, in the first model's order."""
    first = next(iter(models.values()), {})
    prefix = f"{score}/"
    names = [k[len(prefix) :] for k in first if k.startswith(prefix)]
    return [c for c in names if all(f"{prefix}{c}" in m for m in models.values())]


def comparison_figure(models: Mapping[str, Mapping[str, float]], score: str = "recall") -> Figure:
    """Grouped bars: the overall metrics (top) and ``score`` per class (bottom), one colour
    per model."""
    overall = overall_names(models)
    classes = class_names(models, score)
    rows = 2 if classes else 1
    bars = max(len(classes), len(overall)) * len(models)
    figure = agg_figure((min(12.0, max(6.0, 0.25 * bars + 2)), 3.2 * rows))
    width = 0.8 / max(1, len(models))
    panels = [("test metrics", overall, "")]
    if classes:
        panels.append((f"{score} per class", classes, f"{score}/"))
    for row, (title, names, prefix) in enumerate(panels):
        axes = figure.add_subplot(rows, 1, row + 1)
        for i, (model, metrics) in enumerate(models.items()):
            values = [float(metrics[f"{prefix}{name}"]) for name in names]
            xs = [j + (i - (len(models) - 1) / 2) * width for j in range(len(names))]
            axes.bar(xs, values, width, label=model, color=f"C{i % 10}")
        axes.set_xticks(range(len(names)))
        axes.set_xticklabels(names, rotation=30 if len(names) > 6 else 0, fontsize=8)
        axes.set_ylim(0, 1.05)
        axes.set_title(title, fontsize=10)
        axes.grid(axis="y", alpha=0.3)
        if row == 0:
            axes.legend(fontsize=8, loc="lower right")
    figure.subplots_adjust(left=0.07, right=0.98, top=0.92, bottom=0.1, hspace=0.45)
    return figure
