"""One classification report for every model kind: metrics, predictions and plots.

``evaluate`` (networks) and ``evaluate_sklearn`` (classical baselines) both end here, so
two runs compare on the same numbers computed the same way. Files written into the run
directory, each atomically:

    metrics.json                 accuracy, f1_macro, precision/<class>, recall/<class>
    predictions.csv              path or row, index, y_true, y_pred, true_class, predicted_class,
                                 prob_<class> (``path``/``row`` as ``ginpipe predict`` writes it)
    plots/confusion_matrix.png
    plots/learning_curves.png    only when logs/metrics.csv exists (networks)

The plots are drawn on a worker thread (``BackgroundPlots``) while the caller writes its
other files: rendering them is most of the report's time, and the file writes mostly wait
for the disk, which leaves the interpreter free for the drawing. What computes with torch
runs before the drawing starts: each small kernel would otherwise wait for the interpreter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd
import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from ginpipe.plots.confusion import confusion_figure
from ginpipe.plots.curves import learning_curves_figure
from ginpipe.plots.epochlog import TRAINING_LOG, EpochLog, read_epoch_log
from ginpipe.plots.figures import save_figure
from ginpipe.tasks.engine import atomic_write_json, atomic_write_text

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
PLOTS_DIR = "plots"


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]
) -> dict[str, float]:
    """Accuracy, macro F1 and per-class precision and recall, as flat float keys."""
    target, preds = torch.as_tensor(y_true), torch.as_tensor(y_pred)
    num_classes = len(classes)
    metrics = {
        "accuracy": multiclass_accuracy(preds, target, num_classes, average="micro").item(),
        "f1_macro": multiclass_f1_score(preds, target, num_classes, average="macro").item(),
    }
    precision = multiclass_precision(preds, target, num_classes, average=None)
    recall = multiclass_recall(preds, target, num_classes, average=None)
    for name, p, r in zip(classes, precision.tolist(), recall.tolist(), strict=True):
        metrics[f"precision/{name}"] = p
        metrics[f"recall/{name}"] = r
    return metrics


class BackgroundPlots:
    """One worker thread that draws figures while the caller goes on; leaving the ``with``
    block waits for them and raises the first plot's error, so a report is never
    silently missing a plot.

    One thread, one figure at a time: each figure has its own Agg canvas (no pyplot state)
    and the caller draws none meanwhile.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ginpipe-plots")
        self._drawing: list[Future[None]] = []

    def submit(self, draw: Callable[..., None], *args: Any) -> None:
        self._drawing.append(self._pool.submit(draw, *args))

    def __enter__(self) -> BackgroundPlots:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=kind is not None)
        if kind is None:
            for drawing in self._drawing:
                drawing.result()


def write_classification_report(
    run_dir: Path,
    y_true: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    identifiers: tuple[str, np.ndarray] | None,
    plots: BackgroundPlots,
) -> dict[str, float]:
    """Write the report files for predictions on the test split; return the metrics.

    ``probabilities`` is ``(n, num_classes)``; the predicted class is its argmax.
    ``identifiers`` is ``(column, values)``: each item's file path or dataset row. The
    confusion matrix is handed to ``plots``; the learning curves are the caller's to
    start (``plot_training_log``), as early as it likes.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_pred = probabilities.argmax(axis=1)
    confusion = multiclass_confusion_matrix(
        torch.as_tensor(y_pred), torch.as_tensor(y_true), len(classes)
    ).numpy()
    metrics = classification_metrics(y_true, y_pred, classes)  # torch first, see evaluate
    title = (
        f"{run_dir.name}: confusion matrix, test split "
        f"(accuracy {metrics['accuracy']:.4f}, f1_macro {metrics['f1_macro']:.4f})"
    )
    plots.submit(
        plot_confusion_matrix,
        run_dir / PLOTS_DIR / "confusion_matrix.png",
        confusion,
        classes,
        title,
    )
    atomic_write_json(run_dir / METRICS_FILE, metrics)
    write_predictions(run_dir / PREDICTIONS_FILE, y_true, probabilities, classes, identifiers)
    return metrics


def plot_training_log(run_dir: Path, monitor: str = "val_acc", mode: str = "max") -> None:
    """The learning curves from Lightning's CSV log, if training wrote one; the epoch where
    ``monitor`` was best (the checkpoint kept) is marked."""
    log = read_epoch_log(run_dir / TRAINING_LOG)
    if log.series:
        path = run_dir / PLOTS_DIR / "learning_curves.png"
        plot_learning_curves(path, log, run_dir.name, monitor, mode)


def write_predictions(
    path: Path,
    y_true: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    identifiers: tuple[str, np.ndarray] | None = None,
) -> None:
    y_pred = probabilities.argmax(axis=1)
    column, values = identifiers or ("row", np.arange(len(y_true)))
    table = pd.DataFrame(
        {
            column: np.asarray(values),
            "index": np.arange(len(y_true)),
            "y_true": y_true,
            "y_pred": y_pred,
            "true_class": [classes[i] for i in y_true],
            "predicted_class": [classes[i] for i in y_pred],
        }
    )
    for k, name in enumerate(classes):
        table[f"prob_{name}"] = probabilities[:, k]
    atomic_write_text(path, table.to_csv(index=False))


def plot_confusion_matrix(
    path: Path, confusion: np.ndarray, classes: Sequence[str], title: str = "confusion matrix"
) -> None:
    """Counts and rates per (true, predicted) class pair (``ginpipe/plots/confusion.py``)."""
    save_figure(confusion_figure(confusion, classes, title), path)


def plot_learning_curves(
    path: Path, log: EpochLog, run_name: str, monitor: str = "val_acc", mode: str = "max"
) -> None:
    """Loss and accuracy per epoch, train against val (``ginpipe/plots/curves.py``)."""
    save_figure(learning_curves_figure(log, run_name, monitor, mode), path)


def split_identifiers(data: dict, split: str) -> tuple[str, np.ndarray]:
    """``("path", file paths)`` or ``("row", dataset row indices)`` of a split's items; the
    position in the split when the features task recorded no rows."""
    part = data[split]
    if data["kind"] == "files":
        return "path", np.asarray(part["path"], dtype=str)
    rows = part.get("row")
    return "row", np.asarray(rows if rows is not None else np.arange(len(part["y"])))
