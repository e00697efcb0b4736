"""The MLflow process starts as soon as a run's config is read, before the run imports what
the config names, and the tracker takes that process over; one nobody takes (a refused
config) is ended, and a run leaves no process behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
from conftest import TOY_DIR

from ginpipe.base import prestart
from ginpipe.base.errors import EXIT_USAGE

pytest.importorskip("mlflow", reason="the mlflow extra is not installed")

TRACKER = "ginpipe.tasks.tracking_process"


def test_the_mlflow_observer_wants_its_process_by_short_or_dotted_name() -> None:
    assert prestart.wanted(["run", "mlflow_logger"]) == [TRACKER]
    assert prestart.wanted(["ginpipe.tasks.tracking.mlflow_logger"]) == [TRACKER]
    assert prestart.wanted(["run", "fit", "tensorboard_logger"]) == []


def test_a_process_nobody_takes_is_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prestart, "_modules_by_name", lambda: {"echo": "json.tool"})
    helpers = prestart.Prestarted()
    helpers.start(["echo"])
    helpers.start(["echo"])  # started once
    assert list(helpers.started) == ["json.tool"]
    proc = helpers.started["json.tool"]
    helpers.discard()
    assert proc.returncode is not None
    assert helpers.take("json.tool") is None


def test_a_process_is_its_runs_and_is_taken_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prestart, "_modules_by_name", lambda: {"echo": "json.tool"})
    first, second = prestart.Prestarted(), prestart.Prestarted()
    first.start(["echo"])
    taken = first.take("json.tool")
    try:
        assert taken is not None and taken.poll() is None
        assert second.take("json.tool") is None  # not the other run's
        assert first.take("json.tool") is None  # taken once
    finally:
        if taken is not None:
            taken.kill()
            taken.communicate()


def test_a_refused_config_leaves_no_process(toy_project, cli, monkeypatch) -> None:
    spawned: list[Any] = []
    spawn = prestart.spawn
    monkeypatch.setattr(prestart, "spawn", lambda m: spawned.append(spawn(m)) or spawned[-1])
    result = cli("run", "base.gin", "loggers/mlflow", "-m", "add_up.scalez=2.0")
    assert result.exit_code == EXIT_USAGE, result.output
    assert len(spawned) == 1  # it was started, before the names were checked...
    assert spawned[0].returncode is not None  # ...and ended with the refusal
    assert not (toy_project.path / "experiments").exists()


DRIVER = """
import sys, time
sys.path.insert(0, {toy!r})
from ginpipe.base import prestart
spawn, take, discard = prestart.spawn, prestart.Prestarted.take, prestart.Prestarted.discard
def spawned(module):
    print("spawned; toytasks imported:", "toytasks" in sys.modules, flush=True)
    return spawn(module)
def taken(self, module):
    proc = take(self, module)
    print("taken:", proc is not None, flush=True)
    return proc
def discarded(self):
    print("left:", len(self.started), flush=True)
    discard(self)
prestart.spawn, prestart.Prestarted.take = spawned, taken
prestart.Prestarted.discard = discarded
from ginpipe.cli import app
try:
    app(["run", "base.gin", "loggers/mlflow", "--name", "early"])
except SystemExit as end:
    print("exit:", end.code, flush=True)
"""


@pytest.mark.slow
def test_the_process_starts_before_the_configs_imports_and_is_taken_over(toy_project) -> None:
    driver = textwrap.dedent(DRIVER.format(toy=str(TOY_DIR)))
    done = subprocess.run(
        [sys.executable, "-c", driver], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [
        "spawned; toytasks imported: False",
        "taken: True",
        "left: 0",
        "exit: 0",
    ]
    assert "tracked in MLflow, run early" in done.stderr
    assert toy_project.run_json("early")["status"] == "completed"
