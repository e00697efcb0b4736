"""Audio requests decoded in memory and turned into features per batch (``waves``): the
numbers the per-item path of ``ginpipe predict`` makes (``DecodedFileDataset``), a file that
does not decode refused alone with its name, and runs the batched path does not fit (a
user's decoder, stereo, no fixed length, a feature that disagrees) kept on the per-item
path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ginpipe.serving import waves as waves_module
from ginpipe.serving.errors import RequestError
from ginpipe.serving.waves import waves_of
from ginpipe.tasks.data import callables
from ginpipe.tasks.data.decoded_files import DecodedFileDataset

soundfile = pytest.importorskip("soundfile")

RATE = 8000
DECODER = {
    "target": "ginpipe.tasks.data.decoders.AudioDecoder",
    "kwargs": {"sample_rate": RATE, "mono": True, "duration": 0.25},
    "instance": True,
}
LOG_MEL = {
    "target": "ginpipe.tasks.data.audio_features.LogMel",
    "kwargs": {"sample_rate": RATE, "n_fft": 256, "hop_length": 128, "n_mels": 32},
    "instance": True,
}
MFCC = {
    "target": "ginpipe.tasks.data.audio_features.MFCC",
    "kwargs": {"n_mfcc": 13, "sample_rate": RATE, "n_fft": 256, "hop_length": 128, "n_mels": 32},
    "instance": True,
}
NORMALIZE = {"mean": -30.0, "std": 15.0}


def recordings(folder: Path) -> list[Path]:
    """WAVs shorter (padded), longer (cropped) and of the decoder's length, one stereo
    (averaged to mono), 16-bit and float, tones over noise of different loudness."""
    rng = np.random.default_rng(7)
    paths = []
    for index, seconds in enumerate([0.1, 0.25, 0.4, 0.25, 0.2, 0.3]):
        time = np.arange(int(seconds * RATE)) / RATE
        tone = np.sin(2 * np.pi * (300 + 150 * index) * time) * (0.05 + 0.15 * index)
        audio = (tone + rng.normal(0, 0.01, len(time))).astype(np.float32)
        channels = np.stack([audio, audio[::-1]], axis=1) if index == 3 else audio
        path = folder / f"item{index}.wav"
        soundfile.write(path, channels, RATE, subtype="PCM_16" if index % 2 else "FLOAT")
        paths.append(path)
    return paths


@pytest.mark.parametrize("transform", [LOG_MEL, MFCC, None], ids=["log_mel", "mfcc", "none"])
def test_a_batch_makes_the_features_the_dataset_makes_per_item(
    tmp_path: Path, transform: dict[str, Any] | None
) -> None:
    paths = recordings(tmp_path)
    waves = waves_of({"decoder": DECODER, "transform": transform, "normalize": NORMALIZE})
    assert waves is not None
    decoded = [waves.decode(path.read_bytes(), path.name) for path in paths]
    decoder = callables.from_spec(DECODER)
    for path, wave in zip(paths, decoded, strict=True):  # in memory as from the file
        assert np.array_equal(wave[0], decoder(str(path)))

    found = waves.features(np.concatenate(decoded))
    dataset = DecodedFileDataset([str(p) for p in paths], [0] * len(paths), DECODER, transform,
                                 NORMALIZE)  # fmt: skip
    expected = np.stack([dataset[index][0].numpy() for index in range(len(paths))])
    assert found.dtype == np.float32 and found.shape == expected.shape
    np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-5)
    # each item floored below its own peak, not the batch's: the quiet first item differs
    # from what one floor over the whole batch would give
    assert np.array_equal(waves.features(decoded[0]), found[:1])


def test_a_file_that_does_not_decode_is_a_400_naming_it() -> None:
    waves = waves_of({"decoder": DECODER, "transform": LOG_MEL, "normalize": NORMALIZE})
    assert waves is not None
    with pytest.raises(RequestError) as refused:
        waves.decode(b"RIFF but not audio at all", "item 2")
    assert refused.value.status == 400
    assert "item 2" in str(refused.value) and "BytesIO" not in str(refused.value)


def test_runs_the_batch_does_not_fit_keep_the_per_item_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def spec(decoder: dict[str, Any], transform: dict[str, Any] | None = LOG_MEL) -> Any:
        return {"decoder": decoder, "transform": transform, "normalize": NORMALIZE}

    kwargs = DECODER["kwargs"]
    assert isinstance(kwargs, dict)
    assert waves_of(None) is None  # images, features runs
    assert waves_of(spec({**DECODER, "target": "mymodule.Decoder"})) is None
    assert waves_of(spec(DECODER, {**LOG_MEL, "target": "mymodule.features"})) is None
    assert waves_of(spec({**DECODER, "kwargs": {**kwargs, "mono": False}})) is None
    assert waves_of(spec({**DECODER, "kwargs": {**kwargs, "duration": None}})) is None
    assert waves_of(spec(DECODER)) is not None

    def louder(mel: Any, audio: Any) -> Any:  # a batched feature that is not the feature
        return mel.mel_power(audio) * 1.01

    monkeypatch.setattr(waves_module, "_mel_power", louder)
    assert waves_of(spec(DECODER)) is None
