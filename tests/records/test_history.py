"""Looking back at runs: the ``runs`` table and ``--where``, ``diff``, and the cache
commands ``cache ls`` / ``cache prune``, all from the files runs leave behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ginpipe.base.errors import ConfigError
from ginpipe.core.store import ArtifactStore
from ginpipe.records import history


@pytest.fixture
def two_runs(toy_project, cli):
    """Runs ``a`` (scale 1.0) and ``b`` (scale 2.0) of the toy pipeline."""
    assert cli("run", "base.gin", "--name", "a").exit_code == 0
    assert cli("run", "base.gin", "--name", "b", "--mod", "add_up.scale=2.0").exit_code == 0
    return toy_project


def table_rows(output: str) -> dict[str, str]:
    rows = {}
    for line in output.splitlines()[1:]:
        run, _, rest = line.partition(" ")
        rows[run] = rest
    return rows


def test_runs_lists_status_and_main_metric(two_runs, cli) -> None:
    result = cli("runs")
    assert result.exit_code == 0
    # the config value the two runs differ in is a column of its own
    assert result.output.splitlines()[0].split() == [
        "RUN",
        "STATUS",
        "STARTED",
        "DURATION",
        "add_up.scale",
        "METRIC",
    ]
    rows = table_rows(result.output)
    assert set(rows) == {"proj/a", "proj/b"}
    assert "completed" in rows["proj/a"] and "accuracy=0.1000" in rows["proj/a"]
    assert "completed" in rows["proj/b"] and "accuracy=0.2000" in rows["proj/b"]


def test_runs_shows_failed_runs(toy_project, cli) -> None:
    toy_project.write("f.gin", "import toytasks\nrun.tasks = [@make_numbers, @explode]\n")
    assert cli("run", "f.gin", "--name", "bad").exit_code == 1
    rows = table_rows(cli("runs").output)
    assert "failed" in rows["proj/bad"]


def test_where_filters_by_config_value(two_runs, cli) -> None:
    rows = table_rows(cli("runs", "--where", "add_up.scale=2.0").output)
    assert set(rows) == {"proj/b"}
    rows = table_rows(cli("runs", "--where", "add_up.scale=1.0").output)
    assert set(rows) == {"proj/a"}
    # Values compare as values, and a short key matches the qualified binding.
    assert set(table_rows(cli("runs", "--where", "add_up.scale=2").output)) == {"proj/b"}
    assert set(table_rows(cli("runs", "--where", "make_numbers.n=4").output)) == {
        "proj/a",
        "proj/b",
    }
    none = cli("runs", "--where", "add_up.scale=5.0")
    assert none.exit_code == 0 and "no runs found" in none.output


def test_where_with_a_typo_suggests_the_key(two_runs, cli) -> None:
    result = cli("runs", "--where", "add_up.scael=2.0")
    assert result.exit_code == 2
    assert "did you mean 'add_up.scale'" in result.output


def test_malformed_where(two_runs, cli) -> None:
    result = cli("runs", "--where", "add_up.scale")
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.output


def test_project_filter_and_empty_root(two_runs, cli, tmp_path: Path) -> None:
    assert cli("runs", "--project", "proj").output.count("proj/") == 2
    assert "no runs found" in cli("runs", "--root", tmp_path / "none").output


def test_a_running_run_whose_process_died_shows_as_stopped(two_runs, cli) -> None:
    path = two_runs.run_dir("a") / "run.json"
    record = json.loads(path.read_text())
    record["status"] = "running"
    path.write_text(json.dumps(record))
    assert "stopped" in table_rows(cli("runs").output)["proj/a"]


def test_diff_shows_changed_bindings_and_metric_deltas(two_runs, cli) -> None:
    result = cli("diff", two_runs.run_dir("a"), two_runs.run_dir("b"))
    assert result.exit_code == 0
    out = result.output
    assert "add_up.scale: 1.0 -> 2.0" in out
    assert "accuracy: 0.1000 -> 0.2000  (+0.1000)" in out
    assert "total: 10.0000 -> 20.0000  (+10.0000)" in out
    assert "make_numbers.n" not in out


def test_diff_of_identical_configs(two_runs, cli) -> None:
    out = cli("diff", two_runs.run_dir("a"), two_runs.run_dir("a")).output
    assert "(identical)" in out


def test_diff_needs_run_directories(two_runs, cli) -> None:
    result = cli("diff", two_runs.run_dir("a"), two_runs.path)
    assert result.exit_code == 2
    assert "not a run directory" in result.output


def test_read_bindings_of_a_saved_config(two_runs) -> None:
    bindings = history.read_bindings(two_runs.run_dir("b"))
    assert bindings["add_up.scale"] == "2.0"
    assert bindings["run.tasks"] == "[@make_numbers, @add_up, @report]"


# -- cache -----------------------------------------------------------------------------------


def test_cache_ls_lists_entries(two_runs, cli) -> None:
    result = cli("cache", "ls")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:2] == ["KEY", "TASK"]
    tasks = sorted(line.split()[1] for line in lines[1:-1])
    # make_numbers once (shared), add_up twice (two scales); report is not cached.
    assert tasks == ["add_up", "add_up", "make_numbers"]
    assert lines[-1].startswith("3 entries")


def test_cache_ls_when_empty(toy_project, cli) -> None:
    assert "cache is empty" in cli("cache", "ls").output


def test_cache_prune_dry_run_then_for_real(two_runs, cli) -> None:
    store = ArtifactStore(two_runs.root / ".cache")
    assert len(store.entries()) == 3
    dry = cli("cache", "prune", "--max-size", "0", "--dry-run")
    assert dry.exit_code == 0
    assert "would remove 3 entries" in dry.output
    assert len(store.entries()) == 3
    real = cli("cache", "prune", "--max-size", "0")
    assert real.exit_code == 0 and "removed 3 entries" in real.output
    assert store.entries() == []
    # The next run recomputes what was pruned.
    calls = two_runs.calls("make_numbers")
    assert cli("run", "base.gin", "--name", "c").exit_code == 0
    assert two_runs.calls("make_numbers") == calls + 1


def test_cache_prune_by_age_keeps_fresh_entries(two_runs, cli) -> None:
    result = cli("cache", "prune", "--older-than", "1d")
    assert result.exit_code == 0 and "removed 0 entries" in result.output


def test_cache_prune_needs_a_criterion(two_runs, cli) -> None:
    result = cli("cache", "prune")
    assert result.exit_code == 2
    assert "--older-than" in result.output


@pytest.mark.parametrize(
    ("text", "seconds"), [("30", 30), ("30s", 30), ("5m", 300), ("12h", 43200), ("7d", 604800)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert history.parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "size"), [("0", 0), ("500", 500), ("2K", 2048), ("1.5M", 1572864), ("10G", 10 << 30)]
)
def test_parse_size(text: str, size: int) -> None:
    assert history.parse_size(text) == size


@pytest.mark.parametrize("text", ["soon", "7 days", "-1d"])
def test_malformed_duration(text: str) -> None:
    with pytest.raises(ConfigError):
        history.parse_duration(text)


def test_malformed_size() -> None:
    with pytest.raises(ConfigError):
        history.parse_size("big")


def test_tables_are_plain_text_columns_never_cut() -> None:
    """Off a terminal: no colour codes, no borders, no trailing spaces; a long value or one
    that looks like rich markup is printed as it is."""
    from ginpipe.base.tables import render_table

    long = "x" * 500
    text = render_table([("[bold]a[/bold]", long), ("b", "-")], ("NAME", "VALUE"))
    assert text.splitlines() == [
        "NAME            VALUE",
        f"[bold]a[/bold]  {long}",
        "b               -",
    ]
    assert render_table([("base", "the default"), ("models/resnet", "")]).splitlines() == [
        "base           the default",
        "models/resnet",
    ]
