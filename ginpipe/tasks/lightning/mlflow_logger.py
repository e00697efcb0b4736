"""An MLflow logger that keeps its tracking data inside the run directory."""

from __future__ import annotations

import os
from pathlib import Path

import gin
from pytorch_lightning.loggers import MLFlowLogger

from ginpipe import requires

# MLflow 3 refuses a file store unless this is set; MLflow 2 ignores it.
ALLOW_FILE_STORE_ENV = "MLFLOW_ALLOW_FILE_STORE"


@gin.configurable
def mlflow_logger(
    save_dir: str, experiment_name: str = "ginpipe", run_name: str | None = None
) -> MLFlowLogger:
    """Lightning's MLFlowLogger with a file store at ``save_dir`` (``fit`` passes
    ``<run dir>/logs/mlflow``), whatever ``MLFLOW_TRACKING_URI`` says: a run's record
    stays in its directory and needs no server. View it with
    ``mlflow ui --backend-store-uri <run dir>/logs/mlflow``.

    A resumed run logs into a new MLflow run of the same experiment.
    """
    os.environ.setdefault(ALLOW_FILE_STORE_ENV, "true")
    return MLFlowLogger(
        experiment_name=experiment_name,
        run_name=run_name,
        tracking_uri=Path(save_dir).resolve().as_uri(),
    )


requires(mlflow_logger, "mlflow")  # MLFlowLogger imports it only when it is created
