"""``loggers/mlflow`` against a real MLflow tracking server, as a team runs it.

The test starts ``mlflow server`` on 127.0.0.1 with a SQLite backend, runs the real
``ginpipe`` console script (a ResNet that trains, selected with ``MLFLOW_TRACKING_URI``; a
scikit-learn run that does not train, selected with ``mlflow_logger.tracking_uri``), resumes
the first, and reads everything back with ``MlflowClient``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mlflow", reason="the mlflow extra is not installed")

pytestmark = pytest.mark.slow

NET = ("base", "models/resnet", "debug/fast", "loggers/mlflow")
LINEAR = ("base", "models/logreg", "loggers/mlflow")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bin_script(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def plain_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GINPIPE_"))}
    return {**env, **extra}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` with a SQLite backend and its own artifact folder."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = [
        bin_script("mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'server.db'}",
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log = (folder / "server.log").open("w")
    proc = subprocess.Popen(command, cwd=folder, env=plain_env(), stdout=log, stderr=log)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"mlflow server did not start: {(folder / 'server.log').read_text()}")
        time.sleep(0.5)
    try:
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def ginpipe(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [bin_script("ginpipe"), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def project(server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``proj/`` after: the ResNet run ``net`` (env var), the scikit-learn run ``lin`` (a
    binding), both at once; then ``net`` resumed with one more epoch."""
    path = tmp_path_factory.mktemp("work") / "proj"
    path.mkdir()
    commit = commit_a_file(path)
    (path / "notes.txt").write_text("changed after the commit\n")  # a dirty checkout
    server_binding = f"mlflow_logger.tracking_uri='{server}'"
    procs = [
        subprocess.Popen(
            [bin_script("ginpipe"), "run", *NET, "--name", "net"],
            cwd=path,
            env=plain_env(MLFLOW_TRACKING_URI=server),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
        subprocess.Popen(
            [bin_script("ginpipe"), "run", *LINEAR, "--name", "lin", "-m", server_binding],
            cwd=path,
            env=plain_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
        assert f"view it with: open {server}" in out
    first = json.loads((path / "experiments" / "proj" / "net" / "mlflow.json").read_text())
    ginpipe(
        ["resume", "experiments/proj/net", "-m", "Trainer.max_epochs=2"],
        path,
        plain_env(MLFLOW_TRACKING_URI=server),
    )
    (path / "first_net_run.json").write_text(json.dumps({**first, "commit": commit}))
    return path


def commit_a_file(path: Path) -> str:
    """The project folder as a git checkout with one commit; its hash."""

    def git(*args: str) -> str:
        command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
        return subprocess.run(
            command, cwd=path, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    (path / "notes.txt").write_text("first\n")
    git("add", "notes.txt")
    git("commit", "-q", "-m", "first")
    return git("rev-parse", "HEAD")


@pytest.fixture(scope="module")
def client(server: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(server)


def mlflow_run(client: Any, name: str) -> Any:
    experiment = client.get_experiment_by_name("proj")
    assert experiment is not None, "no experiment named after the project"
    runs = client.search_runs([experiment.experiment_id], f"attributes.run_name = '{name}'")
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def artifacts(client: Any, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def test_each_run_is_one_mlflow_run_named_after_it_and_finished(project, client) -> None:
    import ginpipe

    for name in ("net", "lin"):
        run = mlflow_run(client, name)
        assert run.info.status == "FINISHED"
        assert run.data.tags["ginpipe.status"] == "completed"
        run_dir = project / "experiments" / "proj" / name
        assert run.data.tags["ginpipe.run_dir"] == str(run_dir)
        assert run.data.tags["ginpipe.version"] == ginpipe.__version__
        first = json.loads((project / "first_net_run.json").read_text())
        assert run.data.tags["git.commit"] == first["commit"]
        assert run.data.tags["git.dirty"] == "true"
        saved = json.loads((run_dir / "mlflow.json").read_text())
        assert saved["run_id"] == run.info.run_id


def test_every_resolved_binding_is_a_param(project, client) -> None:
    params = mlflow_run(client, "net").data.params
    assert params["LR"] == "0.01"
    assert params["AdamW.lr"] == "0.01"  # %LR, resolved
    assert params["fit.model"] == "@ResNet"
    assert params["Trainer.limit_train_batches"] == "3"
    assert params["Trainer.max_epochs"] == "1"  # the first value: MLflow never changes one
    linear = mlflow_run(client, "lin").data.params
    assert linear["LogisticRegression.C"] == "1.0"


def test_a_resume_continues_the_same_mlflow_run(project, client) -> None:
    run = mlflow_run(client, "net")
    first = json.loads((project / "first_net_run.json").read_text())
    assert run.info.run_id == first["run_id"]
    assert run.data.tags["ginpipe.changed_on_resume"] == "Trainer.max_epochs=2"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert len(history) == 2  # one per epoch: the first process's and the resumed one's
    assert history[0].step < history[1].step


def test_training_curves_and_final_test_metrics(project, client) -> None:
    run = mlflow_run(client, "net")
    for key in ("train_loss", "train_acc", "val_acc", "epoch"):
        assert client.get_metric_history(run.info.run_id, key), key
    record = json.loads((project / "experiments" / "proj" / "net" / "run.json").read_text())
    assert run.data.metrics["accuracy"] == pytest.approx(record["metrics"]["accuracy"])
    assert "f1_macro" in run.data.metrics
    linear = mlflow_run(client, "lin")
    lin_record = json.loads((project / "experiments" / "proj" / "lin" / "run.json").read_text())
    assert linear.data.metrics["accuracy"] == pytest.approx(lin_record["metrics"]["accuracy"])


def test_the_run_files_are_artifacts(project, client) -> None:
    for name in ("net", "lin"):
        found = artifacts(client, mlflow_run(client, name).info.run_id)
        expected = {"config.gin", "operative.gin", "metrics.json", "predictions.csv"}
        expected |= {"plots/confusion_matrix.png", "model/MLmodel"}
        assert expected <= found, sorted(found)
    assert "plots/learning_curves.png" in artifacts(client, mlflow_run(client, "net").info.run_id)


def test_the_logged_model_predicts_what_ginpipe_predicts(project, client, server) -> None:
    import mlflow
    from sklearn.datasets import load_digits

    import ginpipe

    rows = load_digits(as_frame=True).data.iloc[:5]
    mlflow.set_tracking_uri(server)
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{mlflow_run(client, 'lin').info.run_id}/model")
        served = model.predict(rows)
    finally:
        mlflow.set_tracking_uri(None)
    expected = ginpipe.load_run(project / "experiments" / "proj" / "lin").predict(rows)
    assert list(served["predicted_class"]) == list(expected["predicted_class"])
    assert served.filter(like="prob_").to_numpy() == pytest.approx(
        expected.filter(like="prob_").to_numpy()
    )
