"""Faults injected into the real ``ginpipe`` CLI, then ``ginpipe resume RUN_DIR``.

One module fixture starts every process in two waves (processes of a wave run together):

1. an uninterrupted reference run; runs SIGKILLed at exact instants (inside a data task,
   mid-epoch, during and just after a checkpoint write, during a cache write); runs
   stopped by SIGINT, SIGTERM and an exception inside a training step.
2. ``ginpipe resume`` of each of those; resumes of copies of the finished reference run:
   one more epoch, a model of another width, a truncated ``last.ckpt``.

The tests then read what each process left: exit codes, ``run.json``, metrics,
``logs/metrics.csv``, checkpoints, the cache, and the trace of training steps written by
``killer.py``. On CPU with a fixed seed and deterministic kernels, a run killed at any
instant and resumed must end with the metrics, log rows and checkpoints of the
uninterrupted run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from faultrun import (
    BATCHES,
    EPOCHS,
    PROJECT,
    Launch,
    copy_root,
    csv_rows,
    read_json,
    run_all,
    run_args,
    snapshot,
    temp_leftovers,
)

from ginpipe.core.store import MANIFEST, ArtifactStore

pytestmark = pytest.mark.slow

NAME = "trial"
MID_EPOCH_STEP = BATCHES + 2  # the third batch of the second epoch
TOLERANCE = 1e-6
CACHED_TASKS = ("load_sklearn", "split_dataset", "make_features", "fit")


@dataclass(frozen=True)
class Kill:
    """A SIGKILL at one instant, and what a resume of it must do."""

    at: str
    first_resumed_step: int  # the global step the resumed process trains first
    recomputed: tuple[str, ...]  # cached tasks the resume must run again


KILLS = {
    # make_features has read `dataset` and asks for `splits`
    "data-task": Kill("features:2", 0, ("make_features", "fit")),
    # third step of epoch 1: resume from the end-of-epoch-0 checkpoint
    "mid-epoch": Kill(f"train-step:{MID_EPOCH_STEP}", BATCHES, ("fit",)),
    # the first last.ckpt is written but not yet renamed: nothing to resume, start over
    "first-checkpoint-write": Kill("checkpoint-write:1", 0, ("fit",)),
    # the last.ckpt of epoch 1 is written but not renamed: resume from epoch 0's
    "checkpoint-write": Kill("checkpoint-write:2", BATCHES, ("fit",)),
    # the last.ckpt of epoch 1 has just been renamed into place: resume from it
    "after-checkpoint-write": Kill("checkpoint-written:2", 2 * BATCHES, ("fit",)),
    # make_features' cache entry has its files but no manifest yet
    "cache-write": Kill("cache-files:3", 0, ("make_features", "fit")),
}
# Lightning logs an epoch's train_loss/train_acc row after it asks for the epoch's
# checkpoint (on_train_epoch_end), so a kill between the two loses that row for good. The
# checkpoint is written on a worker thread, which usually renames it into place after the
# row is logged, but nothing orders the two: the kill may or may not find the row.
LOG_GAP = pytest.mark.xfail(
    strict=False, reason="the train row of the checkpointed epoch is logged after last.ckpt"
)
LOG_CASES = [pytest.param(k, marks=LOG_GAP) if k == "after-checkpoint-write" else k for k in KILLS]
STOPS = {  # name -> (fault, exit code, status)
    "sigint": (f"train-step:{MID_EPOCH_STEP}:int", 130, "interrupted"),
    "sigterm": (f"train-step:{MID_EPOCH_STEP}:term", 143, "interrupted"),
    "exception": (f"train-step:{MID_EPOCH_STEP}:raise", 1, "failed"),
}


@dataclass
class Trial:
    root: Path
    first: Launch | None = None
    resume: Launch | None = None
    after_first: dict[str, Any] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.root / PROJECT / NAME

    @property
    def record(self) -> dict[str, Any]:
        return read_json(self.run_dir / "run.json")


def resume_args(run_dir: Path, *mods: str, rerun: str | None = None) -> list[str]:
    args = ["resume", str(run_dir)]
    for mod in mods:
        args += ["--mod", mod]
    if rerun:
        args += ["--rerun", rerun]
    return args


@pytest.fixture(scope="module")
def trials(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Trial]]:
    base = tmp_path_factory.mktemp("faults")
    logs = base / "logs"
    found: dict[str, Trial] = {}

    # wave 1: the reference run, the kills, the stops
    for label, at in [
        ("reference", None),
        *((k, kill.at) for k, kill in KILLS.items()),
        *((s, stop[0]) for s, stop in STOPS.items()),
    ]:
        root = base / label
        found[label] = Trial(root, first=Launch(label, run_args(root, NAME), logs, at=at))
    run_all([t.first for t in found.values() if t.first is not None])
    for trial in found.values():
        trial.after_first = {
            "record": trial.record,
            "temps": temp_leftovers(trial.root),
            "entries": _entries(trial.root),
            "checkpoints": _checkpoint_steps(trial.run_dir),
        }

    # wave 2: resumes; copies of the finished reference run, resumed with changes
    reference = found["reference"]
    assert reference.first is not None and reference.first.wait() == 0, str(reference.first)
    for label in (*KILLS, *STOPS):
        trial = found[label]
        trial.resume = Launch(f"{label}-resume", resume_args(trial.run_dir), logs)
    copies = {
        "extend": resume_args(Path(), f"Trainer.max_epochs={EPOCHS + 1}"),
        "wider": resume_args(Path(), "ResNet.width=64"),
        "truncated": resume_args(Path(), rerun="fit"),
    }
    for label, args in copies.items():
        trial = Trial(copy_root(reference.root, base / label))
        args[1] = str(trial.run_dir)
        trial.resume = Launch(label, args, logs)
        found[label] = trial
    last = found["truncated"].run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    for label in ("wider", "truncated"):
        found[label].after_first = {"files": snapshot(found[label].run_dir)}
    run_all([t.resume for t in found.values() if t.resume is not None])
    yield found


def _checkpoint_steps(run_dir: Path) -> dict[str, int]:
    """The global step of each checkpoint a reader would open."""
    return {name: checkpoint(path)["global_step"] for name, path in checkpoints(run_dir).items()}


def _entries(root: Path) -> list[str]:
    """Tasks of the cache entries a reader can see."""
    return sorted(entry.task for entry in ArtifactStore(root / ".cache").entries())


# -- comparisons -----------------------------------------------------------------------------


def checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def checkpoints(run_dir: Path) -> dict[str, Path]:
    folder = run_dir / "checkpoints"
    return {p.name: p for p in folder.glob("*.ckpt") if not p.name.startswith(".tmp-")}


def close(a: Any, b: Any) -> bool:
    if a in (None, "") or b in (None, ""):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=TOLERANCE)


def assert_rows_match(rows: list[dict[str, str]], expected: list[dict[str, str]]) -> None:
    assert [(r["epoch"], r["step"]) for r in rows] == [(r["epoch"], r["step"]) for r in expected]
    for row, want in zip(rows, expected, strict=True):
        for key in set(row) | set(want):
            assert close(row.get(key), want.get(key)), (key, row, want)


def assert_each_epoch_logged_once(rows: list[dict[str, str]], epochs: int) -> None:
    for column in ("val_loss", "train_loss"):
        logged = [int(r["epoch"]) for r in rows if r.get(column)]
        assert logged == list(range(epochs)), f"{column} rows by epoch: {logged}"


def assert_same_results(run_dir: Path, reference_dir: Path) -> None:
    """Metrics and every checkpoint's weights equal the uninterrupted run's."""
    metrics = read_json(run_dir / "metrics.json")
    expected = read_json(reference_dir / "metrics.json")
    assert expected and metrics.keys() == expected.keys()
    for key, value in expected.items():
        assert close(metrics[key], value), (key, metrics[key], value)
    found, wanted = checkpoints(run_dir), checkpoints(reference_dir)
    assert found.keys() == wanted.keys()
    for name, path in wanted.items():
        ours, theirs = checkpoint(found[name]), checkpoint(path)
        assert ours["global_step"] == theirs["global_step"], name
        assert ours["state_dict"].keys() == theirs["state_dict"].keys()
        for key, tensor in theirs["state_dict"].items():
            assert torch.equal(ours["state_dict"][key], tensor), (name, key)


def error_lines(launch: Launch) -> list[str]:
    return [line for line in launch.stderr.splitlines() if line.startswith("error:")]


# -- the reference run -----------------------------------------------------------------------


def test_reference_run_completes_and_refreshes_last_ckpt_every_epoch(trials) -> None:
    reference = trials["reference"]
    assert reference.record["status"] == "completed"
    assert (reference.run_dir / "metrics.json").is_file()
    assert reference.first is not None and reference.first.steps == list(range(EPOCHS * BATCHES))
    assert_each_epoch_logged_once(csv_rows(reference.run_dir / "logs" / "metrics.csv"), EPOCHS)
    # fit documents last.ckpt as written every epoch: a finished run's is the final state
    last = checkpoint(reference.run_dir / "checkpoints" / "last.ckpt")
    assert (last["epoch"], last["global_step"]) == (EPOCHS - 1, EPOCHS * BATCHES)


# -- SIGKILL at exact instants, then resume --------------------------------------------------


@pytest.mark.parametrize("label", list(KILLS))
def test_sigkill_leaves_nothing_half_written_visible(trials, label) -> None:
    trial, kill = trials[label], KILLS[label]
    assert trial.first is not None
    assert trial.first.code == -9, str(trial.first)
    assert trial.first.fired == [kill.at]
    assert trial.after_first["record"]["status"] == "running"  # it never said goodbye
    entries = trial.after_first["entries"]
    assert set(entries) == set(CACHED_TASKS) - set(kill.recomputed)
    temps = trial.after_first["temps"]
    if label == "cache-write":
        # the temp entry holds the encoded outputs but no manifest: an uncommitted entry
        (entry,) = [trial.root / t for t in temps if t.startswith(".cache/.tmp-")]
        assert any(entry.iterdir()) and not (entry / MANIFEST).exists()
    if kill.at.startswith("checkpoint-write:"):
        assert any(t.startswith(f"{PROJECT}/{NAME}/checkpoints/.tmp-") for t in temps)
    saved = trial.after_first["checkpoints"]
    if kill.first_resumed_step:
        assert saved.get("last.ckpt") == kill.first_resumed_step  # the last epoch end
    else:
        assert "last.ckpt" not in saved


@pytest.mark.parametrize("label", list(KILLS))
def test_resume_after_sigkill_matches_the_uninterrupted_run(trials, label) -> None:
    trial, kill = trials[label], KILLS[label]
    resume = trial.resume
    assert resume is not None
    assert resume.code == 0, str(resume)
    record = trial.record
    assert record["status"] == "completed" and record["exit_code"] == 0
    assert (trial.run_dir / "metrics.json").is_file()
    # the same directory, continued: one run, two attempts, the first one cut short
    assert sorted(p.name for p in (trial.root / PROJECT).iterdir()) == [NAME]
    assert record["attempts"] == 2
    history = record["history"]
    assert [h["attempt"] for h in history] == [1, 2], history
    assert history[0]["status"] not in ("completed", "failed", "interrupted"), history
    assert history[0].get("ended") is None, history
    assert history[1]["status"] == "completed"
    # where training picked up, and which tasks ran again
    assert resume.steps[:1] == [kill.first_resumed_step], resume.steps[:3]
    assert resume.steps[-1] == EPOCHS * BATCHES - 1
    statuses = {t["name"]: t["status"] for t in record["tasks"]}
    for task in CACHED_TASKS:
        assert statuses[task] == ("completed" if task in kill.recomputed else "cached"), statuses
    # nothing half-written was read, and the resume left no temp file of its own
    assert temp_leftovers(trial.root) <= trial.after_first["temps"]
    store = ArtifactStore(trial.root / ".cache")
    assert sorted(e.task for e in store.entries()) == sorted(CACHED_TASKS)
    assert all(store.verify(e.key) for e in store.entries())
    assert_same_results(trial.run_dir, trials["reference"].run_dir)


@pytest.mark.parametrize("label", LOG_CASES)
def test_resume_after_sigkill_continues_the_log(trials, label) -> None:
    """logs/metrics.csv has each epoch's rows once, equal to the uninterrupted run's."""
    trial, reference = trials[label], trials["reference"]
    assert trial.resume is not None and trial.resume.code == 0, str(trial.resume)
    rows = csv_rows(trial.run_dir / "logs" / "metrics.csv")
    assert_each_epoch_logged_once(rows, EPOCHS)
    assert_rows_match(rows, csv_rows(reference.run_dir / "logs" / "metrics.csv"))


# -- SIGINT, SIGTERM, an exception in training ------------------------------------------------


@pytest.mark.parametrize("label", list(STOPS))
def test_a_stopped_run_saves_a_checkpoint_and_says_how_it_ended(trials, label) -> None:
    at, code, status = STOPS[label]
    trial = trials[label]
    assert trial.first is not None and trial.first.code == code, str(trial.first)
    assert trial.first.fired == [at]
    record = trial.after_first["record"]
    assert record["status"] == status and record["exit_code"] == code
    assert trial.after_first["checkpoints"].get("on_exception.ckpt") == MID_EPOCH_STEP
    if label == "exception":
        assert record["error"]["task"] == "fit"
        assert "injected fault" in record["error"]["message"]
        assert "task 'fit' failed" in trial.first.stderr
    else:
        assert f"ginpipe resume {trial.run_dir}" in trial.first.stderr


@pytest.mark.parametrize("label", list(STOPS))
def test_resume_continues_a_stopped_run_from_its_checkpoint(trials, label) -> None:
    trial = trials[label]
    resume = trial.resume
    assert resume is not None and resume.code == 0, str(resume)
    record = trial.record
    assert record["status"] == "completed" and record["attempts"] == 2
    assert [h["status"] for h in record["history"]] == [STOPS[label][2], "completed"]
    assert (trial.run_dir / "metrics.json").is_file()
    # it continued from the step it was stopped at, not from an epoch boundary or step 0
    assert resume.steps[0] == MID_EPOCH_STEP
    assert resume.steps[-1] == EPOCHS * BATCHES - 1
    assert_each_epoch_logged_once(csv_rows(trial.run_dir / "logs" / "metrics.csv"), EPOCHS)
    last = checkpoint(trial.run_dir / "checkpoints" / "last.ckpt")
    assert last["global_step"] == EPOCHS * BATCHES
    # Lightning removes the exception checkpoint once a run ends normally (fit's docstring)
    assert not (trial.run_dir / "checkpoints" / "on_exception.ckpt").exists()


# -- resuming a finished run with changes ----------------------------------------------------


def test_resume_with_one_more_epoch_trains_exactly_one_epoch_in_the_same_dir(trials) -> None:
    trial, reference = trials["extend"], trials["reference"]
    resume = trial.resume
    assert resume is not None and resume.code == 0, str(resume)
    record = trial.record
    assert record["status"] == "completed" and record["attempts"] == 2
    statuses = {t["name"]: t["status"] for t in record["tasks"]}
    assert statuses["fit"] == "completed", statuses  # Trainer.max_epochs changed: not reused
    assert resume.steps == list(range(EPOCHS * BATCHES, (EPOCHS + 1) * BATCHES))
    last = checkpoint(trial.run_dir / "checkpoints" / "last.ckpt")
    assert last["global_step"] == (EPOCHS + 1) * BATCHES
    rows = csv_rows(trial.run_dir / "logs" / "metrics.csv")
    expected = csv_rows(reference.run_dir / "logs" / "metrics.csv")
    assert_rows_match(rows[: len(expected)], expected)
    assert_each_epoch_logged_once(rows, EPOCHS + 1)
    assert sorted(p.name for p in (trial.root / PROJECT).iterdir()) == [NAME]


def test_resume_with_another_model_shape_is_refused_and_damages_nothing(trials) -> None:
    trial = trials["wider"]
    resume = trial.resume
    assert resume is not None and resume.code == 2, str(resume)
    (line,) = error_lines(resume)
    assert str(trial.run_dir / "checkpoints" / "last.ckpt") in line
    assert "does not fit the configured model" in line
    assert "Traceback" not in resume.stderr
    assert resume.steps == []
    before, after = trial.after_first["files"], snapshot(trial.run_dir)
    for name, data in before.items():
        if name.startswith(("checkpoints/", "logs/")) or name in ("metrics.json",):
            assert after.get(name) == data, f"{name} changed"


def test_a_refused_resume_leaves_the_saved_config_as_it_was(trials) -> None:
    """The run's config still describes its checkpoints, so a plain resume still works."""
    trial = trials["wider"]
    before, after = trial.after_first["files"], snapshot(trial.run_dir)
    for name in ("config.gin", "resolved.gin", "overrides.txt"):
        assert after[name] == before[name], f"{name} now holds the refused --mod"


def test_a_truncated_last_ckpt_is_a_clear_error_and_is_left_alone(trials) -> None:
    trial = trials["truncated"]
    resume = trial.resume
    assert resume is not None and resume.code == 2, str(resume)
    (line,) = error_lines(resume)
    assert str(trial.run_dir / "checkpoints" / "last.ckpt") in line
    assert "truncated or corrupt" in line
    assert "Traceback" not in resume.stderr
    assert resume.steps == []
    before, after = trial.after_first["files"], snapshot(trial.run_dir)
    for name, data in before.items():
        if name.startswith("checkpoints/"):
            assert after.get(name) == data, f"{name} changed"
