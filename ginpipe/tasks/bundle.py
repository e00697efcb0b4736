"""The model of a run, saved in the run directory so it can be used without anything else.

``evaluate`` (and ``evaluate_sklearn``) write ``RUN/model/`` in every completed run, also
when ``fit`` was read from the cache, so a run directory never depends on the cache or on
the checkout that trained it::

    model/model.json          what the model is: kind, classes, input, preprocessing,
                              constructor arguments, sha256 of every file below
    model/weights.safetensors the network weights of the best checkpoint (networks)
    model/estimator.skops     the fitted estimator, in skops' format (scikit-learn)
    model/preprocessing.*     fitted feature transforms (tabular runs; ginpipe.core.codecs)

Nothing is pickled, and no path outside the run directory is recorded. Files are written
atomically and ``model.json`` last; a reader checks the files against it.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gin

from ginpipe import CheckpointError, ConfigError, bound_value
from ginpipe.tasks.engine import atomic_path, atomic_write_json, codecs, file_sha256

MODEL_DIR = "model"
MODEL_JSON = "model.json"
WEIGHTS = "weights.safetensors"
ESTIMATOR = "estimator.skops"
PREPROCESSING = "preprocessing"
FORMAT = 1
JSON_SCALARS = (bool, int, float, str, type(None))


@dataclass
class Bundle:
    """What ``model/model.json`` says, with paths inside the run directory."""

    run_dir: Path
    info: dict[str, Any]
    preprocessing_value: Any = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        return str(self.info["kind"])

    @property
    def classes(self) -> list[str]:
        return [str(name) for name in self.info["classes"]]

    @property
    def data_kind(self) -> str:
        """``files`` (images, or files decoded into features) or ``arrays`` (features)."""
        return str(self.info["input"]["kind"])

    @property
    def decoded(self) -> dict[str, Any] | None:
        """For files that are not images: decoder, feature function and normalization."""
        found = self.info["input"].get("decoded")
        return dict(found) if found else None

    @property
    def identifier(self) -> str:
        return "path" if self.data_kind == "files" else "row"

    @property
    def input_shape(self) -> list[int]:
        return [int(side) for side in self.info["input"]["shape"]]

    def file(self, name: str) -> Path:
        return self.run_dir / MODEL_DIR / name


# --- writing ---------------------------------------------------------------------------------


def input_info(data: Mapping[str, Any]) -> dict[str, Any]:
    """The input part of model.json: kind, model input shape, dtype and (files) transform."""
    decoded = decoded_input(data)
    info: dict[str, Any] = {
        # what a new raw item is: a file (decoded, then featurized) or a row of features
        "kind": "files" if data["kind"] in ("files", "shards") else data["kind"],
        "shape": [int(side) for side in data["input_shape"]],
        "dtype": "float32",
    }
    if decoded is not None:
        info["decoded"] = decoded
    elif data["kind"] == "files":
        info["image"] = dict(data["transform"])
    if info["kind"] == "files":
        from ginpipe.tasks.load import load_table

        info["path_column"] = bound_value(load_table, "path_column", "path")
    return info


def decoded_input(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """How a file becomes a model input when it is not an image: the decoder, the per-item
    feature function (``extract_features.function`` or ``make_features.item_transform``),
    each as an importable spec with its parameters, and the train mean and std."""
    if data["kind"] == "shards":
        transform = data.get("function")
    elif data["kind"] == "files" and data.get("decoder") is not None:
        transform = data.get("item_transform")
    else:
        return None
    return {
        "decoder": dict(data["decoder"]),
        "transform": dict(transform) if transform else None,
        "normalize": dict(data["normalize"]) if data.get("normalize") else None,
    }


def write_network_bundle(run_dir: Path, record: Mapping[str, Any], data: Mapping[str, Any]) -> Path:
    """Save the trained network of a ``model`` record and what it needs to predict."""
    from safetensors.torch import save_file

    directory = _fresh_dir(run_dir)
    with atomic_path(directory / WEIGHTS) as tmp:
        save_file(dict(record["weights"]), str(tmp))
    network = {
        "factory": record["factory"],
        "kwargs": dict(record["kwargs"]),
        "constructor": constructor_args(record["factory"], record["kwargs"]),
        "weights": WEIGHTS,
        "epochs": int(record.get("epochs", 0)),
        # The Lightning checkpoint is in this run only where fit trained (not a cache hit).
        "best_checkpoint": _own_file(run_dir, record.get("best_checkpoint")),
    }
    files = [WEIGHTS, *_write_preprocessing(directory, data)]
    info = {"kind": "network", "network": network, **_common(data)}
    return _commit(directory, info, files)


def _own_file(run_dir: Path, relative: str | None) -> str | None:
    return relative if relative and (run_dir / relative).is_file() else None


def write_estimator_bundle(run_dir: Path, estimator: Any, data: Mapping[str, Any]) -> Path:
    """Save a fitted scikit-learn estimator (skops format: no pickle) and its inputs."""
    import skops.io

    directory = _fresh_dir(run_dir)
    with atomic_path(directory / ESTIMATOR) as tmp:
        skops.io.dump(estimator, tmp)
    cls = type(estimator)
    info = {
        "kind": "sklearn",
        "estimator": {"class": f"{cls.__module__}.{cls.__qualname__}", "file": ESTIMATOR},
        **_common(data),
    }
    return _commit(directory, info, [ESTIMATOR, *_write_preprocessing(directory, data)])


def _common(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "classes": list(data["classes"]), "input": input_info(data)}


def _fresh_dir(run_dir: Path) -> Path:
    directory = run_dir / MODEL_DIR
    if directory.exists() and not directory.is_dir():
        directory.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _write_preprocessing(directory: Path, data: Mapping[str, Any]) -> list[str]:
    """Write the fitted feature transforms of a tabular run; returns the files written."""
    for old in directory.glob(f"{PREPROCESSING}.*"):
        old.unlink()
    spec = data.get("preprocessing")
    if data["kind"] != "arrays" or spec is None:
        return []
    record = codecs.encode(spec, directory, PREPROCESSING)
    if record is None:
        return []
    (directory / f"{PREPROCESSING}.record.json").write_text(json.dumps(record))
    return [*codecs.record_files(record), f"{PREPROCESSING}.record.json"]


def _commit(directory: Path, info: dict[str, Any], files: list[str]) -> Path:
    info["files"] = {name: file_sha256(directory / name) for name in files}
    atomic_write_json(directory / MODEL_JSON, info)
    for stale in directory.iterdir():  # e.g. weights of a kind the model no longer has
        if stale.name != MODEL_JSON and stale.name not in files and stale.is_file():
            stale.unlink()
    return directory


def constructor_args(factory: str, kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """Every argument the model class was built with: the record's ``kwargs``, the config's
    bindings and the defaults. References to classes or functions become ``{"@": path}``.
    None if an argument is an object that has no such plain form (then the model is rebuilt
    from the run's config.gin)."""
    from ginpipe.tasks.lightning.factories import importable_original

    try:
        configurable = gin.get_configurable(factory)
        bound = gin.get_bindings(factory)
    except ValueError:
        return None
    cls = importable_original(configurable)
    target = cls.__init__ if inspect.isclass(cls) else cls
    args: dict[str, Any] = {}
    for name, parameter in inspect.signature(target).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name in kwargs:
            value = kwargs[name]
        elif name in bound:
            value = bound[name]
        elif parameter.default is not parameter.empty:
            value = parameter.default
        else:
            return None
        plain = _plain(value, importable_original)
        if plain is _UNSAVABLE:
            return None
        args[name] = plain
    return args


_UNSAVABLE = object()


def _plain(value: Any, original: Any) -> Any:
    if isinstance(value, JSON_SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        items = [_plain(item, original) for item in value]
        return _UNSAVABLE if any(item is _UNSAVABLE for item in items) else items
    if inspect.isclass(value) or inspect.isfunction(value):
        found = original(value)
        return {"@": f"{found.__module__}.{found.__qualname__}"}
    return _UNSAVABLE


# --- reading ---------------------------------------------------------------------------------


def _run_status(run_dir: Path) -> str | None:
    try:
        status = json.loads((run_dir / "run.json").read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None
    return status if isinstance(status, str) else None


def read_bundle(run_dir: Path) -> Bundle:
    """The bundle of a run, its files checked; ``ConfigError`` naming what is missing."""
    path = run_dir / MODEL_DIR / MODEL_JSON
    status = _run_status(run_dir)
    if not path.is_file() and status not in (None, "completed"):
        # a failed or interrupted run: its fit (or a step before) has to finish first
        raise ConfigError(
            f"{run_dir} has no model: the run is {status}; continue it with: "
            f"ginpipe resume {run_dir}"
        )
    if not path.is_file():
        raise ConfigError(
            f"{run_dir} has no {MODEL_DIR}/{MODEL_JSON}: its evaluate step has not run (or "
            f"ran under an older ginpipe); write it with: ginpipe resume {run_dir} --rerun evaluate"
        )
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path} is unreadable: {error}") from error
    if info.get("format") != FORMAT:
        raise CheckpointError(f"{path} has format {info.get('format')}, expected {FORMAT}")
    for name, digest in info.get("files", {}).items():
        file = run_dir / MODEL_DIR / name
        if Path(name).name != name or not file.is_file() or file_sha256(file) != digest:
            raise CheckpointError(
                f"{file} is missing or does not match {MODEL_JSON}; rerun evaluate with: "
                f"ginpipe resume {run_dir} --rerun evaluate"
            )
    bundle = Bundle(run_dir, info)
    record_file = run_dir / MODEL_DIR / f"{PREPROCESSING}.record.json"
    if record_file.is_file():
        record = json.loads(record_file.read_text())
        bundle.preprocessing_value = codecs.decode(record, run_dir / MODEL_DIR)
    return bundle
