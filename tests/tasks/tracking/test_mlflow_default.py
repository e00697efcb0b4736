"""``loggers/mlflow`` with no server: the SQLite database under ROOT/PROJECT that the printed
``mlflow ui --backend-store-uri sqlite:///...`` command opens, read here the way the UI
reads it (``MlflowClient`` on that URI). Also: a user's own tasks are tracked, a sweep is
one parent MLflow run with its trials as children, and a missing mlflow (or tensorboard)
is refused before any work with the install line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import TOY_DIR

pytest.importorskip("mlflow", reason="the mlflow extra is not installed")

# each test starts real runs that track into a SQLite database (and the MLflow process)
pytestmark = pytest.mark.slow
UI = re.compile(r"view it with: mlflow ui --backend-store-uri (sqlite:///\S+)")


def client_for(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def runs_by_name(uri: str, experiment: str) -> dict[str, Any]:
    client = client_for(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r} in {uri}"
    return {r.info.run_name: r for r in client.search_runs([found.experiment_id])}


@pytest.fixture(autouse=True)
def no_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_a_users_own_tasks_are_tracked_in_the_default_database(toy_project, cli) -> None:
    result = cli("run", "base.gin", "loggers/mlflow", "--name", "mine", "-m", "add_up.scale=2.0")
    assert result.exit_code == 0, result.output
    printed = UI.search(result.output)
    assert printed is not None, result.output
    uri = printed.group(1)
    database = toy_project.runs / "mlflow.db"
    assert uri == f"sqlite:///{database.resolve()}"
    run = runs_by_name(uri, "proj")["mine"]
    assert run.info.status == "FINISHED"
    assert run.data.params["add_up.scale"] == "2.0"
    assert run.data.params["make_numbers.n"] == "4"
    reported = toy_project.run_json("mine")["metrics"]
    assert run.data.metrics["total"] == pytest.approx(reported["total"])
    assert run.data.metrics["accuracy"] == pytest.approx(reported["accuracy"])
    client = client_for(uri)
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.gin", "operative.gin", "metrics.json"} <= names
    # artifacts stay inside the root, beside the database
    assert (toy_project.runs / "mlartifacts").is_dir()
    assert list((toy_project.runs / "mlartifacts").rglob("operative.gin"))
    assert not (toy_project.path / "mlruns").exists()


def test_a_database_of_ones_own_keeps_the_artifacts_beside_it(toy_project, cli, monkeypatch):
    database = toy_project.path.parent / "tracking" / "team.db"
    database.parent.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    assert cli("run", "base.gin", "loggers/mlflow", "--name", "own").exit_code == 0
    run = runs_by_name(f"sqlite:///{database}", "proj")["own"]
    assert run.info.artifact_uri.startswith((database.parent / "mlartifacts").as_uri())
    assert list((database.parent / "mlartifacts").rglob("operative.gin"))
    assert not (toy_project.path / "mlruns").exists()
    assert not (toy_project.runs / "mlflow.db").exists()


def test_a_failed_run_is_tracked_as_failed(toy_project, cli) -> None:
    toy_project.write("fail.gin", "import toytasks\nrun.tasks = [@make_numbers, @explode]\n")
    result = cli("run", "fail.gin", "loggers/mlflow", "--name", "bad")
    assert result.exit_code == 1, result.output
    uri = f"sqlite:///{(toy_project.runs / 'mlflow.db').resolve()}"
    run = runs_by_name(uri, "proj")["bad"]
    assert run.info.status == "FAILED"
    assert run.data.tags["ginpipe.status"] == "failed"


def test_an_unreachable_server_costs_the_record_not_the_run(toy_project, cli, monkeypatch) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    binding = f"mlflow_logger.tracking_uri='http://127.0.0.1:{port}'"
    result = cli("run", "base.gin", "loggers/mlflow", "--name", "r", "-m", binding)
    assert result.exit_code == 0, result.output
    assert "MLflow: the run is not tracked" in result.output
    assert toy_project.run_json("r")["status"] == "completed"
    assert not (toy_project.run_dir("r") / "mlflow.json").exists()


@pytest.mark.parametrize("tool", ["mlflow", "tensorboard"])
def test_a_missing_tool_is_refused_before_any_work(toy_project, cli, monkeypatch, tool) -> None:
    from ginpipe.config import checks

    installed = checks.is_installed
    monkeypatch.setattr(checks, "is_installed", lambda m: m != tool and installed(m))
    result = cli("run", "base.gin", f"loggers/{tool}", "--name", "r")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert f"{tool}.gin:" in lines[0]
    assert f"needs '{tool}'" in lines[0]
    assert f'pip install "ginpipe-ml[{tool}]"' in lines[0]
    assert not toy_project.root.exists()


@pytest.mark.slow
def test_the_console_script_tracks_a_sweep_as_a_parent_with_its_trials(tmp_path: Path) -> None:
    """The real ``ginpipe`` script: a scikit-learn run, then a two-trial sweep."""
    work = tmp_path / "proj"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GINPIPE_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TOY_DIR), env.get("PYTHONPATH")]))
    script = str(Path(sys.executable).with_name("ginpipe"))
    sweep = [script, "sweep", "base", "models/logreg", "loggers/mlflow"]
    sweep += ["-m", "LogisticRegression.C=0.5,2.0", "--metric", "accuracy"]
    result = subprocess.run(sweep, cwd=work, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    printed = UI.search(result.stdout + result.stderr)
    assert printed is not None, result.stderr
    runs = runs_by_name(printed.group(1), "proj")
    parents = [name for name in runs if name.startswith("sweep-")]
    assert len(parents) == 1, sorted(runs)
    parent = runs[parents[0]]
    trials = {name: run for name, run in runs.items() if name.startswith("trial-")}
    assert sorted(trials) == ["trial-0000", "trial-0001"]
    for name, run in trials.items():
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["ginpipe.sweep"] == parents[0]
        assert run.data.tags["ginpipe.trial"] == name
        assert run.info.status == "FINISHED"
    assert {r.data.params["LogisticRegression.C"] for r in trials.values()} == {"0.5", "2.0"}
    history = client_for(printed.group(1)).get_metric_history(parent.info.run_id, "accuracy")
    assert sorted(m.step for m in history) == [0, 1]  # each trial's main metric, by number


def test_a_run_whose_process_died_is_closed_as_killed(tmp_path: Path, monkeypatch) -> None:
    """The MLflow process outlives a run killed without a word: end of its input ends the
    MLflow run as killed (status tag ``stopped``); it writes nothing where it was started."""
    from ginpipe.tasks.tracking_sidecar import Sidecar

    monkeypatch.chdir(tmp_path)

    run_dir = tmp_path / "root" / "proj" / "gone"
    run_dir.mkdir(parents=True)
    (run_dir / "resolved.gin").write_text("LR = 0.5\n")
    uri = f"sqlite:///{tmp_path / 'root' / 'proj' / 'mlflow.db'}"
    sidecar = Sidecar(run_dir / "mlflow.log")
    sidecar.send({"op": "open", "tracking_uri": uri, "experiment": "proj", "run_dir": str(run_dir)})
    assert sidecar.proc.stdin is not None
    sidecar.proc.stdin.close()  # what the kernel does when the run's process is killed
    assert sidecar.proc.wait(timeout=120) == 0
    run = runs_by_name(uri, "proj")["gone"]
    assert run.info.status == "KILLED"
    assert run.data.tags["ginpipe.status"] == "stopped"
    assert run.data.params["LR"] == "0.5"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]  # no ./mlflow.db, ./mlruns
