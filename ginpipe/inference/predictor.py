"""A run's model with its own preprocessing: raw items in, class probabilities out.

The numbers are those ``evaluate`` writes for the same items: image files go through the
run's ``ImageTransform`` (the code the data loaders used), raw features through the
transforms fitted on train, and the network or estimator gives softmax or
``predict_proba`` probabilities the same way the report computed them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ginpipe.base.errors import CheckpointError, ConfigError, DataError
from ginpipe.inference.inputs import Items
from ginpipe.tasks.bundle import Bundle, read_bundle
from ginpipe.tasks.data.decoded_files import DecodedFileDataset
from ginpipe.tasks.data.image_dataset import ImageFileDataset
from ginpipe.tasks.data.images import ImageTransform
from ginpipe.tasks.models import logits
from ginpipe.tasks.preprocessing import FeaturePreprocessing
from ginpipe.tasks.sklearn_models import class_probabilities

TRUSTED_ESTIMATOR_MODULES = ("sklearn.", "numpy.", "scipy.")


class Predictor:
    """Loads the model of ``run_dir`` once; ``batches`` streams predictions."""

    def __init__(self, run_dir: Path) -> None:
        self.bundle: Bundle = read_bundle(run_dir)
        self.model: Any = (
            load_network(self.bundle)
            if self.bundle.kind == "network"
            else load_estimator(self.bundle)
        )
        self.image: ImageTransform | None = None
        self.features: FeaturePreprocessing | None = None
        self.decoded = self.bundle.decoded  # files that are decoded, then featurized
        if self.bundle.data_kind == "files" and self.decoded is None:
            self.image = ImageTransform.from_spec(self.bundle.info["input"]["image"])
        elif self.bundle.preprocessing_value is not None:
            self.features = FeaturePreprocessing.from_spec(
                self.bundle.preprocessing_value, self.bundle.input_shape
            )

    @property
    def classes(self) -> list[str]:
        return self.bundle.classes

    def probabilities(self, inputs: np.ndarray | torch.Tensor) -> np.ndarray:
        """``(n, classes)`` float64 probabilities for model inputs (preprocessed items)."""
        if self.bundle.kind == "network":
            with torch.inference_mode():
                scores = logits(self.model, torch.as_tensor(inputs, dtype=torch.float32))
                return torch.softmax(scores, dim=1).double().numpy()
        flat = np.asarray(inputs, dtype=np.float32).reshape(len(inputs), -1)
        return class_probabilities(self.model, flat, len(self.classes))

    def batches(
        self, items: Items, batch_size: int = 256, num_workers: int = 0
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(identifiers, probabilities)`` per batch; files are decoded per batch (in
        ``num_workers`` worker processes), raw features transformed per batch."""
        check_batching(batch_size, num_workers)
        if items.paths is not None:
            dataset = self._file_dataset(items.paths)
            loader = DataLoader(
                dataset,
                batch_size=batch_size,
                shuffle=False,
                num_workers=num_workers,
                persistent_workers=False,
            )
            start = 0
            for x, _ in _decoded(loader):
                stop = start + len(x)
                yield items.identifiers[start:stop], self.probabilities(x)
                start = stop
            return
        assert items.raw is not None
        if self.decoded is None and self.features is None:
            raise DataError("this run's feature preprocessing was not saved; it cannot predict")
        for start in range(0, len(items), batch_size):
            raw = np.asarray(items.raw[start : start + batch_size], dtype=np.float32)
            check_finite(raw, items.identifiers[start : start + batch_size])
            yield (
                items.identifiers[start : start + batch_size],
                self.probabilities(self._from_raw(raw)),
            )

    def _from_raw(self, raw: np.ndarray) -> np.ndarray:
        """Model inputs from raw rows: a decoded-files run's computed features are only
        standardized; a features run's rows go through its fitted preprocessing."""
        if self.decoded is not None:
            return self.normalized(raw)
        assert self.features is not None
        return self.features(raw.reshape(len(raw), *self.features.raw_shape))

    def _file_dataset(self, paths: np.ndarray) -> Dataset:
        """The files as the run's data loaders read them: an image transform, or the run's
        decoder and feature function with its train normalization."""
        labels = np.zeros(len(paths), dtype=np.int64)
        if self.decoded is not None:
            return DecodedFileDataset(
                paths,
                labels,
                self.decoded["decoder"],
                self.decoded["transform"],
                self.decoded["normalize"],
            )
        assert self.image is not None  # a files run is decoded or images
        return ImageFileDataset(paths, labels, self.image.to_spec())

    def normalized(self, features: np.ndarray) -> np.ndarray:
        """Already-computed features of a decoded-files run, standardized as in training."""
        normalize = (self.decoded or {}).get("normalize")
        if not normalize:
            return features
        return (features - np.float32(normalize["mean"])) / np.float32(normalize["std"])

    def frame(self, identifiers: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
        """The output columns: identifier, ``predicted_class``, ``prob_<class>``."""
        classes = self.classes
        table = pd.DataFrame(
            {
                self.bundle.identifier: identifiers,
                "predicted_class": [classes[i] for i in probabilities.argmax(axis=1)],
            }
        )
        for column, name in enumerate(classes):
            table[f"prob_{name}"] = probabilities[:, column]
        return table


def _decoded(loader: DataLoader) -> Iterator[Any]:
    """The loader's batches; a file that does not decode becomes one DataError line."""
    try:
        yield from loader
    except DataError as error:
        raise DataError(_last_line(str(error))) from error


def _last_line(message: str) -> str:
    """A worker's error arrives as a traceback text ending in ``module.Type: message``."""
    lines = [line for line in message.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else message
    prefix = "ginpipe.base.errors.DataError: "
    return last.split(prefix, 1)[1] if prefix in last else last


def load_network(bundle: Bundle) -> nn.Module:
    """The network of the bundle in eval mode, its weights loaded strictly."""
    from safetensors.torch import load_file

    info = bundle.info["network"]
    network = build_network(info, bundle.run_dir)
    weights = load_file(str(bundle.file(info["weights"])), device="cpu")
    try:
        network.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        detail = (str(error).splitlines()[1:2] or [str(error)])[0].strip()
        raise CheckpointError(
            f"{bundle.file(info['weights'])} does not fit {info['factory']}: {detail}"
        ) from error
    return network.eval()


def build_network(info: dict[str, Any], run_dir: Path) -> nn.Module:
    """Call the model class with its saved constructor arguments; without them (an argument
    had no plain form), build it as ``evaluate`` did, from the run's own config.gin."""
    arguments = info.get("constructor")
    if arguments is not None:
        cls = import_path(info["factory"])
        return cls(**{name: _resolved(value) for name, value in arguments.items()})
    import gin

    from ginpipe.config.compose import compose_text

    config = run_dir / "config.gin"
    compose_text(config.read_text(), str(config))
    return gin.get_configurable(info["factory"])(**info["kwargs"])


def _resolved(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"@"}:
        return import_path(value["@"])
    if isinstance(value, list):
        return [_resolved(item) for item in value]
    return value


def import_path(path: str) -> Any:
    """The object at ``module.attribute`` (the longest importable module prefix)."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                found = getattr(found, name)
        except AttributeError:
            break
        return found
    raise ConfigError(f"cannot import '{path}' named by the run's model/model.json")


def load_estimator(bundle: Bundle) -> Any:
    """The fitted estimator; only scikit-learn, NumPy and SciPy types are loaded."""
    import skops.io

    path = bundle.file(bundle.info["estimator"]["file"])
    untrusted = skops.io.get_untrusted_types(file=path)
    refused = [name for name in untrusted if not name.startswith(TRUSTED_ESTIMATOR_MODULES)]
    if refused:
        raise CheckpointError(f"{path} holds types ginpipe does not load: {', '.join(refused)}")
    return skops.io.load(path, trusted=untrusted)


def progress(total: int, enabled: bool | None = None) -> Any:
    """A progress bar on stderr when it is a terminal (a log fills with redraws otherwise)."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, unit="item", disable=not show, file=sys.stderr, dynamic_ncols=True)


def check_finite(raw: np.ndarray, identifiers: np.ndarray) -> None:
    """NaN in, NaN out: every class's probability NaN and class 0 "predicted". Training
    refuses such rows; so does prediction, naming the first one."""
    finite = np.isfinite(raw.reshape(len(raw), -1)).all(axis=1)
    if not finite.all():
        first = identifiers[int(np.argmin(finite))]
        raise DataError(
            f"input {first} holds NaN or infinite values ({int((~finite).sum())} of "
            f"{len(raw)} rows in its batch): the model knows only finite inputs"
        )


def check_batching(batch_size: int, num_workers: int) -> None:
    """The batching options, checked before anything is read."""
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    if num_workers < 0:
        raise ConfigError(f"--num-workers must be 0 or more, got {num_workers}")
