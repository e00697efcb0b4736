"""Decoders: one file in, one float32 array out, called as ``decoder(path) -> np.ndarray``.

They run per item in DataLoader workers and feature-extraction workers, so each is a plain
frozen dataclass rebuilt there from its JSON spec (``ginpipe.tasks.data.callables``), never
from gin. Configs build them with the gin factories at the bottom
(``load_table.decoder = @audio_decoder()``); any importable function with the same
signature works as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Any, Literal, cast

import gin
import numpy as np

from ginpipe import ConfigError, DataError
from ginpipe.tasks.data.images import read_pixels

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
# What libsndfile reads on every platform soundfile ships wheels for.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif")
ARRAY_EXTENSIONS = (".npy",)
PadMode = Literal["constant", "wrap", "reflect"]
PAD_MODES = ("constant", "wrap", "reflect")


@dataclass(frozen=True)
class ImageDecoder:
    """An image as (channels, height, width) float32 in [0, 1] via Pillow.

    ``size`` [H, W] resizes; ``channels`` 1 or 3 converts. Both default to the file's own,
    which only suits extraction when every image already has the same shape.
    """

    size: Sequence[int] | None = None
    channels: int | None = None

    def __call__(self, path: str) -> np.ndarray:
        if self.size is None or self.channels is None:
            from ginpipe.tasks.data.images import probe_image

            size, channels = probe_image(path)
            return read_pixels(path, self.size or size, self.channels or channels)
        return read_pixels(path, self.size, self.channels)


@dataclass(frozen=True)
class AudioDecoder:
    """An audio file (WAV, FLAC, OGG...) as (channels, samples) float32 in [-1, 1].

    Args:
        sample_rate: the rate the output must have; None keeps each file's own.
        resample: convert a file of another rate (polyphase filter, scipy); without it a
            mismatch is an error, so a mixed-rate dataset is never silently misread.
        mono: average the channels into one (the output is (1, samples)).
        duration: seconds to crop or pad every item to (needs ``sample_rate``); None keeps
            the length. Longer items are cut at ``offset``; shorter ones padded at the end.
        offset: where the crop starts, in seconds.
        pad_mode: ``constant`` (zeros), ``wrap`` (repeat) or ``reflect``.
    """

    sample_rate: int | None = None
    resample: bool = False
    mono: bool = True
    duration: float | None = None
    offset: float = 0.0
    pad_mode: str = "constant"

    def __post_init__(self) -> None:
        if self.pad_mode not in PAD_MODES:
            raise ConfigError(f"audio_decoder.pad_mode must be one of {', '.join(PAD_MODES)}")
        if self.duration is not None and self.sample_rate is None:
            raise ConfigError("audio_decoder.duration needs audio_decoder.sample_rate")
        if self.duration is not None and self.duration <= 0:
            raise ConfigError(f"audio_decoder.duration must be positive, got {self.duration}")
        if self.resample and self.sample_rate is None:
            raise ConfigError("audio_decoder.resample needs audio_decoder.sample_rate")

    @property
    def num_samples(self) -> int | None:
        if self.duration is None or self.sample_rate is None:
            return None
        return round(self.duration * self.sample_rate)

    def __call__(self, path: str) -> np.ndarray:
        import soundfile

        try:
            samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
            raise DataError(f"cannot read audio '{path}': {error}") from error
        if samples.shape[0] == 0:
            raise DataError(f"audio '{path}' is empty (0 samples)")
        audio = samples.T  # (channels, samples)
        if self.mono and audio.shape[0] > 1:
            audio = audio.mean(axis=0, keepdims=True)
        if self.sample_rate is not None and rate != self.sample_rate:
            if not self.resample:
                raise DataError(
                    f"audio '{path}' has sample rate {rate} Hz, expected {self.sample_rate}; "
                    "set audio_decoder.resample = True to convert it"
                )
            audio = _resample(audio, rate, self.sample_rate)
        if self.num_samples is not None:
            start = round(self.offset * (self.sample_rate or rate))
            pad_mode = cast(PadMode, self.pad_mode)  # __post_init__ checked it is one
            audio = crop_or_pad(audio[:, start:], self.num_samples, pad_mode)
        return np.ascontiguousarray(audio, dtype=np.float32)


@dataclass(frozen=True)
class NpyDecoder:
    """A ``.npy`` array (never unpickled) as float32."""

    def __call__(self, path: str) -> np.ndarray:
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            raise DataError(f"cannot read array '{path}': {error}") from error
        if not np.issubdtype(array.dtype, np.number) and array.dtype != np.bool_:
            raise DataError(f"array '{path}' is not numeric ({array.dtype})")
        return np.asarray(array, dtype=np.float32)


def crop_or_pad(audio: np.ndarray, length: int, pad_mode: PadMode = "constant") -> np.ndarray:
    """(channels, samples) cut or padded at the end to exactly ``length`` samples."""
    if audio.shape[1] >= length:
        return audio[:, :length]
    missing = length - audio.shape[1]
    if audio.shape[1] == 0:
        return np.zeros((audio.shape[0], length), dtype=audio.dtype)
    if pad_mode == "reflect" and audio.shape[1] < 2:
        pad_mode = "wrap"  # reflecting needs two samples
    if pad_mode == "reflect":
        # numpy reflects at most once per call: repeat until long enough
        while audio.shape[1] < length:
            more = min(length - audio.shape[1], audio.shape[1] - 1)
            audio = np.pad(audio, ((0, 0), (0, more)), mode="reflect")
        return audio
    if pad_mode == "constant":  # the same zeros; np.pad's own cost was ~27 µs an item
        padded = np.zeros((audio.shape[0], length), dtype=audio.dtype)
        padded[:, : audio.shape[1]] = audio
        return padded
    return np.pad(audio, ((0, 0), (0, missing)), mode=pad_mode)


def _resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    from scipy.signal import resample_poly

    divisor = gcd(int(rate), int(target))
    resampled = resample_poly(audio, target // divisor, rate // divisor, axis=1)
    return resampled.astype(np.float32)


def decoder_for(paths: Sequence[str], source: str) -> Any | None:
    """The default decoder for files of one kind, by extension: None for images (the
    image pipeline of make_features), else an audio or ``.npy`` decoder."""
    kinds = {_kind(Path(path).suffix.lower()) for path in paths}
    if len(kinds) > 1:
        raise DataError(
            f"{source} mixes file kinds ({', '.join(sorted(kinds))}); set a decoder or "
            "narrow the extensions"
        )
    kind = kinds.pop() if kinds else "image"
    return {"image": None, "audio": AudioDecoder(), "array": NpyDecoder()}.get(kind)


def _kind(suffix: str) -> str:
    if suffix in AUDIO_EXTENSIONS:
        return "audio"
    if suffix in ARRAY_EXTENSIONS:
        return "array"
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    return "other"


# --- gin factories: called in the main process, they return plain picklable objects -----


@gin.configurable
def audio_decoder(
    sample_rate: int | None = None,
    resample: bool = False,
    mono: bool = True,
    duration: float | None = None,
    offset: float = 0.0,
    pad_mode: str = "constant",
) -> AudioDecoder:
    """Decode audio with soundfile: target rate, mono mix-down, fixed-length crop/pad."""
    return AudioDecoder(sample_rate, resample, mono, duration, offset, pad_mode)


@gin.configurable
def image_decoder(size: Sequence[int] | None = None, channels: int | None = None) -> ImageDecoder:
    """Decode images with Pillow to (channels, H, W) in [0, 1], resized to ``size``."""
    return ImageDecoder(tuple(size) if size is not None else None, channels)


@gin.configurable
def npy_decoder() -> NpyDecoder:
    """Load ``.npy`` arrays (no pickle) as float32."""
    return NpyDecoder()
