"""``ginpipe.load_run(dir)``: one run directory as a Python object, for notebooks and services.

    run = ginpipe.load_run("experiments/main/resnet-lr0.01")
    run.status, run.metrics["accuracy"], run.config["LR"]
    run.predict("new_images/")          # a DataFrame: path, predicted_class, prob_<class>
    run.model                           # the network in eval mode, or the fitted estimator

Reading status, metrics and config touches only small files (no torch); the model is
loaded on first use, from the run's own ``model/`` folder.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from ginpipe.base.errors import ConfigError
from ginpipe.runs import rundir


class Run:
    """A run directory: what it recorded, and its model."""

    def __init__(self, path: Path) -> None:
        self.dir = Path(path)
        self._predictor: Any = None

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r}, status={self.status!r})"

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def record(self) -> dict[str, Any]:
        """``run.json`` as it is now."""
        return rundir.read_run_json(self.dir)

    @property
    def status(self) -> str:
        """completed, failed, interrupted, running, or stopped (its process died)."""
        from ginpipe.records.history import RunInfo

        return RunInfo(self.dir, self.record, {}).status

    @property
    def metrics(self) -> dict[str, float]:
        """The final metrics (``run.json``; ``metrics.json`` for per-class entries too)."""
        path = self.dir / "metrics.json"
        if path.is_file():
            try:
                return dict(json.loads(path.read_text()))
            except ValueError:
                pass
        return dict(self.record.get("metrics") or {})

    @property
    def config(self) -> dict[str, Any]:
        """Every binding of ``resolved.gin``: ``{"LR": 0.01, "Trainer.max_epochs": 20, ...}``;
        values that are not Python literals (``@ResNet``) stay text."""
        from ginpipe.records.history import read_bindings

        return {key: _literal(value) for key, value in read_bindings(self.dir).items()}

    @property
    def predictor(self) -> Any:
        if self._predictor is None:
            from ginpipe.inference.predictor import Predictor

            self._predictor = Predictor(self.dir)
        return self._predictor

    @property
    def model(self) -> Any:
        """The rebuilt network in eval mode, or the fitted scikit-learn estimator."""
        return self.predictor.model

    @property
    def classes(self) -> list[str]:
        return self.predictor.classes

    def predict(
        self, inputs: Any = None, *, split: str | None = None, batch_size: int = 256
    ) -> Any:
        """Predictions as a DataFrame: ``path`` or ``row``, ``predicted_class``,
        ``prob_<class>``. ``inputs``: a table, folder, image or ``.npy`` path, a DataFrame,
        an array of raw items or a list of image paths; or ``split="test"`` for the run's own
        test items."""
        from ginpipe.inference.predicting import items_for, predict_frame

        items = items_for(self.predictor, inputs, split)
        return predict_frame(self.predictor, items, batch_size)


def load_run(path: str | Path) -> Run:
    """The run in ``path`` (a folder holding ``config.gin``)."""
    run = Run(Path(path))
    if not (run.dir / rundir.CONFIG).is_file():
        raise ConfigError(f"not a run directory (no {rundir.CONFIG}): {path}")
    return run


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
