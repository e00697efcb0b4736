"""The ``evaluate`` task: score the trained network on the test split and write the report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ginpipe import Positive, TaskView, bound_value, task
from ginpipe.tasks.bundle import write_network_bundle
from ginpipe.tasks.data.datasets import make_dataset
from ginpipe.tasks.metric_names import CLASSIFICATION_METRICS
from ginpipe.tasks.models import build_model, logits


@task(
    reads=("model", "data"),
    writes=("metrics",),
    cache=False,
    main_only=True,
    metrics=CLASSIFICATION_METRICS,
)
def evaluate(state: TaskView, *, batch_size: Annotated[int, Positive] = 256) -> dict[str, Any]:
    """Predict the test split with the best weights and report metrics, predictions, plots;
    save the model with its preprocessing in ``model/`` (ginpipe.tasks.bundle).

    A plain inference loop rather than ``Trainer.test``: it runs in one process whether
    training used DDP or not, so every sample is scored exactly once (a distributed
    sampler would pad the split) and the numbers do not depend on the strategy.
    """
    # The report needs matplotlib, pandas and scikit-learn: loaded when this runs, not
    # when a config naming the task is composed.
    from ginpipe.tasks.report import (
        BackgroundPlots,
        plot_training_log,
        split_identifiers,
        write_classification_report,
    )

    data, run_dir = state["data"], Path(state.run.dir)
    # Predicted before the plots start: a drawing thread holds the interpreter most of the
    # time, and each of torch's small kernels would wait for it. The file writes that
    # follow mostly wait for the disk, which leaves the interpreter to the drawing.
    labels, probabilities = predict_probabilities(
        build_model(state["model"]), make_dataset(data, "test"), batch_size
    )
    with BackgroundPlots() as plots:
        plots.submit(plot_training_log, run_dir, *_monitor())
        metrics = write_classification_report(
            run_dir, labels, probabilities, data["classes"], split_identifiers(data, "test"), plots
        )
        # The model, also when fit was read from the cache: the run directory is
        # self-contained.
        write_network_bundle(run_dir, state["model"], data)
    return {"metrics": metrics}


def _monitor() -> tuple[str, str]:
    """The metric and direction fit's checkpoints were ranked by: the best epoch the
    learning curves mark is the one whose weights were evaluated."""
    from ginpipe.tasks.fit import fit

    monitor = bound_value(fit, "monitor", "val_acc")
    mode = bound_value(fit, "monitor_mode", "max")
    return str(monitor), "min" if mode == "min" else "max"


def predict_probabilities(
    network: nn.Module, dataset: Dataset, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """True labels and softmax probabilities for every item of ``dataset``, in order."""
    network.eval()
    labels, probabilities = [], []
    with torch.inference_mode():
        for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            probabilities.append(torch.softmax(logits(network, x), dim=1))
            labels.append(y)
    return torch.cat(labels).numpy(), torch.cat(probabilities).double().numpy()
