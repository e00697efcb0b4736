"""``ginpipe runs``: the config values that differ as columns, --columns, --sort, the three
formats, and --where on tags and notes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from ginpipe.base.errors import ConfigError
from ginpipe.records.history import RunInfo, resolve_macros
from ginpipe.records.labels import Labels
from ginpipe.records.table import choose_columns, differing_keys, format_runs, sort_runs


def info(name: str, bindings: dict[str, str], metrics: dict[str, float], **record) -> RunInfo:
    record = {"status": "completed", "main_metric": "accuracy", "metrics": metrics, **record}
    return RunInfo(Path("experiments/proj") / name, record, bindings)


A = info(
    "a",
    {"LR": "0.01", "AdamW.lr": "%LR", "EPOCHS": "20", "Trainer.max_epochs": "2"},
    {"accuracy": 0.5},
    duration_s=7.25,
)
B = info(
    "b",
    {"LR": "0.003", "AdamW.lr": "%LR", "EPOCHS": "5", "Trainer.max_epochs": "%EPOCHS"},
    {"accuracy": 0.75},
    duration_s=65.0,
)
C = info(
    "c",
    {"LR": "1e-2", "AdamW.lr": "%LR", "EPOCHS": "20", "Trainer.max_epochs": "2", "C.x": "1"},
    {"accuracy": 0.6, "f1_macro": 0.5},
)


def test_macros_resolve_to_values_inside_lists_but_not_inside_strings() -> None:
    values = resolve_macros({"A": "3", "B": "%A", "L": "[%B, '%A', 2]", "M": "%NOPE"})
    assert values == {"A": "3", "B": "3", "L": "[3, '%A', 2]", "M": "%NOPE"}
    assert resolve_macros({"X": "%Y", "Y": "%X"}) == {"X": "%X", "Y": "%Y"}  # a cycle stays


def test_differing_keys_are_values_not_texts() -> None:
    # LR 0.01 and 1e-2 are the same value; AdamW.lr differs only through %LR (its own
    # column); C.x is set by one run only.
    assert differing_keys([A, C]) == []
    assert differing_keys([A, B, C]) == ["EPOCHS", "LR", "Trainer.max_epochs"]
    assert differing_keys([A]) == []


def test_default_columns_and_tags_only_when_a_run_has_some() -> None:
    names = [c.name for c in choose_columns([A, B], None)]
    assert names == [
        "run", "status", "started", "duration", "EPOCHS", "LR", "Trainer.max_epochs", "metric",
    ]  # fmt: skip
    tagged = info("t", A.bindings, {}, duration_s=1.0)
    tagged.labels = Labels(["best"], "")
    assert "tags" in [c.name for c in choose_columns([A, tagged], None)]
    assert "note" not in [c.name for c in choose_columns([A, tagged], None)]


def test_table_shows_resolved_values_and_readable_durations() -> None:
    out = format_runs([A, B]).splitlines()
    assert out[0].split() == [
        "RUN", "STATUS", "STARTED", "DURATION", "EPOCHS", "LR", "Trainer.max_epochs", "METRIC",
    ]  # fmt: skip
    assert out[1].split()[1:] == ["completed", "-", "7.2s", "20", "0.01", "2", "accuracy=0.5000"]
    assert out[2].split()[1:] == ["completed", "-", "1m05s", "5", "0.003", "5", "accuracy=0.7500"]


def test_named_columns_metrics_and_a_typo() -> None:
    out = format_runs([A, C], columns=["run,LR", "f1_macro"]).splitlines()
    assert out[0].split() == ["RUN", "LR", "f1_macro"]
    assert out[1].split() == ["proj/a", "0.01", "-"]
    assert out[2].split() == ["proj/c", "0.01", "0.5000"]
    with pytest.raises(ConfigError, match="did you mean 'f1_macro'"):
        format_runs([A, C], columns=["f1_marco"])


def test_sort_by_metric_both_ways_with_missing_values_last() -> None:
    def names(runs: list[RunInfo]) -> list[str]:
        return [r.path.name for r in runs]

    assert names(sort_runs([B, C, A], "accuracy")) == ["a", "c", "b"]
    assert names(sort_runs([B, C, A], "accuracy", descending=True)) == ["b", "c", "a"]
    assert names(sort_runs([A, B, C], "f1_macro", descending=True)) == ["c", "a", "b"]
    assert names(sort_runs([A, B, C], "LR")) == ["b", "a", "c"]  # by value: 0.003 < 0.01
    assert names(sort_runs([C, B, A], "duration")) == ["a", "b", "c"]
    lines = format_runs([A, B, C], sort="accuracy", descending=True).splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["proj/b", "proj/c", "proj/a"]


def test_json_and_csv_carry_whole_values() -> None:
    rows = json.loads(format_runs([A, B], fmt="json"))
    assert [r["run"] for r in rows] == ["proj/a", "proj/b"]
    assert rows[1]["config"] == {"EPOCHS": 5, "LR": 0.003, "Trainer.max_epochs": 5}
    assert rows[1]["metrics"] == {"accuracy": 0.75} and rows[1]["duration_s"] == 65.0
    table = list(csv.DictReader(io.StringIO(format_runs([A, B], fmt="csv"))))
    assert table[0]["run"] == "proj/a" and table[0]["duration_s"] == "7.25"
    assert table[1]["main_metric"] == "accuracy" and table[1]["metric"] == "0.75"
    assert table[1]["Trainer.max_epochs"] == "5"
    with pytest.raises(ConfigError, match="unknown --format 'yaml'"):
        format_runs([A], fmt="yaml")


def test_a_long_value_keeps_what_differs() -> None:
    tasks = "[@seed_everything, @load_sklearn, @split_dataset, @make_features, {}]"
    x = info("x", {"run.tasks": tasks.format("@fit, @evaluate")}, {})
    y = info("y", {"run.tasks": tasks.format("@fit_sklearn, @evaluate_sklearn")}, {})
    lines = format_runs([x, y]).splitlines()
    assert "…@fit, @evaluate]" in lines[1]
    assert "…@fit_sklearn, @evaluate_sklearn]" in lines[2]
    # the whole value in JSON
    assert json.loads(format_runs([x, y], fmt="json"))[0]["config"]["run.tasks"].startswith("[@")


# -- through the command line ----------------------------------------------------------------


@pytest.fixture
def three_runs(toy_project, cli):
    for name, scale in (("a", "1.0"), ("b", "2.0"), ("c", "3.0")):
        result = cli("run", "base.gin", "--name", name, "--mod", f"add_up.scale={scale}")
        assert result.exit_code == 0, result.output
    return toy_project


def test_runs_command_sorts_and_formats(three_runs, cli) -> None:
    out = cli("runs", "--sort", "accuracy", "--desc").output.splitlines()
    assert [line.split()[0] for line in out[1:]] == ["proj/c", "proj/b", "proj/a"]
    rows = json.loads(cli("runs", "-f", "json", "--columns", "run,add_up.scale").output)
    assert [(r["run"], r["config"]) for r in rows] == [
        ("proj/a", {"add_up.scale": 1.0}),
        ("proj/b", {"add_up.scale": 2.0}),
        ("proj/c", {"add_up.scale": 3.0}),
    ]
    bad = cli("runs", "--format", "yaml")
    assert bad.exit_code == 2 and "unknown --format" in bad.output


def test_where_selects_by_tag_and_note(three_runs, cli) -> None:
    assert cli("tag", three_runs.run_dir("a"), "best", "baseline").exit_code == 0
    assert cli("tag", three_runs.run_dir("b"), "baseline").exit_code == 0
    assert cli("note", three_runs.run_dir("c"), "Doubled the   scale").exit_code == 0
    table = cli("runs").output.splitlines()
    assert table[0].split()[-2:] == ["TAGS", "NOTE"]
    assert "best,baseline" in table[1] and table[3].endswith("Doubled the scale")

    def rows(*where: str) -> list[str]:
        return [line.split()[0] for line in cli("runs", *where).output.splitlines()[1:]]

    assert rows("--where", "tag=baseline") == ["proj/a", "proj/b"]
    assert rows("--where", "tag=baseline", "--where", "add_up.scale=2.0") == ["proj/b"]
    assert rows("--where", "note=doubled") == ["proj/c"]
    assert "no runs found" in cli("runs", "--where", "tag=nothing").output
