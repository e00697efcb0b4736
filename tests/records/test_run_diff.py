"""``ginpipe diff`` prints only what changed, with macros resolved to values."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def macro_runs(toy_project, cli):
    toy_project.write(
        "macro.gin",
        "import toytasks\nN = 4\nSCALE = 1.0\nmake_numbers.n = %N\nadd_up.scale = %SCALE\n"
        "run.tasks = [@make_numbers, @add_up, @report]\n",
    )
    assert cli("run", "base.gin", "--name", "plain").exit_code == 0
    assert cli("run", "macro.gin", "--name", "m", "--mod", "SCALE=2.0").exit_code == 0
    return toy_project


def test_diff_resolves_macros_and_hides_what_did_not_change(macro_runs, cli) -> None:
    out = cli("diff", macro_runs.run_dir("plain"), macro_runs.run_dir("m")).output
    config = out.split("config:\n")[1].split("metrics:")[0]
    # make_numbers.n = 4 and = %N (N = 4) are the same value: not a change.
    assert config.splitlines() == [
        "  N: (unset) -> 4",
        "  SCALE: (unset) -> 2.0",
        "  add_up.scale: 1.0 -> 2.0",
    ]
    assert "%" not in out
    metrics = out.split("metrics:\n")[1].splitlines()
    assert metrics == [
        "  accuracy: 0.1000 -> 0.2000  (+0.1000)",
        "  total: 10.0000 -> 20.0000  (+10.0000)",
    ]


def test_unchanged_metrics_are_not_listed_and_tiny_changes_are(toy_project, cli) -> None:
    assert cli("run", "base.gin", "--name", "a").exit_code == 0
    assert cli("run", "base.gin", "--name", "b", "--mod", "report.bonus=0.00001").exit_code == 0
    a, b = toy_project.run_dir("a"), toy_project.run_dir("b")
    path = a / "run.json"
    record = json.loads(path.read_text())
    record["metrics"]["recall/cat"] = 0.5
    path.write_text(json.dumps(record))
    record = json.loads((b / "run.json").read_text())
    record["metrics"]["recall/cat"] = 0.5
    (b / "run.json").write_text(json.dumps(record))
    out = cli("diff", a, b).output
    assert "recall/cat" not in out and "+0.0000" not in out
    # a change below the shown precision is shown in full, never as +0.0000
    assert "  accuracy: 0.1 -> 0.1000001  (+1e-07)" in out
    assert "  report.bonus: (unset) -> 1e-05" in out


def test_diff_shows_changed_tags_and_note(toy_project, cli) -> None:
    assert cli("run", "base.gin", "--name", "a").exit_code == 0
    assert cli("run", "base.gin", "--name", "b").exit_code == 0
    assert cli("tag", toy_project.run_dir("b"), "best").exit_code == 0
    assert cli("note", toy_project.run_dir("b"), "the same, tagged").exit_code == 0
    out = cli("diff", toy_project.run_dir("a"), toy_project.run_dir("b")).output
    assert "config:\n  (identical)" in out and "metrics:\n  (identical)" in out
    assert "  tags: (none) -> best" in out
    assert "  note: '(none)' -> 'the same, tagged'" in out
