"""What a resume may do with a run directory: pinned inputs, completed runs, operative.gin."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ginpipe.base.errors import RunDirError
from ginpipe.config import operative
from ginpipe.core.events import TaskEvent
from ginpipe.core.taskdef import Caching, TaskSpec
from ginpipe.runs import continuation, rundir


def load(state):  # a plain task function for the fake specs
    return {}


def train(state):
    return {}


@dataclass
class Step:
    """The parts of a planned step the rules read."""

    index: int
    spec: TaskSpec
    inputs: dict[str, str] = field(default_factory=dict)
    selector: str = ""


def steps(data_key: str) -> list[Step]:
    return [
        Step(0, TaskSpec("load", load, (), ("data",))),
        Step(
            1,
            TaskSpec("train", train, ("data",), ("model",), caching=Caching(pinned=True)),
            {"data": data_key},
        ),
    ]


def make_run(tmp_path: Path, resolved: str = "load.seed = 0\ntrain.epochs = 1\n") -> rundir.RunDir:
    run = rundir.RunDir(tmp_path / "run")
    run.path.mkdir()
    run.file(rundir.CONFIG).write_text("")
    run.file(rundir.RESOLVED).write_text(resolved)
    return run


def test_the_recorder_pins_the_inputs_a_pinned_task_started_with(tmp_path) -> None:
    run = make_run(tmp_path)
    recorder = continuation.InputsRecorder(run, steps("k1"))
    recorder.on_task_start(TaskEvent(task="load", index=0, total=2, key="a"))
    assert not run.file(continuation.INPUTS).exists()  # load is not pinned
    recorder.on_task_start(TaskEvent(task="train", index=1, total=2, key="b"))
    assert json.loads(run.file(continuation.INPUTS).read_text()) == {"train": {"data": "k1"}}


def test_other_inputs_for_a_pinned_task_are_refused_naming_the_binding(tmp_path) -> None:
    run = make_run(tmp_path)
    continuation.InputsRecorder(run, steps("k1")).on_task_start(
        TaskEvent(task="train", index=1, total=2, key="b")
    )
    continuation.check_pinned_inputs(run, steps("k1"), "load.seed = 0\ntrain.epochs = 5\n")
    with pytest.raises(RunDirError) as refused:
        continuation.check_pinned_inputs(
            run, steps("k2"), "load.seed = 5\ntrain.epochs = 5\n", ["load.seed=5"]
        )
    message = str(refused.value)
    assert "inputs of 'train'" in message and "load.seed: 0 -> 5" in message
    assert "train.epochs" not in message  # only the bindings of the tasks upstream
    assert "--mod 'load.seed=5' --name NEW_NAME" in message


def test_a_code_change_upstream_is_refused_too(tmp_path) -> None:
    run = make_run(tmp_path)
    run.file(continuation.INPUTS).write_text(json.dumps({"train": {"data": "k1"}}))
    with pytest.raises(RunDirError, match="no binding: the code or library versions"):
        continuation.check_pinned_inputs(run, steps("k2"), run.file(rundir.RESOLVED).read_text())


def test_a_completed_run_with_the_same_config_has_nothing_to_do(tmp_path) -> None:
    run = make_run(tmp_path)
    run.file(rundir.RUN_JSON).write_text(json.dumps({"status": "completed", "config_digest": "d"}))
    assert continuation.is_complete(run, "d")
    assert not continuation.is_complete(run, "other")
    run.file(rundir.RUN_JSON).write_text(json.dumps({"status": "failed", "config_digest": "d"}))
    assert not continuation.is_complete(run, "d")


FIRST = """import a.fit as x2
import a.load

# Parameters for fit:
# ==============================================================================
fit.epochs = 3

# Parameters for Trainer:
# ==============================================================================
Trainer.max_epochs = 4
"""
LATER = """import a.evaluate as x3

# Parameters for evaluate:
# ==============================================================================
evaluate.batch_size = 8

# Parameters for fit:
# ==============================================================================
fit.epochs = 5
"""


def test_operative_keeps_sections_of_configurables_a_later_attempt_did_not_call() -> None:
    merged = operative.merge(FIRST, LATER)
    assert "fit.epochs = 5" in merged and "fit.epochs = 3" not in merged
    assert "Trainer.max_epochs = 4" in merged and "evaluate.batch_size = 8" in merged
    assert merged.splitlines()[:3] == ["import a.evaluate", "import a.fit", "import a.load"]
    assert operative.merge("", LATER).count("# Parameters for") == 2


def test_parameters_a_task_did_not_use_are_left_out_of_operative_gin():
    text = (
        "# Parameters for fit:\nfit.batch_size = 64\nfit.optimizer = \\\n    @AdamW\n"
        "fit.scheduler = None\n\n# Parameters for other:\nother.scheduler = 1\n"
    )
    kept = operative.drop_unused(text, {"fit": {"optimizer", "scheduler"}})
    assert kept == (
        "# Parameters for fit:\nfit.batch_size = 64\n\n# Parameters for other:\n"
        "other.scheduler = 1\n"
    )
