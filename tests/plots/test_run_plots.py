"""Figures checked as matplotlib objects: titles, axis labels, whole-number ticks, the best
epoch marked, a one-epoch run as labelled bars, the confusion matrix's colour bars, counts
only where non-zero and in a colour readable on their cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ginpipe.plots.compare import ComparedRun, compare_figure
from ginpipe.plots.confusion import confusion_figure
from ginpipe.plots.curves import learning_curves_figure
from ginpipe.plots.epochlog import EpochLog, read_epoch_log
from ginpipe.plots.figures import integer_ticks, save_figure, text_colour
from ginpipe.plots.sweep import history_figure, param_figure

LOG = """epoch,step,train_acc,train_loss,val_acc,val_loss
0,9,,,0.5,1.2
0,9,0.4,1.5,,
1,19,,,0.8,0.7
1,19,0.7,0.9,,
2,29,,,0.75,0.6
2,29,0.9,0.4,,
"""


def epoch_log(tmp_path: Path, text: str = LOG) -> EpochLog:
    (tmp_path / "metrics.csv").write_text(text)
    return read_epoch_log(tmp_path / "metrics.csv")


def texts(figure: Figure) -> list[str]:
    return [t.get_text() for ax in figure.axes for t in ax.texts]


def tick_values(axes) -> list[float]:
    lo, hi = axes.get_xlim()
    return [t for t in axes.get_xticks() if lo <= t <= hi]


def test_epoch_log_means_per_epoch_and_best(tmp_path) -> None:
    log = epoch_log(tmp_path)
    assert log.points("val_acc") == ([0, 1, 2], [0.5, 0.8, 0.75])
    assert log.best("val_acc", "max") == (1, 0.8)
    assert log.best("val_loss", "min") == (2, 0.6)
    assert read_epoch_log(tmp_path / "missing.csv").series == {}


def test_learning_curves_have_titles_labels_integer_ticks_and_the_best_epoch(tmp_path) -> None:
    figure = learning_curves_figure(epoch_log(tmp_path), "run-7", "val_acc", "max")
    assert "run-7" in figure.get_suptitle()
    assert "best val_acc 0.8000 at epoch 1" in figure.get_suptitle()
    loss, accuracy = figure.axes
    for axes, name in ((loss, "loss"), (accuracy, "accuracy")):
        assert axes.get_title() == name and axes.get_ylabel() == name
        assert axes.get_xlabel() == "epoch"
        assert all(float(t).is_integer() for t in tick_values(axes))
        assert axes.get_legend() is not None
        assert any(line.get_label() == "best epoch" for line in axes.lines)
    assert "0.8000" in texts(figure)  # the best value, written at its point


def test_one_epoch_is_shown_as_labelled_bars(tmp_path) -> None:
    log = epoch_log(tmp_path, "epoch,step,train_loss,val_loss\n0,3,,2.3\n0,3,2.2,\n")
    figure = learning_curves_figure(log, "short", "val_loss", "min")
    (axes,) = figure.axes
    assert len(axes.patches) == 2
    assert [t.get_text() for t in axes.get_xticklabels()] == ["train_loss", "val_loss"]
    assert {"2.2000", "2.3000"} <= set(texts(figure))
    assert axes.get_ylim()[0] == 0 and axes.get_ylim()[1] > 2.3
    assert "epoch 0" in axes.get_xlabel()


def test_integer_ticks_of_a_single_value_give_a_sane_axis() -> None:
    figure = Figure()
    axes = figure.add_subplot()
    axes.plot([0], [1.0], "o")
    integer_ticks(axes, [0])
    assert axes.get_xlim() == (-1.0, 1.0) and list(axes.get_xticks()) == [0.0]


def test_confusion_matrix_counts_beside_rates_with_colour_bars(tmp_path) -> None:
    confusion = np.array([[50, 0, 1], [0, 40, 2], [0, 0, 30]])
    figure = confusion_figure(confusion, ["cat", "dog", "owl"], "r: confusion (accuracy 0.9765)")
    assert figure.get_suptitle() == "r: confusion (accuracy 0.9765)"
    counts, rates = figure.axes[0], figure.axes[1]
    assert len(figure.axes) == 4  # two matrices, two colour bars
    assert counts.get_title() == "counts" and "normalised" in rates.get_title()
    for axes in (counts, rates):
        assert axes.get_xlabel() == "predicted class" and axes.get_ylabel() == "true class"
        assert [t.get_text() for t in axes.get_yticklabels()] == ["cat", "dog", "owl"]
    shown = [t.get_text() for t in counts.texts]
    assert sorted(shown) == sorted(["50", "1", "40", "2", "30"])  # no zeros
    assert "0.95" in [t.get_text() for t in rates.texts]
    # contrast: light text on the dark diagonal, dark text on the pale error cells
    colour = {t.get_text(): t.get_color() for t in counts.texts}
    assert colour["50"] == "white" and colour["1"] == "black"
    save_figure(figure, tmp_path / "cm.png")
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_colour_follows_luminance() -> None:
    assert text_colour((0.03, 0.19, 0.42, 1.0)) == "white"
    assert text_colour((0.97, 0.98, 1.0, 1.0)) == "black"


def test_compare_overlays_runs_with_a_legend_of_what_differs(tmp_path) -> None:
    log = epoch_log(tmp_path)
    runs = [
        ComparedRun("a", log, 0.8, {"LR": "0.01"}),
        ComparedRun("b", EpochLog({"val_acc": {0: 0.6}}), 0.6, {"LR": "0.1"}),
        ComparedRun("sk", EpochLog(), 0.9, {"LR": "(unset)"}),
    ]
    figure = compare_figure(runs, "accuracy", ["LR"])
    assert figure.get_suptitle() == "3 runs compared on accuracy"
    loss, accuracy, legend, against = figure.axes
    assert loss.get_ylabel() == "loss" and accuracy.get_xlabel() == "epoch"
    assert all(float(t).is_integer() for t in tick_values(accuracy))
    entries = [t.get_text() for t in legend.get_legend().get_texts()]
    assert entries[:3] == ["a (LR=0.01)", "b (LR=0.1)", "sk (LR=(unset))"]
    assert against.get_title() == "accuracy against LR"
    assert against.get_xlabel() == "LR" and against.get_ylabel() == "accuracy"
    assert [t.get_text() for t in against.get_xticklabels()] == ["0.01", "0.1", "(unset)"]
    assert {"a\n0.8000", "b\n0.6000", "sk\n0.9000"} <= {t.get_text() for t in against.texts}


def test_compare_of_numbers_uses_a_numeric_axis(tmp_path) -> None:
    runs = [
        ComparedRun(n, EpochLog(), v, {"LR": x})
        for n, v, x in (("a", 0.5, "0.001"), ("b", 0.7, "0.1"))
    ]
    figure = compare_figure(runs, "accuracy", ["LR"])
    legend, against = figure.axes  # no curves: the legend beside the value panel
    assert against.get_xscale() == "log"
    assert [t.get_text() for t in against.get_xticklabels()] == ["0.001", "0.1"]
    assert "no run logged training curves" in legend.get_title()


def test_sweep_figures_have_integer_trials_titles_and_labelled_points() -> None:
    figure = history_figure("sweep-1", "val_acc", "maximize", [(0, 0.5), (1, 0.7), (3, 0.6)])
    (axes,) = figure.axes
    assert axes.get_title() == "sweep-1: val_acc per trial"
    assert axes.get_xlabel() == "trial" and axes.get_ylabel() == "val_acc"
    assert all(float(t).is_integer() for t in tick_values(axes))
    assert [t.get_text() for t in axes.texts] == ["0.5000", "0.7000", "0.6000"]
    figure = param_figure(
        "sweep-1", "val_acc", "LR", [(0, "0.01", 0.5), (1, "0.1", 0.7)], categories=["0.01", "0.1"]
    )
    (axes,) = figure.axes
    assert axes.get_title() == "sweep-1: val_acc against LR"
    assert [t.get_text() for t in axes.texts] == ["trial 0\n0.5000", "trial 1\n0.7000"]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["0.01", "0.1"]
