"""One run's learning curves: loss and accuracy per epoch, train against val, with the
epoch the checkpoint monitor liked best marked.

A run of one epoch has no curve to draw: each metric is shown as a bar labelled with its
value, so the plot is read, not squinted at.
"""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ginpipe.plots.epochlog import PANELS, EpochLog
from ginpipe.plots.figures import agg_figure, integer_ticks

TRAIN_COLOUR, VAL_COLOUR, BEST_COLOUR = "tab:blue", "tab:orange", "tab:red"


def learning_curves_figure(
    log: EpochLog, run_name: str, monitor: str = "val_acc", mode: str = "max"
) -> Figure:
    """The figure (not yet saved): one panel per metric family the log has."""
    panels = [(title, names) for title, names in PANELS.items() if _has_any(log, names)]
    figure = agg_figure(figsize=(5.0 * max(len(panels), 1), 4.2))
    figure.subplots_adjust(left=0.1, right=0.97, bottom=0.13, top=0.8, wspace=0.28)
    if len(panels) > 1:
        figure.subplots_adjust(left=0.07)
    best = log.best(monitor, mode)
    epochs = log.epochs()
    subtitle = f"{len(epochs)} epoch{'s' if len(epochs) != 1 else ''}"
    if best is not None:
        subtitle += f"; best {monitor} {best[1]:.4f} at epoch {best[0]}"
    figure.suptitle(f"{run_name}: learning curves\n{subtitle}", fontsize=11)
    if not panels:
        axes = figure.add_subplot()
        axes.set_axis_off()
        axes.text(0.5, 0.5, "no training metrics logged", ha="center", va="center")
        return figure
    for index, (title, names) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, len(panels), index)
        if len(epochs) == 1:
            _bars(axes, log, names, epochs[0])
        else:
            _curves(axes, log, names, monitor, best)
        axes.set_ylabel(title)
        axes.set_title(title)
        axes.grid(alpha=0.3)
    return figure


def _has_any(log: EpochLog, names: tuple[str, ...]) -> bool:
    return any(log.series.get(name) for name in names)


def _curves(
    axes: Axes,
    log: EpochLog,
    names: tuple[str, ...],
    monitor: str,
    best: tuple[int, float] | None,
) -> None:
    for name, colour in zip(names, (TRAIN_COLOUR, VAL_COLOUR), strict=False):
        epochs, values = log.points(name)
        if epochs:
            axes.plot(epochs, values, marker="o", markersize=3, color=colour, label=name)
    if best is not None:
        epoch, value = best
        axes.axvline(epoch, color=BEST_COLOUR, linestyle="--", linewidth=1, label="best epoch")
        if monitor in names:
            axes.plot([epoch], [value], marker="*", markersize=12, color=BEST_COLOUR)
            axes.annotate(
                f"{value:.4f}",
                (epoch, value),
                textcoords="offset points",
                xytext=(6, 6),
                color=BEST_COLOUR,
            )
    integer_ticks(axes, log.epochs())
    axes.set_xlabel("epoch")
    axes.legend(fontsize=8)


def _bars(axes: Axes, log: EpochLog, names: tuple[str, ...], epoch: int) -> None:
    shown = [(name, log.series[name][epoch]) for name in names if epoch in log.series.get(name, {})]
    colours = [TRAIN_COLOUR if name.startswith("train") else VAL_COLOUR for name, _ in shown]
    positions = list(range(len(shown)))
    bars = axes.bar(positions, [v for _, v in shown], color=colours, width=0.6)
    axes.bar_label(bars, labels=[f"{v:.4f}" for _, v in shown], padding=2)
    axes.set_xticks(positions, [name for name, _ in shown])
    axes.set_xlim(-0.75, len(shown) - 0.25)
    top = max((v for _, v in shown), default=1.0)
    axes.set_ylim(0, top * 1.18 if top > 0 else 1.0)
    axes.set_xlabel(f"epoch {epoch} (the only one)")
