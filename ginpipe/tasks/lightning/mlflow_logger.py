"""fit's live training curves, logged into the MLflow run the run's tracker opened.

The tracker (``ginpipe/tasks/tracking.py``, the ``mlflow_logger()`` observer) owns the MLflow
run: its own process (``ginpipe/tasks/tracking_sidecar.py``) creates or continues it, logs
the config as params, and ends it after the last task. This Lightning logger only hands that
process what training logs (train/val metrics, epoch, learning rate) as it is logged, so the
curves grow in the MLflow UI during training; training never waits for MLflow, and mlflow is
not imported here.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gin
from loguru import logger
from pytorch_lightning.loggers import Logger
from pytorch_lightning.loggers.logger import DummyLogger
from pytorch_lightning.utilities import rank_zero_only

from ginpipe import RunContext, requires
from ginpipe.tasks.tracking import MlflowTracker
from ginpipe.tasks.tracking_sidecar import Sidecar


class SidecarLogger(Logger):
    """Lightning's logger interface in front of the run's MLflow process: metrics only (the
    tracker logged every binding as a param; Lightning's hyperparameters would be the
    module's reprs), and no end of the run (evaluation and the final metrics come later)."""

    def __init__(self, sidecar: Sidecar, run_name: str) -> None:
        super().__init__()
        self.sidecar = sidecar
        self.run_name = run_name

    @property
    def name(self) -> str:
        return "mlflow"

    @property
    def version(self) -> str:
        return self.run_name

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        return None

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        values = {
            metric_name(k): float(v)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and math.isfinite(v)
        }
        if values:
            message = {"op": "metrics", "metrics": values, "step": step or 0}
            self.sidecar.send({**message, "time_ms": int(time.time() * 1000)})


def metric_name(name: str) -> str:
    """MLflow accepts letters, digits and ``_ - . / space`` in a metric name."""
    return re.sub(r"[^a-zA-Z0-9_/. -]+", "_", name)


@gin.configurable
def mlflow_training_logger(save_dir: str, run: RunContext | None = None) -> Logger:
    """fit's logger into the run's MLflow run (``fit.loggers += [@mlflow_training_logger]``,
    as ``configs/loggers/mlflow.gin`` does). ``save_dir`` (``RUN/logs/mlflow_training``)
    names the run; nothing is written there. ``run``: the run fit trains in, whose observers
    (``run.attached``) include its tracker.

    Without the tracker (``run.observers += [@mlflow_logger()]``), or on a rank other than
    0 (which never tracks), training is not tracked: a logger that logs nothing."""
    run_dir = Path(save_dir).absolute().parent.parent
    tracker = run.attached_of(MlflowTracker) if run is not None else None
    sidecar = tracker.sidecar_of(run_dir) if tracker is not None else None
    if sidecar is None:
        if getattr(rank_zero_only, "rank", 0) == 0:  # other ranks never track
            logger.warning(
                "no MLflow tracker in this run, training curves are not tracked: "
                "add the tracker with the config loggers/mlflow "
                "(run.observers += [@mlflow_logger()])"
            )
        return DummyLogger()
    return SidecarLogger(sidecar, run_dir.name)


requires(mlflow_training_logger, "mlflow")
