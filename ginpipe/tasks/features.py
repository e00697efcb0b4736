"""Turn the dataset and its splits into model inputs, fitting every statistic on train only.

Configs pick scikit-learn transformers by name, e.g.
``make_features.transforms = [@StandardScaler()]`` or ``[@StandardScaler(), @PCA()]``;
the classes in ``TRANSFORMERS`` are registered with gin when this module is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ginpipe import ConfigError, DataError, TaskView, task
from ginpipe.tasks.data import callables
from ginpipe.tasks.data.decoders import ImageDecoder
from ginpipe.tasks.data.images import ImageTransform, channel_mean_std, probe_image
from ginpipe.tasks.preprocessing import preprocessing_spec
from ginpipe.tasks.split import SPLIT_NAMES

if TYPE_CHECKING:
    from sklearn.base import TransformerMixin


@task(reads=("dataset", "splits"), writes=("data",))
def make_features(
    state: TaskView,
    *,
    transforms: Sequence[TransformerMixin] = (),
    scale: float = 1.0,
    image_size: Sequence[int] | None = None,
    channels: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    stats_sample: int = 256,
    seed: int = 0,
    item_transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict:
    """The ``data`` key: per-split inputs and labels, plus what the model needs to know.

    Array datasets: values are divided by ``scale`` (digits pixels run 0..16), then the
    ``transforms`` are fitted on the train rows and applied to every split. Image-shaped
    inputs keep their shape unless a transform changes the width (PCA makes them flat).

    File datasets: nothing is decoded for all items; the per-item transform is stored as a
    JSON spec. ``image_size`` [H, W] and ``channels`` default to the first train image's;
    ``mean``/``std`` default to per-channel estimates from ``stats_sample`` train images
    (chosen with ``seed``). Pass ``mean=[0.0], std=[1.0]`` to keep pixels in [0, 1].

    Files with another decoder (audio, ``.npy``, the user's; see ``load_table.decoder``)
    are decoded per item in the workers too, then ``item_transform(array)`` is applied if
    set (e.g. ``@log_mel()``: computed every epoch; ``extract_features`` computes it once
    instead). ``mean``/``std`` are then one value each, estimated like the images'.
    """
    dataset, splits = state["dataset"], state["splits"]
    classes = list(dataset["classes"])
    if dataset["kind"] == "files":
        if transforms:
            raise ConfigError(
                "make_features.transforms applies to array datasets; image files are "
                "normalized with make_features.mean/std"
            )
        decoder = dataset.get("decoder")
        if decoder is not None and callables.resolve(decoder["target"]) is not ImageDecoder:
            data = _decoded_features(dataset, splits, item_transform, mean, std, stats_sample, seed)
        else:
            if item_transform is not None:
                raise ConfigError(
                    "make_features.item_transform applies to decoded files; images are resized "
                    "and normalized with make_features.image_size/mean/std"
                )
            if decoder is not None:  # image_decoder(size, channels) sets the defaults
                image_size = image_size or decoder["kwargs"].get("size")
                channels = channels or decoder["kwargs"].get("channels")
            data = _file_features(
                dataset, splits, image_size, channels, mean, std, stats_sample, seed
            )
    else:
        data = _array_features(dataset, splits, transforms, scale)
    return {"data": {**data, "classes": classes, "num_classes": len(classes)}}


def _array_features(
    dataset: dict, splits: dict, transforms: Sequence[TransformerMixin], scale: float
) -> dict[str, Any]:
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    if scale == 0:
        raise ConfigError("make_features.scale is a divisor and must not be 0")
    for transform in transforms:
        if not hasattr(transform, "fit") or not hasattr(transform, "transform"):
            raise ConfigError(
                f"make_features.transforms: {type(transform).__name__} is not a transformer "
                "(it needs fit and transform)"
            )
    features = np.asarray(dataset["X"], dtype=np.float32)
    sample_shape = list(features.shape[1:])
    flat = features.reshape(len(features), -1) / np.float32(scale)
    labels = np.asarray(dataset["y"], dtype=np.int64)

    # clone: the configured instances stay unfitted, so a rerun starts from the same state.
    clones = [clone(transform) for transform in transforms]
    pipeline = make_pipeline(*clones) if clones else FunctionTransformer()  # identity
    pipeline.fit(flat[splits["train"]])

    data: dict[str, Any] = {"kind": "arrays"}
    for name in SPLIT_NAMES:
        rows = flat[splits[name]]
        if len(rows):  # scikit-learn refuses to transform zero rows (an empty val split)
            rows = pipeline.transform(rows)
        data[name] = {
            "X": np.asarray(rows, dtype=np.float32),
            "y": labels[splits[name]],
            "row": np.asarray(splits[name], dtype=np.int64),  # rows of the dataset, for reports
        }

    width = data["train"]["X"].shape[1]
    keeps_shape = width == flat.shape[1]
    input_shape = sample_shape if keeps_shape else [width]
    for name in SPLIT_NAMES:
        data[name]["X"] = data[name]["X"].reshape(-1, *input_shape)
    data["input_shape"] = input_shape
    # What prediction applies to new raw items (see ginpipe.tasks.preprocessing).
    data["preprocessing"] = preprocessing_spec(
        sample_shape, scale, clones, dataset.get("feature_names")
    )
    return data


def _file_features(
    dataset: dict,
    splits: dict,
    image_size: Sequence[int] | None,
    channels: int | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    stats_sample: int,
    seed: int,
) -> dict[str, Any]:
    table = dataset["table"]
    paths = table["path"].to_numpy(dtype=str)
    labels = table["y"].to_numpy(dtype=np.int64)
    train_paths = paths[splits["train"]]

    first_size, first_channels = probe_image(str(train_paths[0]))
    size = tuple(int(side) for side in image_size) if image_size is not None else first_size
    channels = channels if channels is not None else first_channels
    if mean is None or std is None:
        if stats_sample < 1:
            raise ConfigError(f"make_features.stats_sample must be at least 1, got {stats_sample}")
        rng = np.random.default_rng(seed)
        count = min(stats_sample, len(train_paths))
        sample = rng.choice(train_paths, size=count, replace=False)
        estimated_mean, estimated_std = channel_mean_std(sample, size, channels)
        mean = estimated_mean if mean is None else mean
        std = estimated_std if std is None else std
    transform = ImageTransform(size, channels, tuple(map(float, mean)), tuple(map(float, std)))

    data: dict[str, Any] = {"kind": "files"}
    for name in SPLIT_NAMES:
        data[name] = {"path": paths[splits[name]], "y": labels[splits[name]]}
    data["input_shape"] = [channels, *size]
    data["transform"] = transform.to_spec()
    return data


def _decoded_features(
    dataset: dict,
    splits: dict,
    item_transform: Callable[[np.ndarray], np.ndarray] | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    stats_sample: int,
    seed: int,
) -> dict[str, Any]:
    """Decoder and transform as specs for the workers; shape and scalar statistics from a
    sample of train items decoded here."""
    table = dataset["table"]
    paths = table["path"].to_numpy(dtype=str)
    labels = table["y"].to_numpy(dtype=np.int64)
    transform = (
        callables.to_spec(item_transform, "make_features.item_transform")
        if item_transform is not None
        else None
    )
    train_paths = paths[splits["train"]]
    if stats_sample < 1:
        raise ConfigError(f"make_features.stats_sample must be at least 1, got {stats_sample}")
    count = min(stats_sample, len(train_paths))
    sample = np.random.default_rng(seed).choice(train_paths, size=count, replace=False)
    from ginpipe.tasks.data.decoded_files import DecodedFileDataset  # torch: run time only

    probe = DecodedFileDataset(sample, np.zeros(count, np.int64), dataset["decoder"], transform)
    items = [probe.item(index) for index in range(count)]
    shape = items[0].shape
    for path, item in zip(sample, items, strict=True):
        if item.shape != shape:
            raise DataError(
                f"decoded items differ in shape: '{sample[0]}' gives {list(shape)}, '{path}' "
                f"gives {list(item.shape)}; every item needs one shape (for audio: "
                "audio_decoder.duration)"
            )
    values = np.concatenate([item.ravel() for item in items]).astype(np.float64)
    estimated_std = float(values.std()) or 1.0
    normalize = {
        "mean": float(mean[0]) if mean is not None else float(values.mean()),
        "std": float(std[0]) if std is not None else estimated_std,
    }
    if normalize["std"] <= 0:
        raise ConfigError(f"make_features.std must be positive, got {normalize['std']}")

    data: dict[str, Any] = {"kind": "files"}
    for name in SPLIT_NAMES:
        data[name] = {"path": paths[splits[name]], "y": labels[splits[name]]}
    data["input_shape"] = list(shape)
    data["decoder"] = dict(dataset["decoder"])
    data["item_transform"] = transform
    data["normalize"] = normalize
    return data
