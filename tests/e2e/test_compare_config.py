"""``configs/compare.gin`` end to end through the console script: three models on one split,
a comparison table and plot, each model predictable by name."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

GINPIPE = Path(sys.executable).parent / "ginpipe"
SMALL = ["-m", "RandomForestClassifier.n_estimators=20", "-m", "LogisticRegression.max_iter=300"]


def ginpipe(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GINPIPE), *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("compare")
    # The scikit-learn branches in processes of their own while the ResNet trains.
    done = ginpipe("run", "compare", "debug/fast", *SMALL, "--name", "c", "--jobs", "3", cwd=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


def run_of(folder: Path) -> Path:
    (run,) = (folder / "experiments").glob("*/c")
    return run


def test_three_models_on_one_split_side_by_side(compared: Path) -> None:
    run = run_of(compared)
    record = json.loads((run / "run.json").read_text())
    names = [t["name"] for t in record["tasks"]]  # in the order they finished
    assert sorted(names[4:-1]) == [
        "forest/evaluate_sklearn",
        "forest/fit_sklearn",
        "logreg/evaluate_sklearn",
        "logreg/fit_sklearn",
        "resnet/evaluate",
        "resnet/fit",
    ]
    assert names[-1] == "compare_models" and record["status"] == "completed"
    assert "logreg/fit_sklearn: running in a process" in (run / "run.log").read_text()
    with open(run / "comparison.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["metric", "logreg", "forest", "resnet"]
    table = {row[0]: [float(v) for v in row[1:]] for row in rows[1:]}
    assert "recall/9" in table
    for model, accuracy in zip(("logreg", "forest", "resnet"), table["accuracy"], strict=True):
        assert record["metrics"][f"{model}/accuracy"] == pytest.approx(accuracy, abs=1e-4)
        saved = json.loads((run / model / "metrics.json").read_text())
        assert saved["accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert table["accuracy"][0] > 0.9 and table["accuracy"][1] > 0.8
    assert (run / "plots" / "model_comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert (run / "resnet" / "checkpoints" / "last.ckpt").is_file()
    assert "resnet/fit<br/>ran " in (run / "pipeline.mmd").read_text()


def test_predict_picks_a_model_by_name(compared: Path) -> None:
    from sklearn.datasets import load_digits

    run = str(run_of(compared).relative_to(compared))
    np.save(compared / "x.npy", load_digits().images[:4].reshape(4, 1, 8, 8).astype("float32"))
    done = ginpipe("predict", run, "x.npy", "--model", "logreg", "-o", "p.csv", cwd=compared)
    assert done.returncode == 0, done.stderr
    with open(compared / "p.csv") as f:
        predicted = [row["predicted_class"] for row in csv.DictReader(f)]
    assert predicted == ["0", "1", "2", "3"]
    several = ginpipe("predict", run, "x.npy", "-o", "q.csv", cwd=compared)
    assert several.returncode == 2
    assert several.stderr.strip() == (
        f"error: {run} holds several models (forest, logreg, resnet): choose one with --model NAME"
    )
    typo = ginpipe("predict", run, "x.npy", "--model", "resnt", "-o", "q.csv", cwd=compared)
    assert typo.returncode == 2 and "(did you mean 'resnet'?)" in typo.stderr
    assert not (compared / "q.csv").exists()


def test_predict_a_models_split_equals_its_stored_predictions(
    compared: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--model resnet --split test`` rebuilds the split that branch was evaluated on."""
    monkeypatch.chdir(compared)
    run = run_of(compared)
    done = cli("predict", run, "--model", "resnet", "--split", "test", "-o", "t.csv")
    assert done.exit_code == 0, done.output
    with open(compared / "t.csv") as f:
        predicted = list(csv.DictReader(f))
    with open(run / "resnet" / "predictions.csv") as f:
        stored = list(csv.DictReader(f))
    assert [r["row"] for r in predicted] == [r["row"] for r in stored] and len(stored) > 10
    assert [r["predicted_class"] for r in predicted] == [r["predicted_class"] for r in stored]
    columns = [c for c in stored[0] if c.startswith("prob_")]
    got = np.array([[float(r[c]) for c in columns] for r in predicted])
    assert np.abs(got - np.array([[float(r[c]) for c in columns] for r in stored])).max() < 1e-5
    # a model folder no nested pipeline of the config made: its split cannot be rebuilt
    shutil.copytree(run / "resnet" / "model", run / "stray" / "model")
    try:
        stray = cli("predict", run, "--model", "stray", "--split", "test", "-o", "s.csv")
    finally:
        shutil.rmtree(run / "stray")
    assert stray.exit_code == 2
    (line,) = stray.output.strip().splitlines()
    assert "has no nested pipeline 'stray' (it has forest, logreg, resnet)" in line
    assert not (compared / "s.csv").exists()
