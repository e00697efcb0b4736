"""``ginpipe tag`` and ``ginpipe note``: kept in RUN/labels.json, never in run.json; the
commands that only read write nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ginpipe.records.labels import LABELS


@pytest.fixture
def one_run(toy_project, cli):
    assert cli("run", "base.gin", "--name", "a").exit_code == 0
    return toy_project


def test_tags_are_added_once_and_removed(one_run, cli) -> None:
    run = one_run.run_dir("a")
    assert cli("tag", run, "best", "v1", "best").output.strip().endswith("tags best, v1")
    assert json.loads((run / LABELS).read_text()) == {"tags": ["best", "v1"], "note": ""}
    assert cli("tag", run, "-r", "best").output.strip().endswith("tags v1")
    missing = cli("tag", run, "-r", "best")
    assert missing.exit_code == 2 and "has no tag 'best' (its tags: v1)" in missing.output
    bad = cli("tag", run, "two words")
    assert bad.exit_code == 2 and "bad tag 'two words'" in bad.output
    assert "labels" not in one_run.run_json("a")


def test_note_is_set_shown_and_cleared(one_run, cli) -> None:
    run = one_run.run_dir("a")
    assert cli("note", run, "first try").exit_code == 0
    assert cli("note", run).output.strip() == "first try"
    assert "note cleared" in cli("note", run, "").output
    assert "has no note" in cli("note", run).output


def test_labels_of_something_that_is_not_a_run(one_run, cli) -> None:
    result = cli("tag", one_run.runs, "x")
    assert result.exit_code == 2 and "not a run directory" in result.output


def test_a_damaged_labels_file_marks_the_run_damaged_in_the_listing(one_run, cli) -> None:
    (one_run.run_dir("a") / LABELS).write_text("{not json")
    out = cli("runs").output
    assert "damaged" in out and "labels.json is damaged" in out


def snapshot(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*")} | {
        str(p): p.stat().st_mtime_ns for p in [root, *root.rglob("*")] if p.is_dir()
    }


def test_read_only_commands_write_nothing(one_run, cli) -> None:
    assert cli("run", "base.gin", "--name", "b", "--mod", "add_up.scale=2.0").exit_code == 0
    assert cli("tag", one_run.run_dir("a"), "best").exit_code == 0
    before = snapshot(one_run.root)
    a, b = one_run.run_dir("a"), one_run.run_dir("b")
    for args in (
        ["runs"],
        ["runs", "--where", "tag=best", "-f", "json"],
        ["runs", "-f", "csv", "--sort", "accuracy"],
        ["diff", a, b],
        ["note", a],
        ["cache", "ls"],
        ["rm", "--dry-run", "--cache", a],
    ):
        assert cli(*args).exit_code == 0, args
    assert snapshot(one_run.root) == before
    assert sorted(os.listdir(one_run.path)) == ["base.gin", "calls.log", "experiments"]
