"""The MLflow pyfunc flavor of a run's model: what ``mlflow.pyfunc.load_model`` calls.

``ginpipe.tasks.tracking.log_pyfunc_model`` saves the run's ``config.gin``, ``run.json``
and ``model/`` bundle as the pyfunc model's data and names this module as its loader, so
loading needs ginpipe installed and reads only the bundle's files (safetensors, skops, JSON):
no pickled Python object is stored.
"""

from __future__ import annotations

from typing import Any

import ginpipe


class RunModel:
    """A run's model behind pyfunc's ``predict``: a DataFrame (or anything ``Run.predict``
    takes) in, the DataFrame ``ginpipe predict`` writes out (``predicted_class``,
    ``prob_<class>``)."""

    def __init__(self, run_dir: str) -> None:
        self.run = ginpipe.load_run(run_dir)

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return self.run.predict(model_input)


def _load_pyfunc(data_path: str) -> RunModel:
    """MLflow's entry point for a ``loader_module`` model; ``data_path`` is the saved run."""
    return RunModel(data_path)
