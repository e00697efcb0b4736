"""Partial runs: --from, --until, --only; inputs from the cache or --inputs-from RUN."""

from __future__ import annotations

import json

CHAIN = """\
import toytasks
make_numbers.n = 4
run.tasks = [@make_numbers, @add_up, @shift, @report]
"""


def graph_status(project, name: str) -> dict[str, str]:
    record = json.loads((project.run_dir(name) / "pipeline.json").read_text())
    return {t["label"]: t["status"] for t in record["tasks"]}


def test_until_runs_a_task_and_what_it_needs_only(toy_project, cli) -> None:
    toy_project.write("c.gin", CHAIN)
    result = cli("run", "c.gin", "--name", "head", "--until", "add_up")
    assert result.exit_code == 0, result.output
    assert toy_project.calls() == ["make_numbers", "add_up"]
    assert graph_status(toy_project, "head") == {
        "make_numbers": "ran",
        "add_up": "ran",
        "shift": "skipped",
        "report": "skipped",
    }
    record = toy_project.run_json("head")
    assert record["status"] == "completed" and record["partial"]["until"] == ["add_up"]
    # Resuming a partial run runs the rest, reusing what it computed.
    assert cli("resume", str(toy_project.run_dir("head"))).exit_code == 0
    assert toy_project.calls() == ["make_numbers", "add_up", "shift", "report"]
    assert "partial" not in toy_project.run_json("head")


def test_only_reads_its_inputs_from_the_cache(toy_project, cli) -> None:
    toy_project.write("c.gin", CHAIN)
    assert cli("run", "c.gin", "--name", "full").exit_code == 0
    before = toy_project.calls()
    result = cli("run", "c.gin", "--name", "again", "--only", "report", "-m", "report.bonus=1.0")
    assert result.exit_code == 0, result.output
    assert toy_project.calls()[len(before) :] == ["report"]
    assert toy_project.task_status("again") == {"add_up": "cached", "report": "completed"}
    assert toy_project.run_json("again")["metrics"]["total"] == 11.0


def test_from_recomputes_a_task_and_everything_after_it(toy_project, cli) -> None:
    toy_project.write("c.gin", CHAIN)
    assert cli("run", "c.gin", "--name", "full").exit_code == 0
    before = len(toy_project.calls())
    result = cli("run", "c.gin", "--name", "more", "--from", "add_up", "-m", "add_up.scale=2.0")
    assert result.exit_code == 0, result.output
    assert toy_project.calls()[before:] == ["add_up", "shift", "report"]
    assert toy_project.run_json("more")["metrics"]["total"] == 20.0


def test_a_missing_input_is_one_line_before_any_work(toy_project, cli) -> None:
    toy_project.write("c.gin", CHAIN)
    result = cli("run", "c.gin", "--only", "add_up")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: --only add_up needs 'numbers' from 'make_numbers', which is not in the cache: "
        "run up to it first (--until make_numbers), or name a run that has it with "
        "--inputs-from RUN"
    )
    assert toy_project.calls() == [] and not toy_project.runs.exists()


def test_an_input_that_was_never_stored_is_computed_again(toy_project, cli) -> None:
    toy_project.write("t.gin", "import toytasks\nrun.tasks = [@make_thing, @use_thing]\n")
    assert cli("run", "t.gin", "--name", "full").exit_code == 0
    result = cli("run", "t.gin", "--name", "only", "--only", "use_thing", "-m", "use_thing.plus=1")
    assert result.exit_code == 0, result.output
    assert toy_project.calls() == ["make_thing", "use_thing", "make_thing", "use_thing"]


def test_inputs_from_an_earlier_run_whatever_the_config_says_now(toy_project, cli) -> None:
    toy_project.write("c.gin", CHAIN)
    assert cli("run", "c.gin", "--name", "four").exit_code == 0
    four = str(toy_project.run_dir("four"))
    changed = ("-m", "make_numbers.n=9", "--from", "add_up")
    refused = cli("run", "c.gin", *changed)
    assert refused.exit_code == 2 and "'numbers' from 'make_numbers'" in refused.output
    result = cli("run", "c.gin", "--name", "reused", *changed, "--inputs-from", four)
    assert result.exit_code == 0, result.output
    # 1 + 2 + 3 + 4 from the earlier run, not 1 .. 9 from the changed config.
    assert toy_project.run_json("reused")["metrics"]["total"] == 10.0
    assert toy_project.run_json("reused")["partial"]["inputs_from"] == four


def test_selection_mistakes_are_one_line(toy_project, cli) -> None:
    toy_project.write("c.gin", CHAIN)
    result = cli("run", "c.gin", "--only", "ad_up")
    assert result.exit_code == 2
    assert "--only ad_up: no such task (did you mean 'add_up'?)" in result.output
    result = cli("run", "c.gin", "--from", "report", "--until", "add_up")
    assert result.exit_code == 2 and "selects no task" in result.output
    result = cli("run", "c.gin", "--inputs-from", ".")
    assert (
        result.exit_code == 2 and "--inputs-from needs --from, --until or --only" in result.output
    )
    assert toy_project.calls() == []
