"""``ginpipe export``: a run's network as ONNX or TorchScript, checked against ``predict``.

The exported graph includes what the run's preprocessing does to tensors -- the images'
mean/std normalization, or the feature scaling and fitted affine transforms (standard,
robust and max-abs scalers, PCA) -- and ends in a softmax, so it maps raw inputs to class
probabilities. What it cannot include (decoding and resizing image files) is listed in a
JSON file beside it, with the input shape, dtype and class names. Before the file is put
in place, the exported model is run on the run's test items and must give the classes of
``predict`` and probabilities within ``TOLERANCE`` of it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ginpipe.base.atomic import atomic_path, atomic_write_json
from ginpipe.base.errors import ConfigError, GinpipeError
from ginpipe.base.install import install_line
from ginpipe.inference.inputs import Items
from ginpipe.inference.outputs import check_output
from ginpipe.inference.predictor import Predictor
from ginpipe.inference.run_split import split_items
from ginpipe.tasks.data import callables
from ginpipe.tasks.data.decoded_files import DecodedFileDataset
from ginpipe.tasks.data.images import read_pixels

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
ONNX_MODULES = ("onnx", "onnxscript", "onnxruntime")
TOLERANCE = 1e-4
INPUT_NAME, OUTPUT_NAME = "input", "probabilities"


class ExportCheckFailed(GinpipeError):
    """The exported model does not reproduce ``predict``; nothing was written."""


class WithPreprocessing(nn.Module):
    """``softmax(network(preprocess(x)))`` with the preprocessing as tensor operations."""

    mean: Tensor  # buffers, registered in __init__
    std: Tensor
    weight: Tensor
    bias: Tensor

    def __init__(
        self,
        network: nn.Module,
        input_shape: list[int],
        mean: Tensor | None = None,
        std: Tensor | None = None,
        weight: Tensor | None = None,
        bias: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.input_shape = list(input_shape)
        self.normalize = mean is not None
        self.affine = weight is not None
        self.register_buffer("mean", mean if mean is not None else torch.zeros(1))
        self.register_buffer("std", std if std is not None else torch.ones(1))
        self.register_buffer("weight", weight if weight is not None else torch.zeros(1))
        self.register_buffer("bias", bias if bias is not None else torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        if self.normalize:
            x = (x - self.mean) / self.std
        if self.affine:
            x = (x.reshape(x.shape[0], -1) @ self.weight + self.bias).reshape(
                [-1, *self.input_shape]
            )
        return torch.softmax(self.network(x), dim=1)


@dataclass
class Prepared:
    """The module to export, the shape of one input, and what the sidecar says."""

    module: nn.Module  # raw input -> class probabilities
    item_shape: list[int]
    included: list[str]
    not_included: list[str]
    to_export_input: Any  # Items -> batches of exported-model inputs (np.float32)


def prepare(predictor: Predictor, example: str | None = None) -> Prepared:
    """Fold the run's tensor preprocessing into the network. ``example``: one of the run's
    files, decoded to learn the shape of a decoded item."""
    bundle = predictor.bundle
    if bundle.kind != "network":
        raise ConfigError(
            "export supports networks; this run's model is a scikit-learn estimator "
            "(use ginpipe predict or ginpipe.load_run)"
        )
    network, shape = predictor.model, bundle.input_shape
    if predictor.image is not None:
        image = predictor.image
        channels = [-1, 1, 1]
        module = WithPreprocessing(
            network,
            shape,
            mean=torch.tensor(image.mean, dtype=torch.float32).reshape(channels),
            std=torch.tensor(image.std, dtype=torch.float32).reshape(channels),
        )
        mode = "grayscale (L)" if image.channels == 1 else "RGB"
        not_included = [
            f"decode the image file, convert it to {mode}, resize it to "
            f"{image.size[0]}x{image.size[1]} (height x width, bilinear), divide by 255: "
            "the input is pixels in [0, 1], channels first"
        ]
        return Prepared(
            module, shape, ["normalization by the run's mean and std"], not_included,
            lambda paths: _pixels(paths, image.size, image.channels),
        )  # fmt: skip
    if predictor.decoded is not None:
        return _prepare_decoded(predictor, network, shape, example)
    features = predictor.features
    if features is None:
        return Prepared(
            WithPreprocessing(network, shape),
            shape,
            [],
            ["the run's feature preprocessing (it could not be saved): the input is features"],
            None,
        )
    affine = features.affine()
    if affine is None:
        return Prepared(
            WithPreprocessing(network, shape),
            shape,
            [],
            [f"feature preprocessing: {', '.join(features.describe())}; the input is its output"],
            lambda raw: features(raw),
        )
    weight, bias = (torch.tensor(a, dtype=torch.float32) for a in affine)
    module = WithPreprocessing(network, shape, weight=weight, bias=bias)
    included = [f"feature preprocessing: {', '.join(features.describe()) or 'none'}"]
    raw_shape = features.raw_shape  # the exported input is a raw item, as predict reads it
    return Prepared(
        module, raw_shape, included, [],
        lambda raw: np.asarray(raw, dtype=np.float32).reshape(len(raw), *raw_shape),
    )  # fmt: skip


def _prepare_decoded(
    predictor: Predictor, network: nn.Module, shape: list[int], example: str | None
) -> Prepared:
    """Decoded files (audio, a user's decoder). The train normalization is folded in; so is
    the feature function when it can be a module (``as_module``: log-mel, MFCC) and the
    decoder gives items of one shape, and then the exported input is the decoded item (the
    waveform). Otherwise the input is the feature function's output, and the sidecar says
    why."""
    decoded = predictor.decoded or {}
    normalize = decoded.get("normalize")
    mean = std = None
    if normalize:
        mean = torch.tensor(float(normalize["mean"]), dtype=torch.float32)
        std = torch.tensor(float(normalize["std"]), dtype=torch.float32)
    decoding = f"decode the file with {_described(decoded['decoder'])}"
    included = ["normalization by the run's train mean and std"] if normalize else []
    head = WithPreprocessing(network, shape, mean=mean, std=std)
    transform = decoded.get("transform")
    feature_module, reason = _feature_module(decoded, example)
    if transform and feature_module is not None and example is not None:
        item_shape = list(_decode(decoded, example).shape)
        module = nn.Sequential(feature_module, head)
        included.insert(0, f"the features: {_described(transform)}")
        not_included = [f"{decoding}: the input is its output (the waveform), float32"]
        return Prepared(module, item_shape, included, not_included, _decoder_output(decoded))
    steps = [decoding] + ([f"apply {_described(transform)}"] if transform else [])
    not_included = [f"{', then '.join(steps)}: the input is its output, float32"]
    if transform and reason:
        not_included.append(f"the features are not in the graph: {reason}")
    return Prepared(head, shape, included, not_included, _decoder_output(decoded, transform))


def _feature_module(decoded: dict[str, Any], example: str | None) -> tuple[Any, str]:
    """The feature function as a module on a batch of decoded items, or why it cannot be."""
    transform = decoded.get("transform")
    if not transform:
        return None, ""
    as_module = getattr(callables.from_spec(transform), "as_module", None)
    if as_module is None:
        return None, f"{transform.get('target')} has no as_module() giving torch operations"
    decoder = callables.from_spec(decoded["decoder"])
    if getattr(decoder, "num_samples", None) is None or example is None:
        return None, "the decoder gives items of varying length (set a fixed duration)"
    return as_module(), ""


def _decode(decoded: dict[str, Any], path: str) -> np.ndarray:
    return np.asarray(callables.from_spec(decoded["decoder"])(path), dtype=np.float32)


def _decoder_output(decoded: dict[str, Any], transform: Any = None) -> Any:
    """Paths -> the exported model's input: decoded items, then the transform if given."""

    def inputs(paths: np.ndarray) -> np.ndarray:
        files = DecodedFileDataset(
            paths, np.zeros(len(paths), np.int64), decoded["decoder"], transform
        )
        return np.stack([files.item(index) for index in range(len(paths))])

    return inputs


def _described(spec: dict[str, Any]) -> str:
    """``ginpipe.tasks.data.decoders.AudioDecoder(sample_rate=16000, ...)`` from a spec."""
    arguments = ", ".join(f"{k}={v!r}" for k, v in (spec.get("kwargs") or {}).items())
    return f"{spec.get('target', '?')}({arguments})"


def _pixels(paths: np.ndarray, size: tuple[int, ...], channels: int) -> np.ndarray:
    return np.stack([read_pixels(str(path), size, channels) for path in paths])


def export_run(
    run_dir: Path,
    fmt: str,
    output: Path | None = None,
    verify_items: int = 512,
) -> str:
    """Export, verify on up to ``verify_items`` test items, then write file and sidecar."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "onnx":
        require_onnx()
    output = output or Path(f"model{SUFFIXES[fmt]}")
    sidecar = output.with_name(output.name + ".json")
    check_output(output, run_dir)
    check_output(sidecar, run_dir)
    predictor = Predictor(run_dir)
    items = split_items(predictor.bundle, "test")
    first = str(items.paths[0]) if items.paths is not None and len(items.paths) else None
    prepared = prepare(predictor, first)
    prepared.module.eval()
    items = Items(
        identifiers=items.identifiers[:verify_items],
        paths=None if items.paths is None else items.paths[:verify_items],
        raw=None if items.raw is None else items.raw[:verify_items],
    )
    example = torch.zeros(2, *prepared.item_shape)
    with atomic_path(output) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' deprecation notes are not the user's
        if fmt == "onnx":
            _export_onnx(prepared.module, example, tmp)
            run_exported = _onnx_runner(tmp)
        else:
            _export_torchscript(prepared.module, example, tmp)
            run_exported = _torchscript_runner(tmp)
        difference = verify(predictor, prepared, items, run_exported)
    atomic_write_json(sidecar, _sidecar(predictor, prepared, fmt, output, difference, len(items)))
    return (
        f"wrote {output} and {sidecar.name}; checked on {len(items)} test items: same classes, "
        f"probabilities within {difference:.1e} of predict"
    )


def require_onnx() -> None:
    missing = [name for name in ONNX_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"ONNX export needs {', '.join(missing)}: {install_line('onnx')}")


def _export_onnx(module: nn.Module, example: Tensor, path: Path) -> None:
    batch = torch.export.Dim("batch")
    # The exporter prints its progress, and warns that torchvision's operators are skipped:
    # torchvision is no dependency, and a user can do nothing about it.
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            program = torch.onnx.export(
                module,
                (example,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},),
                dynamo=True,
                external_data=False,
            )
    finally:
        registration.setLevel(level)
    assert program is not None  # the dynamo exporter always returns its program
    _write(path, program.model_proto.SerializeToString())


def _write(path: Path, data: bytes) -> None:
    """The exported bytes, written by Python: a full disk is an ``OSError`` (one line, exit
    4), where torch's own writers abort the process from C++."""
    with open(path, "wb") as file:
        file.write(data)


def _onnx_runner(path: Path) -> Any:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]


def _export_torchscript(module: nn.Module, example: Tensor, path: Path) -> None:
    # The tracer probes every attribute of every submodule; a LightningModule's ``trainer``
    # raises outside a Trainer unless Lightning's own flag for tracing is set, as its
    # ``to_torchscript`` sets it.
    from pytorch_lightning.core.module import _jit_is_scripting

    with torch.no_grad(), _jit_is_scripting():
        traced = torch.jit.trace(module, example)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    _write(path, buffer.getvalue())


def _torchscript_runner(path: Path) -> Any:
    loaded = torch.jit.load(str(path), map_location="cpu")

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return loaded(torch.from_numpy(x)).numpy()

    return run


def verify(predictor: Predictor, prepared: Prepared, items: Items, run_exported: Any) -> float:
    """The largest probability difference from ``predict``; raises if a class differs."""
    if prepared.to_export_input is None:
        raise ExportCheckFailed("cannot check the export: the run saved no preprocessing")
    worst, start = 0.0, 0
    for _, expected in predictor.batches(items, batch_size=128):
        stop = start + len(expected)
        source = items.paths if items.paths is not None else items.raw
        assert source is not None  # Items holds one of the two
        inputs = np.ascontiguousarray(prepared.to_export_input(source[start:stop]), np.float32)
        got = np.asarray(run_exported(inputs), dtype=np.float64)
        if not np.array_equal(got.argmax(axis=1), expected.argmax(axis=1)):
            raise ExportCheckFailed("the exported model predicts other classes than predict")
        worst = max(worst, float(np.abs(got - expected).max()))
        start = stop
    if worst > TOLERANCE:
        raise ExportCheckFailed(
            f"the exported model's probabilities differ from predict by {worst:.2e} "
            f"(more than {TOLERANCE:g})"
        )
    return worst


def _sidecar(
    predictor: Predictor,
    prepared: Prepared,
    fmt: str,
    output: Path,
    difference: float,
    checked: int,
) -> dict[str, Any]:
    classes = predictor.classes
    return {
        "format": fmt,
        "file": output.name,
        "run": predictor.bundle.run_dir.name,
        "input": {"name": INPUT_NAME, "shape": ["batch", *prepared.item_shape], "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", len(classes)], "dtype": "float32"},
        "classes": classes,
        "preprocessing_included": prepared.included,
        "preprocessing_not_included": prepared.not_included,
        "verified": {
            "items": checked,
            "split": "test",
            "same_classes": True,
            "max_probability_difference": difference,
        },
    }
