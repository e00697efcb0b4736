"""Fitted feature preprocessing as plain data, so a run can apply it to new inputs.

``make_features`` fits its transformers on the train split and applies them once; a model
trained on the result needs the same fitted transform at prediction time. A fitted
scikit-learn transformer is saved as its class path, its constructor parameters and its
fitted attributes (arrays and numbers) -- values the artifact store and a run directory
keep without pickle -- and rebuilt from them for prediction and export.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ginpipe import DataError

if TYPE_CHECKING:
    from sklearn.base import TransformerMixin


JSON_SCALARS = (bool, int, float, str, type(None))
# Transformers whose ``transform`` is an affine map (x -> x @ W + b): export folds them in.
AFFINE = {
    "sklearn.preprocessing.StandardScaler",
    "sklearn.preprocessing.RobustScaler",
    "sklearn.preprocessing.MaxAbsScaler",
    "sklearn.decomposition.PCA",
}


def class_path(obj: Any) -> str:
    cls = type(obj)
    public = cls.__module__.split("._")[0]  # sklearn.preprocessing._data -> sklearn.preprocessing
    return f"{public}.{cls.__qualname__}"


def fitted_state(transformer: TransformerMixin) -> dict[str, Any] | None:
    """Class path, parameters and fitted attributes; None if one of them is not plain data."""
    params = transformer.get_params(deep=False)
    if not all(_plain(value) for value in params.values()):
        return None
    attributes: dict[str, Any] = {}
    for name, value in vars(transformer).items():
        if not name.endswith("_") or name.startswith("_"):
            continue
        if isinstance(value, np.ndarray) and not value.dtype.hasobject:
            attributes[name] = value
        elif isinstance(value, (np.generic, JSON_SCALARS)):
            attributes[name] = value.item() if isinstance(value, np.generic) else value
        else:
            return None
    return {"class": class_path(transformer), "params": dict(params), "attributes": attributes}


def _plain(value: Any) -> bool:
    """A JSON scalar, or a tuple/list of them (e.g. ``feature_range=(0, 1)``)."""
    if isinstance(value, (list, tuple)):
        return all(isinstance(item, JSON_SCALARS) for item in value)
    return isinstance(value, JSON_SCALARS)


def restore(state: Mapping[str, Any]) -> TransformerMixin:
    """The fitted transformer ``fitted_state`` described (scikit-learn classes only)."""
    path = str(state["class"])
    module_name, _, name = path.rpartition(".")
    if not module_name.startswith("sklearn."):
        raise DataError(f"saved preprocessing names {path}; only scikit-learn classes are rebuilt")
    cls = getattr(importlib.import_module(module_name), name)
    transformer = cls(**dict(state["params"]))
    for attribute, value in dict(state["attributes"]).items():
        setattr(transformer, attribute, value)
    return transformer


@dataclass
class FeaturePreprocessing:
    """Raw array items -> model inputs, as ``make_features`` did for the train split.

    ``raw_shape`` is the shape of one raw item, ``scale`` the divisor applied first, then
    the transformers in order on the flattened rows, then the rows take ``input_shape``.
    """

    raw_shape: list[int]
    scale: float
    transforms: list[TransformerMixin]
    input_shape: list[int]
    feature_names: list[str] | None = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], input_shape: Sequence[int]) -> FeaturePreprocessing:
        names = spec.get("feature_names")
        return cls(
            raw_shape=[int(side) for side in spec["raw_shape"]],
            scale=float(spec["scale"]),
            transforms=[restore(state) for state in spec["transforms"]],
            input_shape=[int(side) for side in input_shape],
            feature_names=[str(name) for name in names] if names else None,
        )

    @property
    def width(self) -> int:
        return math.prod(self.raw_shape)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Model inputs (float32, ``(n, *input_shape)``) for raw items ``(n, *raw_shape)``."""
        rows = np.asarray(raw, dtype=np.float32).reshape(len(raw), -1) / np.float32(self.scale)
        for transform in self.transforms:
            if len(rows):
                rows = transform.transform(rows)
        return np.asarray(rows, dtype=np.float32).reshape(-1, *self.input_shape)

    def affine(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(W, b)`` with ``self(x) == x.reshape(n, -1) @ W + b``, if every step is affine.

        Found by applying the steps to the zero vector and the unit vectors in float64: the
        steps are affine, so this is exact up to rounding.
        """
        if any(class_path(t) not in AFFINE for t in self.transforms):
            return None
        probes = np.vstack([np.zeros((1, self.width)), np.eye(self.width)])
        rows = probes / self.scale
        for transform in self.transforms:
            rows = transform.transform(rows)
        rows = np.asarray(rows, dtype=np.float64)
        bias = rows[0]
        return rows[1:] - bias, bias

    def describe(self) -> list[str]:
        steps = [f"divide by {self.scale:g}"] if self.scale != 1 else []
        return steps + [class_path(t).rpartition(".")[2] for t in self.transforms]


def preprocessing_spec(
    raw_shape: Sequence[int],
    scale: float,
    fitted: Sequence[TransformerMixin],
    feature_names: Sequence[str] | None,
) -> dict[str, Any] | None:
    """The ``preprocessing`` entry of the ``data`` key; None if a transformer is not plain
    data (then a run predicts only from already transformed features)."""
    states = [fitted_state(transform) for transform in fitted]
    if any(state is None for state in states):
        return None
    return {
        "raw_shape": [int(side) for side in raw_shape],
        "scale": float(scale),
        "transforms": states,
        "feature_names": [str(name) for name in feature_names] if feature_names else None,
    }
