"""Damaged state never takes down a whole command: a run whose own files are unreadable is
listed as damaged (the rest as usual) and refused by ``diff``/``resume`` in one line; a
cache entry that cannot be loaded for any reason is a miss and is replaced; a garbage
``logs/metrics.csv`` is named and set aside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harden_helpers import assert_one_line_error

from ginpipe.core.store import ArtifactStore

DAMAGE = {
    "run.json-list": ("run.json", b'["list"]\n'),
    "run.json-null": ("run.json", b"null\n"),
    "run.json-garbage": ("run.json", b"{not json"),
    "resolved.gin-binary": ("resolved.gin", bytes(range(128, 256)) * 3),
    "config.gin-binary": ("config.gin", b"\xff\xfe\x00binary\x9a"),
}


@pytest.fixture
def runs(toy_project, cli):
    for name in ("good", "bad"):
        assert cli("run", "base.gin", "--name", name).exit_code == 0
    return toy_project


def damage(run_dir: Path, case: str) -> None:
    name, data = DAMAGE[case]
    (run_dir / name).write_bytes(data)


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_runs_lists_a_damaged_run_as_damaged_and_the_rest(runs, cli, case: str) -> None:
    damage(runs.run_dir("bad"), case)
    result = cli("runs")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert "completed" in rows["proj/good"]
    if case != "config.gin-binary":  # runs never reads config.gin
        assert "damaged" in rows["proj/bad"]
        assert f"damaged: experiments/proj/bad/{DAMAGE[case][0]}" in result.output


@pytest.mark.parametrize("case", sorted(k for k in DAMAGE if k != "config.gin-binary"))
def test_diff_of_a_damaged_run_is_one_line(runs, cli, case: str) -> None:
    damage(runs.run_dir("bad"), case)
    result = cli("diff", runs.run_dir("good"), runs.run_dir("bad"))
    assert result.exit_code == 2
    assert_one_line_error(result.output, "damaged", DAMAGE[case][0])


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_resume_of_a_damaged_run_is_one_line_and_changes_nothing(runs, cli, case: str) -> None:
    run_dir = runs.run_dir("bad")
    damage(run_dir, case)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    result = cli("resume", run_dir)
    assert result.exit_code == 2
    assert_one_line_error(result.output, "damaged", DAMAGE[case][0])
    after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert after == before


def poison_entry(project, task: str) -> str:
    """Replace ``task``'s entry by a valid one that records pickle, which it does not allow."""
    import toytasks

    store = ArtifactStore(project.root / ".cache")
    entry = next(e for e in store.entries() if e.task == task)
    store.delete(entry.key)
    store.save(entry.key, {"total": toytasks.Opaque(1)}, task=task, pickle_ok=("total",))
    return entry.key


@pytest.mark.parametrize("no_cache", [False, True])
def test_an_entry_that_cannot_be_loaded_is_a_miss_and_is_replaced(
    toy_project, cli, no_cache: bool
) -> None:
    assert cli("run", "base.gin", "--name", "a").exit_code == 0
    key = poison_entry(toy_project, "add_up")
    extra = ["--no-cache"] if no_cache else []
    result = cli("run", "base.gin", "--name", "b", *extra)
    assert result.exit_code == 0, result.output
    assert toy_project.run_json("b")["metrics"]["total"] == 10.0
    assert ArtifactStore(toy_project.root / ".cache").load(key, "total") == 10.0
    result = cli("run", "base.gin", "--name", "c")  # and from now on a plain hit
    assert result.exit_code == 0 and toy_project.task_status("c")["add_up"] == "cached"


def test_garbage_metrics_csv_is_named_and_set_aside(tmp_path: Path, capfd) -> None:
    from loguru import logger

    from ginpipe.tasks.lightning.csv_logger import ContinuingCSVLogger

    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / "metrics.csv").write_bytes(b"epoch,step,train_loss\nabc,xyz,\x01\n")
    messages: list[str] = []
    sink = logger.add(messages.append, level="WARNING", format="{message}")
    try:
        writer = ContinuingCSVLogger(log_dir).experiment
        writer.forget_rows_from(3)
    finally:
        logger.remove(sink)
    assert writer.rows == []
    assert (log_dir / "metrics.damaged.csv").read_bytes().startswith(b"epoch,step")
    assert len(messages) == 1 and str(log_dir / "metrics.csv") in messages[0]
    writer.log_metrics({"train_loss": 0.5}, step=0)
    writer.save()
    assert json.dumps(writer.rows)  # a fresh, valid log
    assert (log_dir / "metrics.csv").read_text().splitlines()[0] == "step,train_loss"
