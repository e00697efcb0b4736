"""Audio from files to a report through the real ``ginpipe`` console script: the example
configs on a freshly generated dataset, a rerun that reuses every feature, and an
extraction whose process is killed with SIGKILL half-way: its workers die with it and the
resume computes only the rest."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import LAUNCHER_VARIABLES, TOY_DIR

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
SCRIPT = REPO / "scripts" / "make_audio_dataset.py"
SUMMARY = re.compile(r"extract_features: (\d+) items computed, (\d+) reused, (\d+) shards")

KILL_GIN = """\
import ginpipe.tasks.seeding
import ginpipe.tasks.load
import ginpipe.tasks.split
import ginpipe.tasks.extract
import slowfeatures

run.tasks = [@seed_everything, @load_table, @split_dataset, @extract_features]
load_table.path = 'data/labels.csv'
load_table.extra_columns = ['group']
load_table.decoder = @audio_decoder()
audio_decoder.sample_rate = 8000
audio_decoder.duration = 0.25
split_dataset.method = 'group'
extract_features.function = @slow_log_mel()
slow_log_mel.delay = 0.1
extract_features.shard_size = 4
extract_features.workers = 2
"""
KILL_ITEMS, KILL_SHARD = 48, 4


def ginpipe_command() -> list[str]:
    script = Path(sys.executable).with_name("ginpipe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ginpipe.cli"]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TOY_DIR), env.get("PYTHONPATH")]))
    return env


def ginpipe(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*ginpipe_command(), *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def live_processes_in_session(session: int, wait: float = 5.0) -> list[int]:
    """Processes of the session that are not zombies (dead, waiting to be reaped)."""
    deadline = time.monotonic() + wait
    while True:
        found = subprocess.run(["pgrep", "-s", str(session)], capture_output=True, text=True)
        live = []
        for pid in map(int, found.stdout.split()):
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != "Z":
                live.append(pid)
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.1)


def summary(stderr: str) -> tuple[int, int, int]:
    found = SUMMARY.findall(stderr)
    assert len(found) == 1, stderr[-3000:]
    computed, reused, shards = found[0]
    return int(computed), int(reused), int(shards)


def test_audio_example_runs_end_to_end_and_reuses_its_features(tmp_path: Path) -> None:
    made = subprocess.run(
        [sys.executable, str(SCRIPT), "--count", "100"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "wrote 100 audio files" in made.stdout
    assert (tmp_path / "data/generated/audio_events/labels.csv").is_file()
    configs = [str(CONFIGS / name) for name in ("base.gin", "data/audio.gin")]
    configs += [str(CONFIGS / "models/audio_cnn.gin"), str(CONFIGS / "debug/fast.gin")]

    first = ginpipe(["run", *configs, "--name", "first"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    computed, reused, _ = summary(first.stderr)
    assert (computed, reused) == (100, 0)
    run_dir = tmp_path / "experiments" / tmp_path.name / "first"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0

    second = ginpipe(["run", *configs, "--name", "second"], tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert summary(second.stderr)[:2] == (0, 100)
    tasks = json.loads((run_dir.with_name("second") / "run.json").read_text())["tasks"]
    assert {t["name"]: t["status"] for t in tasks}["fit"] == "cached"

    # the trained model on new audio: decoder, log-mel and normalization come from the run
    use_on_new_audio(tmp_path, run_dir)

    # the fast-features route (log-mel per item in the loaders) goes through the same verbs
    # in tests/matrix/test_matrix.py::TestAudioItemTransform


def use_on_new_audio(
    folder: Path, run_dir: Path, formats: tuple[str, ...] = ("torchscript", "onnx")
) -> None:
    """predict --split test equals the run's own predictions; new WAV files, one file and
    computed features predict; exports match predict."""
    import numpy as np
    import pandas as pd

    out = folder / f"{run_dir.name}-test.csv"
    again = ginpipe(["predict", str(run_dir), "--split", "test", "-o", str(out)], folder)
    assert again.returncode == 0, again.stderr[-3000:]
    expected = pd.read_csv(run_dir / "predictions.csv")
    got = pd.read_csv(out)
    probs = [c for c in expected.columns if c.startswith("prob_")]
    assert list(got["predicted_class"].astype(str)) == list(expected["predicted_class"].astype(str))
    assert np.abs(got[probs].to_numpy() - expected[probs].to_numpy()).max() <= 1e-5

    new = folder / "new_audio"
    new.mkdir(exist_ok=True)
    sources = sorted((folder / "data/generated/audio_events/audio").rglob("*.wav"))[:3]
    for source in sources:
        (new / source.name).write_bytes(source.read_bytes())
    table = folder / f"{run_dir.name}-new.csv"
    done = ginpipe(["predict", str(run_dir), str(new), "-o", str(table)], folder)
    assert done.returncode == 0, done.stderr[-3000:]
    predicted = pd.read_csv(table)
    assert len(predicted) == 3 and set(predicted["predicted_class"]) <= {
        c.removeprefix("prob_") for c in probs
    }
    assert np.allclose(predicted[probs].sum(axis=1), 1.0, atol=1e-5)

    for fmt in formats:
        suffix = ".onnx" if fmt == "onnx" else ".pt"
        if fmt == "onnx" and importlib.util.find_spec("onnxruntime") is None:
            continue
        exported = folder / f"{run_dir.name}{suffix}"
        done = ginpipe(["export", str(run_dir), "-f", fmt, "-o", str(exported)], folder)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "torchvision" not in done.stderr  # the exporter's notes are not the user's
        sidecar = json.loads(exported.with_name(exported.name + ".json").read_text())
        assert sidecar["verified"]["max_probability_difference"] <= 1e-4
        # log-mel is torch operations: the graph goes from the waveform to probabilities
        assert sidecar["input"]["shape"] == ["batch", 1, 16000]
        assert "LogMel" in sidecar["preprocessing_included"][0]
        assert "the waveform" in sidecar["preprocessing_not_included"][0]
        if fmt == "onnx":
            check_waveform_onnx(exported, sources, predicted, probs)


def check_waveform_onnx(model: Path, wavs: list[Path], predicted: Any, probs: list[str]) -> None:
    """A deployer's use: decode new WAVs (mono, 16 kHz, 1 s), feed the ONNX model, get the
    probabilities ``ginpipe predict`` gave for the same files."""
    import numpy as np
    import onnxruntime
    import soundfile

    waves = []
    for wav in wavs:
        audio, rate = soundfile.read(wav, dtype="float32", always_2d=True)
        assert rate == 16000
        mono = audio.mean(axis=1)[:16000]
        waves.append(np.pad(mono, (0, 16000 - len(mono)))[None, :])
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    got = session.run(["probabilities"], {"input": np.stack(waves)})[0]
    by_file = predicted.set_index(predicted["path"].map(lambda p: Path(p).name))
    expected = by_file.loc[[wav.name for wav in wavs], probs].to_numpy()
    assert np.abs(got - expected).max() <= 1e-4


def test_extraction_killed_half_way_resumes_with_only_the_rest(tmp_path: Path) -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from make_audio_dataset import write_audio_events
    finally:
        sys.path.remove(str(SCRIPT.parent))
    write_audio_events(tmp_path / "data", KILL_ITEMS, 8000, duration=0.25, groups=8)
    (tmp_path / "kill.gin").write_text(KILL_GIN)
    features = tmp_path / "experiments" / ".cache" / "features"
    proc = subprocess.Popen(
        [*ginpipe_command(), "run", "kill.gin", "--name", "killed"],
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    half = KILL_ITEMS // KILL_SHARD // 2
    deadline = time.monotonic() + 240
    committed: list[Path] = []
    while len(committed) < half:
        assert proc.poll() is None, f"finished before the kill: {proc.stderr.read()[-3000:]}"
        assert time.monotonic() < deadline, "extraction did not reach half-way"
        time.sleep(0.02)
        committed = list(features.glob("*/shard-*.json"))
    # Only the main process: its forked pool workers hold the run directory's lock too, and
    # must die with it (PR_SET_PDEATHSIG), or the resume below would find the run in use.
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    time.sleep(0.5)
    committed = list(features.glob("*/shard-*.json"))
    assert half <= len(committed) < KILL_ITEMS // KILL_SHARD
    assert live_processes_in_session(proc.pid) == [], "pool workers outlived the killed run"

    run_dir = tmp_path / "experiments" / tmp_path.name / "killed"
    resumed = ginpipe(["resume", str(run_dir)], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    computed, reused, _ = summary(resumed.stderr)
    assert reused == len(committed) * KILL_SHARD
    assert computed == KILL_ITEMS - reused
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
