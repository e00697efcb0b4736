"""A user's own decoder by dotted path, in a folder of their own, through the console script:
run, predict new files, predict --split test, export. The decoded-files path of the model
bundle with code ginpipe has never seen."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("ginpipe") is None, reason="console script"),
]

DECODER = '''
import numpy as np


def read_signal(path, scale=1.0):
    """One item: a whitespace-separated text file of numbers (a format ginpipe does not know)."""
    return np.loadtxt(path, dtype=np.float32).reshape(1, -1) * scale
'''

CONFIG = """
import mydecoders
run.tasks = [@seed_everything, @load_table, @split_dataset, @make_features, @fit, @evaluate]
load_table.path = 'items/labels.csv'
load_table.decoder = @mydecoders.read_signal
mydecoders.read_signal.scale = 2.0
fit.model = @MLP
fit.num_workers = 0
Trainer.max_epochs = 3
Trainer.accelerator = 'cpu'
Trainer.enable_model_summary = False
"""


def write_items(folder: Path, count: int, seed: int) -> None:
    """Two classes of 16-number signals: a rising one and a falling one, with noise."""
    rng = np.random.default_rng(seed)
    rows = []
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        label = index % 2
        ramp = np.linspace(-1, 1, 16) * (1 if label else -1)
        np.savetxt(folder / f"{index:04d}.txt", ramp + rng.normal(0, 0.3, 16))
        rows.append((f"{index:04d}.txt", label))
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(folder / "labels.csv", index=False)


def ginpipe(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GINPIPE_", "PYTHONPATH"))}
    return subprocess.run(
        ["ginpipe", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )


def test_a_run_with_its_own_decoder_predicts_new_files_and_exports(tmp_path: Path) -> None:
    (tmp_path / "mydecoders.py").write_text(DECODER)
    (tmp_path / "my.gin").write_text(CONFIG)
    write_items(tmp_path / "items", 120, seed=0)
    done = ginpipe(tmp_path, "run", "base", "models/mlp", "my.gin", "--name", "own")
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = tmp_path / "experiments" / tmp_path.name / "own"
    decoded = json.loads((run_dir / "model" / "model.json").read_text())["input"]["decoded"]
    assert decoded["decoder"]["target"] == "mydecoders.read_signal"
    assert decoded["decoder"]["kwargs"] == {"scale": 2.0}

    again = ginpipe(tmp_path, "predict", str(run_dir), "--split", "test", "-o", "test.csv")
    assert again.returncode == 0, again.stderr[-3000:]
    expected, got = pd.read_csv(run_dir / "predictions.csv"), pd.read_csv(tmp_path / "test.csv")
    probs = [c for c in expected.columns if c.startswith("prob_")]
    assert np.abs(got[probs].to_numpy() - expected[probs].to_numpy()).max() <= 1e-5

    write_items(tmp_path / "new", 10, seed=1)
    (tmp_path / "new" / "labels.csv").unlink()
    new = ginpipe(tmp_path, "predict", str(run_dir), "new", "-o", "new.csv")
    assert new.returncode == 0, new.stderr[-3000:]
    predicted = pd.read_csv(tmp_path / "new.csv")
    assert len(predicted) == 10
    truth = ["1" if int(Path(p).stem) % 2 else "0" for p in predicted["path"]]
    assert (predicted["predicted_class"].astype(str) == truth).mean() >= 0.8

    exported = ginpipe(tmp_path, "export", str(run_dir), "-f", "torchscript", "-o", "m.pt")
    assert exported.returncode == 0, exported.stderr[-3000:]
    sidecar = json.loads((tmp_path / "m.pt.json").read_text())
    assert sidecar["verified"]["max_probability_difference"] <= 1e-4
    assert "mydecoders.read_signal(scale=2.0)" in sidecar["preprocessing_not_included"][0]
