"""One run as the server holds it: its model loaded once, its batchers, what ``/info`` says.

An audio run that ``waves`` applies to has a second batcher whose batches are waveforms:
their features are made together, then the model runs; computed features sent as JSON
numbers go through the first, as model inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ginpipe.inference.model_inputs import batch_probabilities, item_shape
from ginpipe.inference.predictor import Predictor
from ginpipe.inference.runview import Run
from ginpipe.serving.batching import Batcher, Model
from ginpipe.serving.metrics import Metrics
from ginpipe.serving.waves import Waves, waves_of


@dataclass
class ServedRun:
    name: str
    run_dir: Path
    predictor: Predictor
    batcher: Batcher
    info: dict[str, Any]
    waves: Waves | None = None
    wave_batcher: Batcher | None = None

    @property
    def batchers(self) -> list[Batcher]:
        return [self.batcher] + ([self.wave_batcher] if self.wave_batcher is not None else [])


def load_served(
    name: str,
    run_dir: Path,
    metrics: Metrics,
    max_batch_size: int,
    batch_timeout_s: float,
    workers: int,
) -> ServedRun:
    """Load the run's model and preprocessing; its batches feed ``metrics``."""
    predictor = Predictor(run_dir)

    def model(rows: np.ndarray) -> np.ndarray:
        return batch_probabilities(predictor, rows)

    def batcher(model: Model, suffix: str = "") -> Batcher:
        return Batcher(
            model,
            max_items=max_batch_size,
            timeout_s=batch_timeout_s,
            workers=workers,
            observe=metrics.batch_observer(name),
            name=name + suffix,
        )

    # one item through the model, so the first client does not pay torch's first-call setup
    model(np.zeros((1, *item_shape(predictor)), dtype=np.float32))
    info = describe(name, run_dir, predictor)
    served = ServedRun(name, run_dir, predictor, batcher(model), info)
    waves = waves_of(predictor.decoded if predictor.bundle.data_kind == "files" else None)
    if waves is not None:

        def from_waves(rows: np.ndarray) -> np.ndarray:
            return batch_probabilities(predictor, waves.features(rows))

        from_waves(np.zeros((1, *waves.item_shape), dtype=np.float32))
        served.waves, served.wave_batcher = waves, batcher(from_waves, "-waves")
    return served


def describe(name: str, run_dir: Path, predictor: Predictor) -> dict[str, Any]:
    """``GET /info``: the run, its classes, what it takes as input, its main metric."""
    bundle = predictor.bundle
    record = Run(run_dir)
    main = str(record.record.get("main_metric") or "")
    value = record.metrics.get(main)
    info: dict[str, Any] = {
        "run": name,
        "predict": f"/runs/{name}/predict",
        "model": bundle.kind,
        "classes": predictor.classes,
        "input": _input(predictor),
        "metric": {"name": main, "value": value if isinstance(value, (int, float)) else None},
    }
    return info


def _input(predictor: Predictor) -> dict[str, Any]:
    bundle = predictor.bundle
    shape = bundle.input_shape
    if bundle.data_kind != "files":
        spec = bundle.preprocessing_value or {}
        return {
            "kind": "features",
            "shape": [int(side) for side in spec.get("raw_shape") or shape],
            "columns": [str(column) for column in spec.get("feature_names") or []],
            "send": "application/json: a row or a list of rows; or text/csv",
        }
    decoded = bundle.decoded
    if decoded is None:
        return {
            "kind": "image files",
            "model_input_shape": shape,
            "send": "the file's bytes (image/*, application/octet-stream), or JSON base64 strings",
        }
    return {
        "kind": "files",
        "decoder": str(decoded["decoder"].get("target", "")),
        "features": str((decoded.get("transform") or {}).get("target", "")) or None,
        "model_input_shape": shape,
        "send": "the file's bytes (audio/*, application/octet-stream), JSON base64 strings, "
        "or computed features as JSON numbers",
    }
