"""Log-mel and MFCC (torch.stft + mel filterbank) against librosa, the reference."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from ginpipe.base.errors import ConfigError
from ginpipe.tasks.data.audio_features import MFCC, LogMel, log_mel, mel_filterbank, mfcc

librosa = pytest.importorskip("librosa")  # a dev dependency: the reference only

RATE = 16000
DB_TOLERANCE = 1e-3  # dB, on values spanning 80 dB


def signal(seed: int = 0, seconds: float = 0.5) -> np.ndarray:
    """A chirp plus noise: energy in every band, a spread of magnitudes."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(RATE * seconds)) / RATE
    chirp = np.sin(2 * np.pi * (200 * t + 3000 * t**2))
    return (0.4 * chirp + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.mark.parametrize(("n_fft", "n_mels", "f_max"), [(512, 64, None), (1024, 40, 6000.0)])
def test_mel_filterbank_matches_librosa(n_fft: int, n_mels: int, f_max: float | None) -> None:
    ours = mel_filterbank(RATE, n_fft, n_mels, 50.0, f_max)
    reference = librosa.filters.mel(sr=RATE, n_fft=n_fft, n_mels=n_mels, fmin=50.0, fmax=f_max)
    np.testing.assert_allclose(ours, reference, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"n_fft": 1024, "hop_length": 320, "n_mels": 40, "f_min": 20.0, "f_max": 7000.0},
        {"win_length": 400, "top_db": None},
    ],
)
def test_log_mel_matches_librosa(params: dict) -> None:
    audio = signal()
    feature = LogMel(sample_rate=RATE, **params)
    reference = librosa.power_to_db(
        librosa.feature.melspectrogram(
            y=audio,
            sr=RATE,
            n_fft=feature.n_fft,
            hop_length=feature.hop_length,
            win_length=feature.win_length,
            n_mels=feature.n_mels,
            fmin=feature.f_min,
            fmax=feature.f_max,
        ),
        top_db=feature.top_db,
    )
    ours = feature(audio[None])
    assert ours.shape == (1, *reference.shape) and ours.dtype == np.float32
    np.testing.assert_allclose(ours[0], reference, atol=DB_TOLERANCE)


def test_mfcc_matches_librosa() -> None:
    audio = signal(seed=1)
    reference = librosa.feature.mfcc(
        y=audio, sr=RATE, n_mfcc=13, n_fft=512, hop_length=256, n_mels=64
    )
    ours = MFCC(n_mfcc=13, sample_rate=RATE)(audio[None])
    assert ours.shape == (1, *reference.shape)
    scale = np.abs(reference).max()
    np.testing.assert_allclose(ours[0], reference, atol=1e-5 * scale)


def test_channels_are_independent_items_of_the_leading_axes() -> None:
    stereo = np.stack([signal(0), signal(1)])
    both = LogMel(top_db=None)(stereo)
    assert both.shape[:2] == (2, 64)
    np.testing.assert_allclose(both[1], LogMel(top_db=None)(stereo[1]), atol=1e-4)


def test_features_are_plain_picklable_values_built_by_gin_factories() -> None:
    feature = log_mel(n_mels=32)
    assert pickle.loads(pickle.dumps(feature)) == feature == LogMel(n_mels=32)
    assert mfcc(n_mfcc=10).n_mfcc == 10


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="f_max"):
        LogMel(sample_rate=8000, f_max=6000.0)
    with pytest.raises(ConfigError, match="n_mfcc"):
        MFCC(n_mfcc=80, n_mels=64)


@pytest.mark.parametrize(
    "feature",
    [LogMel(16000, 512, 512, None, 40), LogMel(16000, 512, 256, 400, 64, power=1.0), MFCC(13)],
    ids=["log_mel", "window_shorter_than_fft", "mfcc"],
)
def test_the_exported_module_gives_each_item_what_the_feature_gives_it(feature) -> None:
    """A batch through ``as_module`` (a DFT convolution, each item floored below its own
    peak) equals the feature on each item alone: the exported waveform graph computes what
    training computed."""
    rng = np.random.default_rng(0)
    batch = rng.normal(0, 0.3, (3, 1, 16000)).astype(np.float32)
    batch[1] *= 0.01  # a quiet item: its top_db floor must not come from a loud neighbour
    expected = np.stack([feature(item) for item in batch])
    got = feature.as_module()(torch.from_numpy(batch)).numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-3
