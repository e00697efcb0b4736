"""The Python API as a notebook uses it: several runs in one process, each in its own
directory, the process left as it was, errors raised as the CLI's exception classes.

Runs in a child interpreter (no jupyter kernel is installed here): it imports ginpipe,
runs twice, composes, and reports what it saw as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BASE_GIN, TOY_DIR

SCRIPT = """
import json, os, signal, sys
sys.path.insert(0, {toy!r})
import ginpipe
from ginpipe.base.errors import ConfigError

env_before = dict(os.environ)
handlers_before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
first = ginpipe.run(["base.gin"], mods=["make_numbers.n=5"], root="experiments", name="one")
second = ginpipe.run(["base.gin"], mods=["add_up.scale=2.0"], root="experiments")
third = ginpipe.run(["base.gin"], root="elsewhere", name="three")
text = ginpipe.compose(["base.gin"], mods=["make_numbers.n=7"])
try:
    ginpipe.run(["base.gin"], mods=["make_numbrs.n=1"])
    error = None
except ConfigError as e:
    error = str(e)
print(json.dumps({{
    "dirs": [str(r.dir) for r in (first, second, third)],
    "status": [r.status for r in (first, second, third)],
    "totals": [r.metrics["total"] for r in (first, second, third)],
    "env_same": dict(os.environ) == env_before,
    "handlers_same": handlers_before == (signal.getsignal(signal.SIGINT),
                                         signal.getsignal(signal.SIGTERM)),
    "composed": "make_numbers.n = 7" in text,
    "error": error,
}}))
"""


def test_two_runs_and_a_compose_in_one_process(tmp_path: Path) -> None:
    (tmp_path / "base.gin").write_text(BASE_GIN)
    env = {k: v for k, v in __import__("os").environ.items() if k != "GINPIPE_RUN_DIR"}
    env["GINPIPE_RUN_DIR"] = str(tmp_path / "stale")  # a leftover must not redirect runs
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(toy=str(TOY_DIR))],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Logging error" not in result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    first, second, third = (Path(d) for d in seen["dirs"])
    assert first.name == "one" and third.name == "three"
    assert len({first, second, third}) == 3
    assert second.parent == first.parent and "elsewhere" in third.parts
    assert seen["status"] == ["completed"] * 3
    assert seen["totals"] == [15.0, 20.0, 10.0]
    assert seen["env_same"] and seen["handlers_same"] and seen["composed"]
    expected = "--mod 'make_numbrs.n=1': unknown configurable 'make_numbrs'"
    assert seen["error"] == f"{expected} (did you mean 'make_numbers'?)"
    assert not (tmp_path / "stale").exists()


NOTEBOOK = """
import importlib, json, os, sys
import gin
sys.path.insert(0, os.getcwd())
import ginpipe
gin.enter_interactive_mode()  # a notebook re-registers a reloaded module's tasks
import scorer
first = ginpipe.run(["score.gin"], root="experiments", name="one")
source = open("scorer.py").read()
with open("scorer.py", "w") as f:  # the same size, within the same second: an edit
    f.write(source.replace("1.0", "0.5"))
importlib.reload(scorer)
second = ginpipe.run(["score.gin"], root="experiments", name="two")
print(json.dumps({"accuracy": [first.metrics["accuracy"], second.metrics["accuracy"]],
                  "tasks": [t["status"] for t in second.record["tasks"]]}))
"""

SCORER = """
from ginpipe import task


@task(writes=("metrics",))
def score(state):
    return {"metrics": {"accuracy": 1.0}}
"""


def test_a_task_module_edited_and_reloaded_in_a_notebook_is_run_again(tmp_path: Path) -> None:
    """The cache must never answer for code the user has since changed."""
    (tmp_path / "scorer.py").write_text(SCORER)
    (tmp_path / "score.gin").write_text("import scorer\nrun.tasks = [@score]\n")
    result = subprocess.run(
        [sys.executable, "-c", NOTEBOOK], cwd=tmp_path, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["accuracy"] == [1.0, 0.5]
    assert seen["tasks"] == ["completed"]


KERNEL = """
import sys, types
sys.modules["ipykernel"] = types.ModuleType("ipykernel")  # as inside a Jupyter kernel
sys.modules["ipywidgets"] = None  # which has no widgets installed
import ginpipe
run = ginpipe.run(["base", "models/resnet", "debug/fast"], mods=["Trainer.max_epochs=2"])
print("status", run.status)
from loguru import logger
logger.info("the user's own line")
"""


@pytest.mark.slow
def test_a_notebook_without_widgets_shows_epochs_and_short_log_lines(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", KERNEL], cwd=tmp_path, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    epochs = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"]
    assert "val_acc" in epochs[-1] and "train_loss" in epochs[-1]
    assert "ipywidgets" not in result.stdout + result.stderr
    ours = [line for line in result.stderr.splitlines() if "run completed" in line]
    assert len(ours) == 1 and "\x1b[" not in ours[0] and " | " not in ours[0]
    assert ours[0].split()[1] == "SUCCESS"
    # loguru's own format is back for the user's lines once the run is over
    [own] = [line for line in result.stderr.splitlines() if "the user's own line" in line]
    assert " | INFO     | __main__:<module>:" in own


def test_a_single_config_or_mod_is_one_not_a_list_of_letters(toy_project) -> None:
    import ginpipe

    text = ginpipe.compose("base.gin", "make_numbers.n=7")
    assert "make_numbers.n = 7" in text
    assert ginpipe.compose(Path("base.gin"), ["make_numbers.n=7"]) == text
