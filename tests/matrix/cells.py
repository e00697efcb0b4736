"""The cells of the data kind x verb matrix (README, "What works with what").

A row is a data kind as a user brings it: data written into a folder of their own, the
configs and modules they write there, a new raw input of that kind, and the demo input
widget that fits it. ``Cells`` holds one test per verb; every row class in
``test_matrix.py`` inherits them, and its run is trained once for the whole row (class
scope), through the real console script in that folder, without ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
KILLER = REPO / "tests" / "faults" / "killer.py"
SCRIPTS = REPO / "scripts"
EXPORT_TOLERANCE = 1e-4

# Two epochs, so that a kill after the first checkpoint leaves one to resume; loaders in
# the main process, so that the resumed run is bit-for-bit the uninterrupted one.
MATRIX_GIN = """
Trainer.max_epochs = 2
Trainer.limit_train_batches = 3
Trainer.limit_val_batches = 2
Trainer.enable_model_summary = False
Trainer.num_sanity_val_steps = 0
fit.num_workers = 0
"""


@dataclass
class Row:
    """One data kind: how its data and configs are written, and its inputs."""

    name: str
    configs: list[str]
    write: Callable[[Path], None]  # data, configs and modules into the user's folder
    new_input: Callable[[Path], Path]  # a new raw input of this kind (file, folder, table)
    demo_input: Callable[[Path], Any]  # one input as the demo page gives it
    widget: str  # the gradio component the demo shows for it
    feature_names: list[str] = field(default_factory=list)
    network: bool = True  # False: a scikit-learn estimator (no checkpoints, no export)
    kill_at: str = "checkpoint-written:1"  # tests/faults/killer.py: after the first epoch


@dataclass
class Trained:
    row: Row
    folder: Path
    run_dir: Path


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("GINPIPE_", "PYTHONPATH"))}


SCRIPT = Path(sys.executable).with_name("ginpipe")


def ginpipe(folder: Path, *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    """The installed console script, in the user's folder."""
    script = SCRIPT
    return subprocess.run(
        [str(script), *args], cwd=folder, env=child_env(), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


def train(row: Row, folder: Path) -> Trained:
    (folder / "matrix.gin").write_text(MATRIX_GIN)
    row.write(folder)
    ok(ginpipe(folder, "run", *row.configs, "matrix.gin", "--name", "ref"))
    return Trained(row, folder, folder / "experiments" / folder.name / "ref")


def predict_new(trained: Trained) -> pd.DataFrame:
    """``ginpipe predict RUN NEW -o CSV`` on the row's new raw input, read back."""
    new = trained.row.new_input(trained.folder)
    out = trained.folder / "new-predictions.csv"
    ok(ginpipe(trained.folder, "predict", str(trained.run_dir), str(new), "-o", str(out)))
    return pd.read_csv(out)


def probability_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("prob_")]


class FakeGradio:
    """Records which input component the demo builds, without gradio installed."""

    def __getattr__(self, component: str) -> Callable[..., tuple[str, dict[str, Any]]]:
        return lambda **options: (component, options)


class Cells:
    """One test per verb of the README's table; ``row`` is set by each subclass."""

    row: Row

    def test_run_leaves_a_complete_run_directory(self, trained: Trained) -> None:
        run_dir = trained.run_dir
        record = json.loads((run_dir / "run.json").read_text())
        assert record["status"] == "completed"
        assert (run_dir / "model" / "model.json").is_file()
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert 0.0 <= metrics["accuracy"] <= 1.0
        assert (run_dir / "checkpoints" / "last.ckpt").is_file() == self.row.network

    def test_kill_9_then_resume_gives_the_metrics_of_the_uninterrupted_run(
        self, trained: Trained
    ) -> None:
        folder = trained.folder
        configs = [*self.row.configs, "matrix.gin"]
        killed = subprocess.run(
            [sys.executable, str(KILLER), "--at", self.row.kill_at, "--",
             "run", *configs, "--name", "killed", "--root", "other"],
            cwd=folder, env=child_env(), capture_output=True, text=True, timeout=400,
        )  # fmt: skip
        assert killed.returncode == -9, (killed.stdout + killed.stderr)[-3000:]
        run_dir = folder / "other" / folder.name / "killed"
        assert not (run_dir / "metrics.json").exists()
        ok(ginpipe(folder, "resume", str(run_dir)))
        resumed = json.loads((run_dir / "metrics.json").read_text())
        reference = json.loads((trained.run_dir / "metrics.json").read_text())
        assert resumed.keys() == reference.keys()
        for key, value in reference.items():
            if isinstance(value, float):
                assert resumed[key] == pytest.approx(value, abs=1e-6), key

    def test_predict_on_new_raw_input(self, predicted_new: pd.DataFrame) -> None:
        probs = probability_columns(predicted_new)
        assert len(predicted_new) >= 1 and len(probs) >= 2
        assert np.allclose(predicted_new[probs].sum(axis=1), 1.0, atol=1e-5)
        classes = {c.removeprefix("prob_") for c in probs}
        assert set(predicted_new["predicted_class"].astype(str)) <= classes

    def test_predict_split_test_reproduces_predictions_csv(self, trained: Trained) -> None:
        out = trained.folder / "split-test.csv"
        run = str(trained.run_dir)
        ok(ginpipe(trained.folder, "predict", run, "--split", "test", "-o", str(out)))
        expected = pd.read_csv(trained.run_dir / "predictions.csv")
        got = pd.read_csv(out)
        probs = probability_columns(expected)
        assert list(got["predicted_class"].astype(str)) == list(
            expected["predicted_class"].astype(str)
        )
        assert np.abs(got[probs].to_numpy() - expected[probs].to_numpy()).max() <= 1e-5

    def test_load_run_predict_equals_the_command_line(
        self, trained: Trained, predicted_new: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import ginpipe as api

        monkeypatch.chdir(trained.folder)
        monkeypatch.syspath_prepend(str(trained.folder))  # the user's own modules
        frame = api.load_run(trained.run_dir).predict(str(self.row.new_input(trained.folder)))
        probs = probability_columns(predicted_new)
        assert list(frame["predicted_class"].astype(str)) == list(
            predicted_new["predicted_class"].astype(str)
        )
        assert np.abs(frame[probs].to_numpy() - predicted_new[probs].to_numpy()).max() <= 1e-5

    @pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
    def test_export_matches_predict(self, trained: Trained, fmt: str) -> None:
        if fmt == "onnx":
            pytest.importorskip("onnxruntime", reason="the onnx extra")
        model = trained.folder / f"model-{fmt}"
        run = str(trained.run_dir)
        if not self.row.network:  # refused in one line, nothing written
            refused = ginpipe(trained.folder, "export", run, "-f", fmt, "-o", str(model))
            assert refused.returncode == 2
            assert "export supports networks" in refused.stderr
            assert "Traceback" not in refused.stderr and not model.exists()
            return
        done = ok(ginpipe(trained.folder, "export", run, "-f", fmt, "-o", str(model)))
        assert "checked on" in done.stdout + done.stderr
        sidecar = json.loads(model.with_name(model.name + ".json").read_text())
        assert sidecar["verified"]["items"] > 0
        assert sidecar["verified"]["max_probability_difference"] <= EXPORT_TOLERANCE

    def test_demo_gives_every_class_probability_of_predict(
        self, trained: Trained, predicted_new: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from ginpipe.inference import demo
        from ginpipe.inference.predictor import Predictor

        monkeypatch.chdir(trained.folder)
        monkeypatch.syspath_prepend(str(trained.folder))
        predictor = Predictor(trained.run_dir)
        component, options = demo.input_component(predictor, FakeGradio())
        assert component == self.row.widget
        if self.row.feature_names:
            assert options["headers"] == self.row.feature_names
        value = self.row.demo_input(trained.folder)
        shown = demo.probabilities_of(predictor, value)
        assert list(shown) == predictor.classes  # every class, not a top-k
        first = predicted_new[probability_columns(predicted_new)].to_numpy()[0]
        assert np.abs(np.array(list(shown.values())) - first).max() <= 1e-5
        examples = demo.examples(predictor)
        assert examples, "the demo offers examples from the run's test split"
        assert set(demo.probabilities_of(predictor, examples[0][0])) == set(predictor.classes)


# -- data a user brings ------------------------------------------------------------------


def scripts_module(name: str) -> Any:
    sys.path.insert(0, str(SCRIPTS))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(SCRIPTS))


def copy_files(sources: list[Path], folder: Path) -> Path:
    """The new raw input: a folder holding copies of a few files (first one sorted first)."""
    folder.mkdir(exist_ok=True)
    for source in sources:
        (folder / source.name).write_bytes(source.read_bytes())
    return folder


def first_file(folder: Path) -> str:
    return str(sorted(p for p in folder.iterdir() if p.is_file())[0])
