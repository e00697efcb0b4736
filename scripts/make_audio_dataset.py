"""Write synthetic acoustic events as WAV files plus a labels table: an audio dataset offline.

    python scripts/make_audio_dataset.py                     # 3000 files, a few seconds
    python scripts/make_audio_dataset.py --count 20000       # for benchmarks

Five classes of event, each placed at a random time over background noise:
``tone`` (a pure sine), ``harmonic`` (a buzz: a fundamental with harmonics), ``chirp``
(a sweep up or down), ``noise_burst`` (band-limited noise) and ``clicks`` (a train of
decaying impulses). Every file belongs to one of ``--groups`` recording sessions; a
session fixes the background (white, pink or brown noise, its level) and a gain, so a
group split tests on sessions never heard in training. Clip lengths vary by +-10 % around
``--duration`` (the decoder's crop/pad makes them equal).

Layout: ``OUT/audio/<class>/<index>.wav`` (16-bit PCM) and ``OUT/labels.csv`` with the
columns ``path`` (relative to OUT), ``label`` and ``group``.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile

DEFAULT_OUT = Path("data/generated/audio_events")
CLASSES = ("chirp", "clicks", "harmonic", "noise_burst", "tone")
BACKGROUNDS = ("white", "pink", "brown")


def write_audio_events(
    out: Path,
    count: int = 3000,
    sample_rate: int = 16000,
    duration: float = 1.0,
    groups: int = 24,
    seed: int = 0,
) -> Path:
    """Write ``count`` WAV files (classes in turn) and ``labels.csv``; returns its path."""
    if count < 1 or groups < 1 or duration <= 0.2 or sample_rate < 4000:
        raise ValueError("need count >= 1, groups >= 1, duration > 0.2 s, sample_rate >= 4000")
    out = Path(out)
    for name in CLASSES:
        (out / "audio" / name).mkdir(parents=True, exist_ok=True)
    sessions = [_session(np.random.default_rng([seed, 1, group])) for group in range(groups)]
    rows = []
    for index in range(count):
        rng = np.random.default_rng([seed, 2, index])  # one stream per file: order-free
        label = CLASSES[index % len(CLASSES)]
        group = int(rng.integers(groups))
        length = round(sample_rate * duration * rng.uniform(0.9, 1.1))
        clip = _clip(label, sessions[group], length, sample_rate, rng)
        relative = f"audio/{label}/{index:06d}.wav"
        _write_wav(out / relative, clip, sample_rate)
        rows.append((relative, label, group))
    labels_csv = out / "labels.csv"
    pd.DataFrame(rows, columns=["path", "label", "group"]).to_csv(labels_csv, index=False)
    return labels_csv


def _write_wav(path: Path, clip: np.ndarray, sample_rate: int) -> None:
    """Encode in memory, then write: soundfile's own file close syncs to disk every time,
    which would make a few thousand small files take half a minute."""
    buffer = io.BytesIO()
    soundfile.write(buffer, clip, sample_rate, subtype="PCM_16", format="WAV")
    path.write_bytes(buffer.getvalue())


def _session(rng: np.random.Generator) -> dict[str, float | str]:
    return {
        "background": str(rng.choice(BACKGROUNDS)),
        "noise_level": float(rng.uniform(0.005, 0.03)),
        "gain": float(rng.uniform(0.3, 0.9)),
    }


def _clip(
    label: str, session: dict, length: int, rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Background noise of the session plus one event of ``label``, peak below 1."""
    clip = _noise(str(session["background"]), length, rng) * float(session["noise_level"])
    event = EVENTS[label](rate, rng)
    event = event[:length]
    start = int(rng.integers(0, length - len(event) + 1))
    snr_gain = float(session["gain"]) * rng.uniform(0.4, 1.0)
    clip[start : start + len(event)] += snr_gain * event / max(np.abs(event).max(), 1e-9)
    return (clip / max(1.0, float(np.abs(clip).max()) * 1.01)).astype(np.float32)


def _noise(color: str, length: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise whose power falls as 1/f^0 (white), 1/f (pink) or 1/f^2 (brown)."""
    if color == "white":
        return rng.standard_normal(length)
    size = 1 << (length - 1).bit_length()  # FFTs of a power of two: clip lengths vary
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    spectrum /= freqs ** (0.5 if color == "pink" else 1.0)
    shaped = np.fft.irfft(spectrum, n=size)[:length]
    return shaped / max(float(shaped.std()), 1e-12)


def _envelope(length: int, rng: np.random.Generator) -> np.ndarray:
    """Short fades at both ends, so no event starts with a click of its own."""
    fade = max(1, min(length // 4, int(rng.integers(32, 256))))
    env = np.ones(length)
    env[:fade] = np.linspace(0, 1, fade)
    env[-fade:] = np.linspace(1, 0, fade)
    return env


def _tone(rate: int, rng: np.random.Generator) -> np.ndarray:
    n = int(rate * rng.uniform(0.2, 0.6))
    t = np.arange(n) / rate
    freq = rng.uniform(300, min(3000, rate / 3))
    return np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)) * _envelope(n, rng)


def _harmonic(rate: int, rng: np.random.Generator) -> np.ndarray:
    n = int(rate * rng.uniform(0.2, 0.6))
    t = np.arange(n) / rate
    base = rng.uniform(100, 300)
    partials = [k for k in range(1, 13) if k * base < rate / 2.2]
    wave = sum(np.sin(2 * np.pi * k * base * t) / k for k in partials)
    return wave * _envelope(n, rng)


def _chirp(rate: int, rng: np.random.Generator) -> np.ndarray:
    n = int(rate * rng.uniform(0.2, 0.5))
    t = np.arange(n) / rate
    low, high = rng.uniform(300, 800), rng.uniform(2000, min(5000, rate / 2.5))
    start, end = (low, high) if rng.random() < 0.5 else (high, low)
    phase = 2 * np.pi * (start * t + (end - start) * t**2 / (2 * t[-1]))
    return np.sin(phase) * _envelope(n, rng)


def _noise_burst(rate: int, rng: np.random.Generator) -> np.ndarray:
    n = int(rate * rng.uniform(0.1, 0.4))
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    center = rng.uniform(1000, rate / 4)
    spectrum[np.abs(freqs - center) > center / 2] = 0  # an octave-wide band
    return np.fft.irfft(spectrum, n=n) * _envelope(n, rng)


def _clicks(rate: int, rng: np.random.Generator) -> np.ndarray:
    n = int(rate * rng.uniform(0.3, 0.7))
    period = int(rate / rng.uniform(6, 20))
    decay = np.exp(-np.arange(min(period, int(rate * 0.004))) / (rate * 0.0008))
    wave = np.zeros(n)
    for start in range(int(rng.integers(0, period)), n - len(decay), period):
        wave[start : start + len(decay)] += decay * rng.choice([-1.0, 1.0])
    return wave


EVENTS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "tone": _tone,
    "harmonic": _harmonic,
    "chirp": _chirp,
    "noise_burst": _noise_burst,
    "clicks": _clicks,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--count", type=int, default=3000, help="number of files")
    parser.add_argument("--sample-rate", type=int, default=16000, help="samples per second")
    parser.add_argument("--duration", type=float, default=1.0, help="mean clip length, seconds")
    parser.add_argument("--groups", type=int, default=24, help="recording sessions")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything random")
    args = parser.parse_args()
    labels_csv = write_audio_events(
        args.out, args.count, args.sample_rate, args.duration, args.groups, args.seed
    )
    print(f"wrote {len(pd.read_csv(labels_csv))} audio files and {labels_csv}")


if __name__ == "__main__":
    main()
