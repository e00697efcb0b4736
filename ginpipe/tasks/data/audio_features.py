"""Log-mel spectrograms and MFCCs with ``torch.stft`` (torchaudio is not a dependency).

The definitions follow librosa's defaults, and tests/tasks/test_audio_features.py checks
them against librosa: periodic Hann window, centred frames padded with zeros, power 2,
Slaney-style mel scale and area normalization, ``10 * log10(max(S, amin))`` with a
``top_db`` floor below the item's peak, and an orthonormal DCT-II for the MFCCs.

Each feature is a frozen dataclass called as ``feature(audio) -> np.ndarray`` on an array
of shape (..., samples): plain data, so it pickles into worker processes and its fields
are the parameters that key the per-item cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

import gin
import numpy as np
import torch

from ginpipe import ConfigError, Positive

AMIN = 1e-10  # floor before the logarithm (librosa's power_to_db default)


@dataclass(frozen=True)
class LogMel:
    """(..., samples) audio -> (..., n_mels, frames) log-mel power in dB."""

    sample_rate: Annotated[int, Positive] = 16000
    n_fft: Annotated[int, Positive] = 512
    hop_length: Annotated[int, Positive] = 256
    win_length: Annotated[int, Positive] | None = None
    n_mels: Annotated[int, Positive] = 64
    f_min: float = 0.0
    f_max: float | None = None
    power: float = 2.0
    top_db: float | None = 80.0

    def __post_init__(self) -> None:
        f_max = self.f_max if self.f_max is not None else self.sample_rate / 2
        if not 0 <= self.f_min < f_max <= self.sample_rate / 2:
            raise ConfigError(
                f"log_mel needs 0 <= f_min < f_max <= sample_rate / 2, got f_min={self.f_min}, "
                f"f_max={f_max}, sample_rate={self.sample_rate}"
            )
        if (self.win_length or self.n_fft) > self.n_fft or self.hop_length < 1:
            raise ConfigError("log_mel needs win_length <= n_fft and hop_length >= 1")

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        return self.db(self.mel_power(torch.as_tensor(np.asarray(audio, np.float32)))).numpy()

    @property
    def window(self) -> torch.Tensor:
        return torch.hann_window(self.win_length or self.n_fft, periodic=True)

    @property
    def filters(self) -> torch.Tensor:
        bank = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, self.f_min, self.f_max)
        return torch.from_numpy(bank.copy())

    def mel_power(self, audio: torch.Tensor) -> torch.Tensor:
        """Mel power spectrogram (..., n_mels, frames), before the logarithm."""
        power = self.spectrum(audio).abs().pow(self.power)
        mel = torch.matmul(self.filters.to(power.dtype), power)
        return mel.reshape(*audio.shape[:-1], self.n_mels, mel.shape[-1])

    def spectrum(self, audio: torch.Tensor) -> torch.Tensor:
        """The complex short-time spectrum (items, bins, frames), items flattened from
        ``audio``'s leading dimensions."""
        return torch.stft(
            audio.reshape(-1, audio.shape[-1]),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length or self.n_fft,
            window=self.window.to(audio.dtype),
            center=True,
            pad_mode="constant",
            return_complex=True,
        )

    def db(self, power: torch.Tensor, items_first: bool = False) -> torch.Tensor:
        """10 * log10(power), floored ``top_db`` below the item's maximum. With
        ``items_first`` the first dimension counts items, each floored below its own peak
        (one item per call gives the same numbers)."""
        decibels = 10.0 * torch.log10(torch.clamp(power, min=AMIN))
        if self.top_db is None:
            return decibels
        if items_first:
            peak = decibels.amax(dim=tuple(range(1, decibels.dim())), keepdim=True)
        else:
            peak = decibels.max()
        return torch.maximum(decibels, peak - self.top_db)

    def as_module(self) -> torch.nn.Module:
        """This feature as a module on a batch of decoded items, so that ``ginpipe export``
        can put it into the graph (ONNX has an STFT operator): the deployed model takes
        the waveform."""
        return LogMelModule(self)


@dataclass(frozen=True)
class MFCC:
    """(..., samples) audio -> (..., n_mfcc, frames): DCT-II (orthonormal) of the log-mel."""

    n_mfcc: Annotated[int, Positive] = 20
    sample_rate: Annotated[int, Positive] = 16000
    n_fft: Annotated[int, Positive] = 512
    hop_length: Annotated[int, Positive] = 256
    n_mels: Annotated[int, Positive] = 64
    f_min: float = 0.0
    f_max: float | None = None
    top_db: float | None = 80.0

    def __post_init__(self) -> None:
        if not 1 <= self.n_mfcc <= self.n_mels:
            raise ConfigError(
                f"mfcc.n_mfcc must be in 1..n_mels ({self.n_mels}), got {self.n_mfcc}"
            )

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        mel = self.log_mel
        log_mel = mel.db(mel.mel_power(torch.as_tensor(np.asarray(audio, np.float32))))
        return torch.matmul(self.basis.to(log_mel.dtype), log_mel).numpy()

    @property
    def log_mel(self) -> LogMel:
        return LogMel(
            self.sample_rate, self.n_fft, self.hop_length, None, self.n_mels, self.f_min,
            self.f_max, 2.0, self.top_db,
        )  # fmt: skip

    @property
    def basis(self) -> torch.Tensor:
        return torch.from_numpy(dct_matrix(self.n_mels)[: self.n_mfcc].copy())

    def as_module(self) -> torch.nn.Module:
        """See ``LogMel.as_module``."""
        return LogMelModule(self.log_mel, basis=self.basis)


class LogMelModule(torch.nn.Module):
    """(batch, ..., samples) -> (batch, ..., n_mels or n_mfcc, frames): ``LogMel`` (and the
    DCT of ``MFCC``) on each item of a batch, with every constant held as a buffer so that
    an exporter sees constants.

    The spectrum is a strided convolution with the windowed DFT basis rather than
    ``torch.stft``: the same numbers within float32 rounding, exported as a Conv, which
    onnxruntime runs several times faster than its STFT operator (benchmarks/RESULTS.md,
    "Prediction from audio files")."""

    dft: torch.Tensor
    filters: torch.Tensor
    basis: torch.Tensor

    def __init__(self, feature: LogMel, basis: torch.Tensor | None = None) -> None:
        super().__init__()
        self.feature = feature
        self.register_buffer("dft", dft_kernels(feature.n_fft, feature.win_length))
        self.register_buffer("filters", feature.filters)
        self.dct = basis is not None
        self.register_buffer("basis", basis if basis is not None else torch.zeros(1))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        feature = self.feature
        leading, samples = audio.shape[:-1], audio.shape[-1]
        half = feature.n_fft // 2  # centred frames, zero padding, as LogMel's stft
        padded = torch.nn.functional.pad(audio.reshape(-1, 1, samples), (half, half))
        parts = torch.nn.functional.conv1d(padded, self.dft, stride=feature.hop_length)
        bins = half + 1
        power = parts[:, :bins] ** 2 + parts[:, bins:] ** 2
        if feature.power != 2.0:
            power = power ** (feature.power / 2.0)
        mel = torch.matmul(self.filters, power)
        mel = mel.reshape(*leading, feature.n_mels, mel.shape[-1])
        log_mel = feature.db(mel, items_first=True)
        return torch.matmul(self.basis, log_mel) if self.dct else log_mel


def dft_kernels(n_fft: int, win_length: int | None = None) -> torch.Tensor:
    """(2 * (n_fft // 2 + 1), 1, n_fft): the real then imaginary parts of the one-sided DFT,
    times the periodic Hann window centred in ``n_fft`` samples as ``torch.stft`` pads it."""
    length = win_length or n_fft
    window = np.zeros(n_fft)
    start = (n_fft - length) // 2
    window[start : start + length] = torch.hann_window(length, periodic=True, dtype=torch.float64)
    angles = 2 * np.pi * np.outer(np.arange(n_fft // 2 + 1), np.arange(n_fft)) / n_fft
    kernels = np.concatenate([np.cos(angles) * window, -np.sin(angles) * window])
    return torch.from_numpy(kernels.astype(np.float32)).unsqueeze(1)


@lru_cache(maxsize=16)
def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on the Slaney mel scale, area-normalized."""
    f_max = sample_rate / 2 if f_max is None else f_max
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    mel_points = np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    hz_points = mel_to_hz(mel_points)
    widths = np.diff(hz_points)
    ramps = hz_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_points[2:] - hz_points[:-2]))[:, None]
    weights.setflags(write=False)  # shared through the cache
    return weights.astype(np.float32)


# Slaney's mel scale: linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    logarithmic = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, logarithmic, linear)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = _F_SP * mel
    logarithmic = _MIN_LOG_HZ * np.exp(_LOG_STEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, logarithmic, linear)


@lru_cache(maxsize=16)
def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II basis (n, n): row k is the k-th cosine."""
    k = np.arange(n)[:, None]
    samples = np.arange(n)[None, :]
    basis = np.sqrt(2.0 / n) * np.cos(np.pi / n * (samples + 0.5) * k)
    basis[0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


@gin.configurable
def log_mel(
    sample_rate: Annotated[int, Positive] = 16000,
    n_fft: Annotated[int, Positive] = 512,
    hop_length: Annotated[int, Positive] = 256,
    win_length: Annotated[int, Positive] | None = None,
    n_mels: Annotated[int, Positive] = 64,
    f_min: float = 0.0,
    f_max: float | None = None,
    power: float = 2.0,
    top_db: float | None = 80.0,
) -> LogMel:
    """Log-mel spectrogram in dB (torch.stft + Slaney mel filterbank)."""
    return LogMel(sample_rate, n_fft, hop_length, win_length, n_mels, f_min, f_max, power, top_db)


@gin.configurable
def mfcc(
    n_mfcc: Annotated[int, Positive] = 20,
    sample_rate: Annotated[int, Positive] = 16000,
    n_fft: Annotated[int, Positive] = 512,
    hop_length: Annotated[int, Positive] = 256,
    n_mels: Annotated[int, Positive] = 64,
    f_min: float = 0.0,
    f_max: float | None = None,
    top_db: float | None = 80.0,
) -> MFCC:
    """MFCCs: orthonormal DCT-II of the log-mel spectrogram."""
    return MFCC(n_mfcc, sample_rate, n_fft, hop_length, n_mels, f_min, f_max, top_db)
