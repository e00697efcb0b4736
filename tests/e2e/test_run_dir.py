"""The run directory is the unit of truth: never poisoned, self-contained, relocatable, and
its model usable through ``predict``, ``export``, ``load_run`` and ``demo``.

The runs train with configs/debug/fast.gin (one short epoch) and are made once per module
by in-process CLI calls; the tests then read what they left. One test drives the real
``ginpipe`` console script in subprocesses from a temporary folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gin
import numpy as np
import pandas as pd
import pytest
from conftest import LAUNCHER_VARIABLES
from typer.testing import CliRunner

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
FAST = [str(CONFIGS / "debug" / "fast.gin")]
RESNET = [str(CONFIGS / "base.gin"), str(CONFIGS / "models" / "resnet.gin"), *FAST]
MLP_WINE = [
    str(CONFIGS / "base.gin"),
    str(CONFIGS / "data" / "wine.gin"),
    str(CONFIGS / "models" / "mlp.gin"),
    *FAST,
]
LOGREG = [str(CONFIGS / "base.gin"), str(CONFIGS / "models" / "logreg.gin")]
SMALL = ["ResNet.width=8", "ResNet.blocks_per_stage=[1]"]
PROB_TOLERANCE = 1e-5


def invoke(*args: Any) -> Any:
    """The ``ginpipe`` CLI in this process (a fresh gin config each time)."""
    from ginpipe.cli import app

    gin.clear_config()
    result = CliRunner().invoke(app, [str(a) for a in args], env={"GINPIPE_RUN_DIR": None})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def run(root: Path, name: str, configs: list[str], *mods: str) -> Any:
    mod_args = [arg for mod in mods for arg in ("--mod", mod)]
    return invoke("run", *configs, *mod_args, "--name", name, "--root", root, "--project", "p")


def task_status(run_dir: Path) -> dict[str, str]:
    import json

    record = json.loads((run_dir / "run.json").read_text())
    return {task["name"]: task["status"] for task in record["tasks"]}


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


def write_png_digits(folder: Path, count: int = 240) -> Path:
    """``count`` digits as 8x8 PNG files plus labels.csv (path, label, group)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = []
    for index in range(count):
        label = int(digits.target[index])
        relative = f"images/{label}/{index:04d}.png"
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        pixels = np.round(digits.images[index] * (255 / 16)).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / relative)
        rows.append((relative, label, index % 20))
    table = folder / "labels.csv"
    pd.DataFrame(rows, columns=["path", "label", "group"]).to_csv(table, index=False)
    return table


def files_configs(folder: Path) -> list[str]:
    table = write_png_digits(folder)
    extra = folder / "mine.gin"
    extra.write_text(
        f"include '{CONFIGS / 'data' / 'files.gin'}'\n"
        f"load_table.path = '{table}'\n"
        "fit.num_workers = 0\n"
        "make_features.stats_sample = 32\n"
    )
    return [str(CONFIGS / "base.gin"), str(extra), str(CONFIGS / "models" / "resnet.gin"), *FAST]


@dataclass
class Runs:
    root: Path
    results: dict[str, Any] = field(default_factory=dict)

    def dir(self, name: str) -> Path:
        return self.root / "p" / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Every run the tests read, made once."""
    base = tmp_path_factory.mktemp("rundir")
    found = Runs(base / "experiments")
    root, r = found.root, found.results
    previous = os.getcwd()
    os.chdir(base)
    try:
        r["leak"] = run(root, "leak", RESNET, *SMALL)
        r["leak_hashes"] = file_hashes(found.dir("leak"))
        r["leak_resume"] = invoke("resume", found.dir("leak"), "--mod", "split_dataset.seed=5")
        r["leak_after"] = file_hashes(found.dir("leak"))
        r["fresh"] = run(root, "fresh", RESNET, *SMALL, "split_dataset.seed=5")
        r["completed_resume"] = invoke("resume", found.dir("leak"))
        r["completed_after"] = file_hashes(found.dir("leak"))
        r["again"] = run(root, "again", RESNET, *SMALL)  # fit is read from the cache
        r["mlp"] = run(root, "mlp", MLP_WINE)
        r["logreg"] = run(root, "logreg", LOGREG)
        r["files"] = run(root, "files", files_configs(base / "pngs"), *SMALL)
        yield found
    finally:
        os.chdir(previous)


def predictions_match(expected_csv: Path, got: pd.DataFrame, identifier: str) -> None:
    expected = pd.read_csv(expected_csv)
    assert list(got[identifier].astype(str)) == list(expected[identifier].astype(str))
    assert list(got["predicted_class"].astype(str)) == list(expected["predicted_class"].astype(str))
    probs = [column for column in expected.columns if column.startswith("prob_")]
    assert [c for c in got.columns if c.startswith("prob_")] == probs
    assert np.abs(got[probs].to_numpy() - expected[probs].to_numpy()).max() <= PROB_TOLERANCE


# -- never poisoned ---------------------------------------------------------------------------


def test_a_resume_that_changes_the_split_is_refused_and_names_the_binding(runs: Runs) -> None:
    result = runs.results["leak_resume"]
    assert result.exit_code == 2, result.output
    assert "split_dataset.seed: 0 -> 5" in result.output
    assert "--name" in result.output
    assert runs.results["leak_after"] == runs.results["leak_hashes"]  # nothing touched


def test_a_fresh_run_on_the_new_split_trains_its_own_model(runs: Runs) -> None:
    # The leak: the resume above stored a model trained on the old split under the new
    # split's key, and this run then reused it, scoring test rows it had trained on.
    assert runs.results["fresh"].exit_code == 0, runs.results["fresh"].output
    assert task_status(runs.dir("fresh"))["fit"] == "completed"


def test_resuming_a_completed_run_changes_nothing(runs: Runs) -> None:
    assert runs.results["completed_resume"].exit_code == 0
    assert runs.results["completed_after"] == runs.results["leak_hashes"]


# -- self-contained and relocatable -----------------------------------------------------------


def test_a_run_that_reused_fit_has_the_model_and_survives_pruning(runs: Runs, tmp_path) -> None:
    assert task_status(runs.dir("again"))["fit"] == "cached"
    bundle = runs.dir("again") / "model"
    assert (bundle / "weights.safetensors").is_file() and (bundle / "model.json").is_file()
    assert (runs.dir("again") / "environment.txt").read_text().count("torch==") == 1
    # as complete as the run that trained: checkpoints, training log and its curves
    trained = runs.dir("leak")
    for name in ("checkpoints/last.ckpt", "logs/metrics.csv", "plots/learning_curves.png"):
        assert (runs.dir("again") / name).is_file(), name
    assert (runs.dir("again") / "logs" / "metrics.csv").read_text() == (
        trained / "logs" / "metrics.csv"
    ).read_text()

    pruned = tmp_path / "copy"
    shutil.copytree(runs.root, pruned / "experiments")
    prune = invoke("cache", "prune", "--max-size", "0", "--root", pruned / "experiments")
    assert prune.exit_code == 0 and not list((pruned / "experiments" / ".cache").rglob("*.npy"))
    again = pruned / "experiments" / "p" / "again"
    out = tmp_path / "again.csv"
    assert invoke("predict", again, "--split", "test", "-o", out).exit_code == 0
    predictions_match(again / "predictions.csv", pd.read_csv(out), "row")


def test_a_run_that_reused_fit_trains_on_from_the_checkpoint(runs: Runs, tmp_path) -> None:
    """Fine-tuning a cache-hit run continues from the checkpoint it was given."""
    copy = tmp_path / "experiments"
    shutil.copytree(runs.root, copy)
    again = copy / "p" / "again"
    before = pd.read_csv(again / "logs" / "metrics.csv")
    result = invoke("resume", again, "-m", "Trainer.max_epochs=3")
    assert result.exit_code == 0, result.output
    assert task_status(again)["fit"] == "completed"
    log = pd.read_csv(again / "logs" / "metrics.csv")
    assert log["epoch"].max() == 2
    # epoch 0 was not trained again: its rows are the cached run's, once
    assert (log["epoch"] == 0).sum() == (before["epoch"] == 0).sum()


def test_a_moved_root_resumes_predicts_and_diffs(runs: Runs, tmp_path) -> None:
    moved = tmp_path / "elsewhere"
    shutil.copytree(runs.root, moved)
    leak = moved / "p" / "leak"
    assert not any(str(runs.root) in text for text in _texts_read_by_resume(leak))

    assert invoke("resume", leak, "--mod", "Trainer.max_epochs=2").exit_code == 0
    assert task_status(leak)["fit"] == "completed"
    assert (leak / "checkpoints" / "last.ckpt").is_file()

    out = tmp_path / "p.csv"
    assert invoke("predict", leak, "--split", "test", "-o", out).exit_code == 0
    predictions_match(leak / "predictions.csv", pd.read_csv(out), "row")
    diff = invoke("diff", moved / "p" / "again", leak)
    assert diff.exit_code == 0 and "Trainer.max_epochs: 1 -> 2" in diff.output


def _texts_read_by_resume(run_dir: Path) -> list[str]:
    import torch

    texts = [(run_dir / name).read_text() for name in ("config.gin", "inputs.json")]
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    texts.append(repr(checkpoint["callbacks"]))
    texts.append((run_dir / "model" / "model.json").read_text())
    return texts


# -- predict reproduces predictions.csv -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "identifier"), [("files", "path"), ("mlp", "row"), ("logreg", "row")]
)
def test_predict_on_the_test_split_reproduces_predictions_csv(
    runs: Runs, tmp_path: Path, name: str, identifier: str
) -> None:
    assert runs.results[name].exit_code == 0, runs.results[name].output
    out = tmp_path / "out.csv"
    result = invoke("predict", runs.dir(name), "--split", "test", "-o", out, "--batch-size", "7")
    assert result.exit_code == 0, result.output
    predictions_match(runs.dir(name) / "predictions.csv", pd.read_csv(out), identifier)


def test_predict_from_a_table_of_files_equals_the_run_s_own_predictions(
    runs: Runs, tmp_path
) -> None:
    expected = pd.read_csv(runs.dir("files") / "predictions.csv")
    table = tmp_path / "input.parquet"
    expected[["path"]].to_parquet(table)
    out = tmp_path / "out.csv"
    assert invoke("predict", runs.dir("files"), table, "-o", out).exit_code == 0
    predictions_match(runs.dir("files") / "predictions.csv", pd.read_csv(out), "path")


def test_predict_from_a_feature_table_and_an_array(runs: Runs, tmp_path) -> None:
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True)
    expected = pd.read_csv(runs.dir("mlp") / "predictions.csv")
    rows = expected["row"].to_numpy()
    wine.data.iloc[rows].to_csv(tmp_path / "features.csv", index=False)
    np.save(tmp_path / "features.npy", wine.data.to_numpy()[rows])
    for source in ("features.csv", "features.npy"):
        out = tmp_path / f"{source}.out.csv"
        assert invoke("predict", runs.dir("mlp"), tmp_path / source, "-o", out).exit_code == 0
        got = pd.read_csv(out)
        assert list(got["row"]) == list(range(len(rows)))
        got["row"] = rows
        predictions_match(runs.dir("mlp") / "predictions.csv", got, "row")


def test_load_run_predicts_in_python(runs: Runs) -> None:
    from ginpipe import load_run

    run = load_run(runs.dir("logreg"))
    assert run.status == "completed" and run.metrics["accuracy"] > 0.8
    assert run.config["LogisticRegression.C"] == 1.0
    assert hasattr(run.model, "predict_proba")
    predictions_match(run.dir / "predictions.csv", run.predict(split="test"), "row")


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[str, str]]:
    (tmp_path / "no_path.csv").write_text("file,label\na.png,1\n")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "broken.csv").write_text(f"path\n{tmp_path / 'broken.png'}\n")
    (tmp_path / "other_columns.csv").write_text("alcohol,colour\n1.0,2.0\n")
    np.save(tmp_path / "wrong_shape.npy", np.zeros((3, 5), dtype=np.float32))
    with_nan = np.ones((4, 13), dtype=np.float32)
    with_nan[2, 5] = np.nan
    np.save(tmp_path / "nan.npy", with_nan)
    return {
        "nan.npy": ("mlp", "input 2 holds NaN or infinite values"),
        "no_path.csv": ("files", "has no 'path' column"),
        "broken.csv": ("files", "cannot read image"),
        "other_columns.csv": ("mlp", "has other columns 'colour'"),
        "wrong_shape.npy": ("mlp", "has shape (3, 5); the run needs (N, 13)"),
    }


def test_bad_input_is_one_line_exit_2_and_nothing_written(runs: Runs, tmp_path) -> None:
    for source, (name, message) in _bad_inputs(tmp_path).items():
        out = tmp_path / f"{source}.out.csv"
        result = invoke("predict", runs.dir(name), tmp_path / source, "-o", out)
        assert result.exit_code == 2, (source, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], (source, result.output)
        assert not out.exists() and not list(tmp_path.glob(".tmp-*"))


def test_a_negative_worker_count_is_one_line(runs: Runs, tmp_path) -> None:
    out = tmp_path / "p.csv"
    result = invoke("predict", runs.dir("mlp"), "--split", "test", "-o", out, "--num-workers", "-1")
    assert result.exit_code == 2
    assert result.output.strip() == "error: --num-workers must be 0 or more, got -1"


# -- export -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_includes_normalization_and_matches_predict(runs: Runs, tmp_path, fmt) -> None:
    import json

    if fmt == "onnx" and importlib.util.find_spec("onnxruntime") is None:
        pytest.skip('needs the onnx extra: pip install "ginpipe-ml[onnx]"')
    out = tmp_path / ("model.onnx" if fmt == "onnx" else "model.pt")
    result = invoke("export", runs.dir("files"), "--format", fmt, "-o", out)
    assert result.exit_code == 0, result.output
    sidecar = json.loads(out.with_name(out.name + ".json").read_text())
    assert sidecar["input"]["shape"] == ["batch", 1, 8, 8]
    assert sidecar["classes"] == [str(i) for i in range(10)]
    assert sidecar["preprocessing_included"] == ["normalization by the run's mean and std"]
    assert "resize" in sidecar["preprocessing_not_included"][0]
    assert sidecar["verified"]["max_probability_difference"] <= 1e-4

    # Independently of export's own check: the file on raw pixels equals predict.
    from ginpipe.tasks.data.images import read_pixels

    expected = pd.read_csv(runs.dir("files") / "predictions.csv")
    pixels = np.stack([read_pixels(p, (8, 8), 1) for p in expected["path"]])
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        probs = session.run(None, {"input": pixels})[0]
    else:
        import torch

        probs = torch.jit.load(str(out))(torch.from_numpy(pixels)).detach().numpy()
    columns = [c for c in expected.columns if c.startswith("prob_")]
    assert np.abs(probs - expected[columns].to_numpy()).max() <= 1e-4


def test_export_of_an_estimator_is_refused_in_one_line(runs: Runs, tmp_path) -> None:
    result = invoke("export", runs.dir("logreg"), "--format", "torchscript", "-o", tmp_path / "m")
    assert result.exit_code == 2 and "scikit-learn estimator" in result.output
    assert not (tmp_path / "m").exists()


# -- outputs never replace a run's record or their input -------------------------------------


@pytest.mark.parametrize(
    ("command", "target", "expected"),
    [
        (("predict", "{run}", "--split", "test"), "{run}/metrics.json", "inside the run directory"),
        (("predict", "{run}", "--split", "test"), "{run}/config.gin", "inside the run directory"),
        (("predict", "{run}", "{input}"), "{input}", "is the input being read"),
        # the sidecar would be RUN/run.json: the run's own record
        (("export", "{run}", "-f", "torchscript"), "{run}/run", "inside the run directory"),
        (("export", "{run}", "-f", "torchscript"), "{folder}", "is a folder"),
    ],
)
def test_an_output_over_the_run_or_its_input_is_refused_before_work(
    runs: Runs, tmp_path, command, target, expected
) -> None:
    run_dir = runs.dir("files")
    table = tmp_path / "table.csv"
    pd.read_csv(run_dir / "predictions.csv")[["path"]].to_csv(table, index=False)
    (tmp_path / "folder").mkdir()
    names = {"run": run_dir, "input": table, "folder": tmp_path / "folder"}
    before, table_before = file_hashes(run_dir), table.read_bytes()
    args = [str(a).format(**names) for a in command]
    result = invoke(*args, "-o", target.format(**names))
    assert result.exit_code == 2, result.output
    assert expected in result.output and len(result.output.strip().splitlines()) == 1
    assert file_hashes(run_dir) == before
    assert table.read_bytes() == table_before


def test_export_to_a_file_without_a_suffix_in_a_new_folder(runs: Runs, tmp_path) -> None:
    out = tmp_path / "out" / "noext"
    result = invoke("export", runs.dir("files"), "--format", "torchscript", "-o", out)
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.with_name("noext.json").is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["noext", "noext.json"]


# -- the real console script, from a temporary folder -----------------------------------------


def ginpipe_command() -> list[str]:
    script = Path(sys.executable).with_name("ginpipe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ginpipe.cli"]


def console(args: list[Any], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    return subprocess.run(
        [*ginpipe_command(), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_console_script_trains_then_the_moved_run_predicts_and_exports(tmp_path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    trained = console(
        ["run", *RESNET, *[a for m in SMALL for a in ("--mod", m)], "--name", "r"], work
    )
    assert trained.returncode == 0, trained.stderr
    moved = tmp_path / "archive" / "r"
    moved.parent.mkdir()
    shutil.move(work / "experiments" / "work" / "r", moved)
    shutil.rmtree(work)  # neither the cache nor the folder it ran in is left

    np.save(tmp_path / "items.npy", np.zeros((5, 1, 8, 8), dtype=np.float32))
    predicted = console(
        ["predict", moved, tmp_path / "items.npy", "-o", tmp_path / "p.csv"], tmp_path
    )
    assert predicted.returncode == 0, predicted.stderr
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table.columns[:2]) == ["row", "predicted_class"] and len(table) == 5
    assert np.allclose(table[[f"prob_{i}" for i in range(10)]].sum(axis=1), 1.0)

    exported = console(
        ["export", moved, "--format", "torchscript", "-o", tmp_path / "m.pt"], tmp_path
    )
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "m.pt").is_file() and (tmp_path / "m.pt.json").is_file()


# -- demo -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_demo(run_dir: Path) -> tuple[subprocess.Popen, Any, str]:
    """The demo of ``run_dir`` on a free port, once it says where it is, and a client."""
    from gradio_client import Client

    port = free_port()
    proc = subprocess.Popen(
        [*ginpipe_command(), "demo", str(run_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    announced = proc.stdout.readline() if proc.stdout else ""  # printed once it listens
    assert f"http://127.0.0.1:{port}/" in announced, (announced, proc.poll())
    return proc, Client(f"http://127.0.0.1:{port}/", verbose=False), announced


@pytest.mark.parametrize("name", ["mlp", "files"])
def test_demo_answers_over_http_with_every_class(runs: Runs, name: str) -> None:
    if importlib.util.find_spec("gradio_client") is None:
        pytest.skip('needs the demo extra: pip install "ginpipe-ml[demo]" (gradio is large)')
    from gradio_client import handle_file

    from ginpipe import load_run

    run = load_run(runs.dir(name))
    proc, client, _ = start_demo(runs.dir(name))
    try:
        if name == "mlp":
            from sklearn.datasets import load_wine

            wine = load_wine(as_frame=True)
            row = wine.data.to_numpy()[0]
            given = {"headers": list(wine.data.columns), "data": [row.tolist()], "metadata": None}
            expected = run.predict(row[None, :].astype(np.float32))
        else:
            path = pd.read_csv(runs.dir(name) / "predictions.csv")["path"][0]
            given = handle_file(path)
            expected = run.predict([path])
        answer = client.predict(given, api_name="/predict")
        assert answer["label"] == str(expected["predicted_class"][0])
        confidences = {c["label"]: c["confidence"] for c in answer["confidences"]}
        assert sorted(confidences) == sorted(run.classes)  # every class, not the top 5
        for label, value in confidences.items():
            assert abs(value - expected[f"prob_{label}"][0]) < 1e-6
    finally:
        proc.terminate()
        proc.wait(timeout=30)
