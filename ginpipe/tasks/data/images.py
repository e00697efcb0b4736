"""Decode image files into normalized CHW float32 arrays, one item at a time.

Everything here is plain data plus Pillow and NumPy (no torch: composing a config that only
names these stays torch-free); the torch Dataset over them is in ``image_dataset.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ginpipe import ConfigError, DataError

GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})


@dataclass(frozen=True)
class ImageTransform:
    """How one image file becomes a model input: resize, pick channels, normalize.

    The JSON form (``to_spec``) is what the ``data`` state key stores as ``transform``.
    """

    size: tuple[int, ...]  # (height, width), as configured: not checked to be a pair
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ConfigError(f"image channels must be 1 or 3, got {self.channels}")
        if len(self.size) != 2 or min(self.size) < 1:
            raise ConfigError(f"image size must be [height, width], got {list(self.size)}")
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) != self.channels:
                raise ConfigError(
                    f"image {name} needs one value per channel ({self.channels}), got "
                    f"{list(values)}"
                )
        if min(self.std) <= 0:
            raise ConfigError(f"image std must be positive, got {list(self.std)}")

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> ImageTransform:
        return cls(
            size=tuple(int(side) for side in spec["size"]),
            channels=int(spec["channels"]),
            mean=tuple(float(value) for value in spec["mean"]),
            std=tuple(float(value) for value in spec["std"]),
        )

    def to_spec(self) -> dict[str, Any]:
        return {
            "size": list(self.size),
            "channels": self.channels,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def __call__(self, path: str) -> np.ndarray:
        pixels = read_pixels(path, self.size, self.channels)
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        return (pixels - mean) / std


def read_pixels(path: str, size: Sequence[int], channels: int) -> np.ndarray:
    """The image as (channels, height, width) float32 in [0, 1], resized to ``size``."""
    height, width = size
    mode = "L" if channels == 1 else "RGB"
    try:
        with Image.open(path) as opened:
            opened.draft(mode, (width, height))  # JPEGs decode at a reduced scale: much faster
            image = opened.convert(mode)
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, ValueError) as error:  # Pillow's "cannot identify image" is an OSError
        raise DataError(f"cannot read image '{path}': {error}") from error
    return pixels[np.newaxis] if channels == 1 else pixels.transpose(2, 0, 1)


def probe_image(path: str) -> tuple[tuple[int, int], int]:
    """(height, width) and channel count (1 for grayscale modes, else 3) from the header."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            return (height, width), 1 if image.mode in GRAY_MODES else 3
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read image '{path}': {error}") from error


def channel_mean_std(
    paths: Iterable[str], size: Sequence[int], channels: int
) -> tuple[list[float], list[float]]:
    """Per-channel pixel mean and std over ``paths`` (in [0, 1] units, after resizing)."""
    total = np.zeros(channels)
    total_squares = np.zeros(channels)
    count = 0
    for path in paths:
        pixels = read_pixels(path, size, channels).reshape(channels, -1).astype(np.float64)
        total += pixels.sum(axis=1)
        total_squares += (pixels**2).sum(axis=1)
        count += pixels.shape[1]
    mean = total / count
    std = np.sqrt(np.maximum(total_squares / count - mean**2, 0.0))
    std[std == 0] = 1.0  # constant images: leave the scale alone rather than divide by zero
    return mean.tolist(), std.tolist()
