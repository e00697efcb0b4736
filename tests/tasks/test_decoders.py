"""Decoders and their specs: audio (rate, mono, crop/pad, bad files), .npy, images, user
callables, and the loaders that choose a decoder by extension."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from PIL import Image

from ginpipe.base.errors import ConfigError, DataError
from ginpipe.core.state import State, TaskView
from ginpipe.tasks.data import callables
from ginpipe.tasks.data.decoders import (
    AudioDecoder,
    ImageDecoder,
    NpyDecoder,
    audio_decoder,
    crop_or_pad,
)
from ginpipe.tasks.load import load_folder, load_table

RATE = 8000


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, rate, subtype="FLOAT")
    return str(path)


def tone(seconds: float, rate: int = RATE, freq: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def scale_by_two(path: str, *, factor: float = 2.0) -> np.ndarray:
    """A user's decoder: any importable function of the path."""
    return np.load(path) * factor


# --- audio -----------------------------------------------------------------------------


def test_audio_is_channels_by_samples_float32(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", tone(0.5))
    audio = AudioDecoder()(path)
    assert audio.dtype == np.float32 and audio.shape == (1, RATE // 2)
    np.testing.assert_allclose(audio[0], tone(0.5), atol=1e-6)


def test_stereo_is_mixed_down_or_kept(tmp_path: Path) -> None:
    left, right = tone(0.1), np.zeros(RATE // 10, np.float32)
    path = write_wav(tmp_path / "s.wav", np.stack([left, right], axis=1))
    np.testing.assert_allclose(AudioDecoder(mono=True)(path)[0], left / 2, atol=1e-6)
    assert AudioDecoder(mono=False)(path).shape == (2, RATE // 10)


@pytest.mark.parametrize("seconds", [0.3, 1.0, 1.7])
def test_duration_crops_or_pads_to_an_exact_length(tmp_path: Path, seconds: float) -> None:
    path = write_wav(tmp_path / "x.wav", tone(seconds))
    audio = AudioDecoder(sample_rate=RATE, duration=1.0)(path)
    assert audio.shape == (1, RATE)
    kept = min(seconds, 1.0)
    np.testing.assert_allclose(audio[0, : round(kept * RATE)], tone(kept), atol=1e-6)
    assert not audio[0, round(kept * RATE) :].any()  # zero padding


def test_offset_and_pad_modes() -> None:
    audio = np.arange(1, 4, dtype=np.float32)[None]
    assert crop_or_pad(audio, 7, "wrap").tolist() == [[1, 2, 3, 1, 2, 3, 1]]
    assert crop_or_pad(audio, 7, "reflect").tolist() == [[1, 2, 3, 2, 1, 2, 3]]
    assert crop_or_pad(audio, 2).tolist() == [[1, 2]]
    padded = crop_or_pad(audio, 5)
    assert padded.tolist() == [[1, 2, 3, 0, 0]] and padded.dtype == np.float32


def test_offset_starts_the_crop(tmp_path: Path) -> None:
    samples = np.arange(RATE, dtype=np.float32) / RATE
    path = write_wav(tmp_path / "ramp.wav", samples)
    audio = AudioDecoder(sample_rate=RATE, duration=0.25, offset=0.5)(path)
    np.testing.assert_allclose(audio[0, :3], samples[RATE // 2 : RATE // 2 + 3], atol=1e-6)


def test_sample_rate_mismatch_is_an_error_unless_resampling(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "hi.wav", tone(0.5, rate=16000), rate=16000)
    with pytest.raises(DataError, match=r"'.*hi\.wav' has sample rate 16000 Hz, expected 8000"):
        AudioDecoder(sample_rate=RATE)(path)
    audio = AudioDecoder(sample_rate=RATE, resample=True)(path)
    assert audio.shape == (1, RATE // 2)
    spectrum = np.abs(np.fft.rfft(audio[0]))
    assert abs(np.argmax(spectrum) * RATE / len(audio[0]) - 440) < 5  # the tone survives


def test_empty_and_undecodable_files_name_the_file(tmp_path: Path) -> None:
    empty = write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32))
    with pytest.raises(DataError, match=r"audio '.*empty\.wav' is empty"):
        AudioDecoder()(empty)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav file at all")
    with pytest.raises(DataError, match=r"cannot read audio '.*junk\.wav'"):
        AudioDecoder()(str(junk))


def test_audio_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"duration needs audio_decoder\.sample_rate"):
        AudioDecoder(duration=1.0)
    with pytest.raises(ConfigError, match="pad_mode"):
        AudioDecoder(pad_mode="edge")


# --- other decoders ---------------------------------------------------------------------


def test_npy_decoder_never_unpickles(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.int16).reshape(2, 3))
    array = NpyDecoder()(str(tmp_path / "a.npy"))
    assert array.dtype == np.float32 and array.shape == (2, 3)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"cannot read array '.*obj\.npy'"):
        NpyDecoder()(str(tmp_path / "obj.npy"))


def test_image_decoder_resizes(tmp_path: Path) -> None:
    Image.fromarray(np.full((10, 12), 255, np.uint8), mode="L").save(tmp_path / "i.png")
    pixels = ImageDecoder(size=(4, 4), channels=3)(str(tmp_path / "i.png"))
    assert pixels.shape == (3, 4, 4) and np.allclose(pixels, 1.0)
    assert ImageDecoder()(str(tmp_path / "i.png")).shape == (1, 10, 12)


# --- specs: what crosses into worker processes --------------------------------------------


def test_specs_rebuild_dataclasses_partials_and_functions(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.ones(3))
    for decoder in (
        audio_decoder(sample_rate=RATE, duration=0.5),
        functools.partial(scale_by_two, factor=3.0),
        scale_by_two,
    ):
        spec = callables.to_spec(decoder, "load_table.decoder")
        rebuilt = callables.from_spec(pickle.loads(pickle.dumps(spec)))
        if isinstance(decoder, AudioDecoder):
            assert rebuilt == decoder
        else:
            np.testing.assert_array_equal(
                rebuilt(str(tmp_path / "a.npy")), decoder(str(tmp_path / "a.npy"))
            )
    assert callables.to_spec(scale_by_two, "d")["target"] == f"{__name__}.scale_by_two"


def test_unimportable_callables_are_refused_with_what_works() -> None:
    with pytest.raises(ConfigError, match="not importable by name"):
        callables.to_spec(lambda path: path, "load_table.decoder")
    with pytest.raises(ConfigError, match="positional arguments"):
        callables.to_spec(functools.partial(scale_by_two, "x"), "load_table.decoder")


# --- loaders ----------------------------------------------------------------------------


def test_load_table_picks_the_audio_decoder_by_extension(tmp_path: Path) -> None:
    names = [f"clips/{index}.wav" for index in range(4)]
    for name in names:
        write_wav(tmp_path / name, tone(0.1))
    pd.DataFrame({"path": names, "label": ["a", "b"] * 2}).to_csv(tmp_path / "t.csv", index=False)
    dataset = load_table(TaskView(State(), "load_table", ()), path=str(tmp_path / "t.csv"))[
        "dataset"
    ]
    assert dataset["decoder"]["target"].endswith("decoders.AudioDecoder")
    configured = load_table(
        TaskView(State(), "load_table", ()),
        path=str(tmp_path / "t.csv"),
        decoder=audio_decoder(sample_rate=RATE, duration=0.2),
    )["dataset"]
    assert callables.from_spec(configured["decoder"]) == AudioDecoder(RATE, duration=0.2)


def test_load_folder_recognizes_audio_and_npy(tmp_path: Path) -> None:
    for label in ("bird", "car"):
        write_wav(tmp_path / "audio" / label / "1.wav", tone(0.1))
        (tmp_path / "arrays" / label).mkdir(parents=True)
        np.save(tmp_path / "arrays" / label / "1.npy", np.zeros(3))
    view = TaskView(State(), "load_folder", ())
    audio = load_folder(view, path=str(tmp_path / "audio"))["dataset"]
    arrays = load_folder(view, path=str(tmp_path / "arrays"))["dataset"]
    assert audio["classes"] == ["bird", "car"] and len(audio["table"]) == 2
    assert audio["decoder"]["target"].endswith("AudioDecoder")
    assert arrays["decoder"]["target"].endswith("NpyDecoder")


def test_load_folder_refuses_mixed_kinds_without_a_decoder(tmp_path: Path) -> None:
    write_wav(tmp_path / "a" / "1.wav", tone(0.1))
    np.save(tmp_path / "a" / "2.npy", np.zeros(3))
    with pytest.raises(DataError, match=r"mixes file kinds \(array, audio\)"):
        load_folder(TaskView(State(), "load_folder", ()), path=str(tmp_path))
