"""Nested pipelines: a task list under a name, its keys in a namespace, its bindings scoped,
its files in a folder of the run; renamed keys and pattern reads checked before work."""

from __future__ import annotations

import json

import graphtasks  # noqa: F401  (registers the tasks the configs name)
import pytest
from graphhelpers import plan_of

from ginpipe.base.errors import ConfigError, WiringError

TWO = """\
import toytasks
make_numbers.n = 4
run.tasks = [@make_numbers, @a/pipeline(), @b/pipeline()]
a/pipeline.tasks = [@add_up, @report]
b/pipeline.tasks = [@add_up, @report]
b/add_up.scale = 2.0
"""


def test_keys_live_under_the_namespace_and_shared_inputs_come_from_outside() -> None:
    steps = plan_of(TWO)
    assert [(s.name, s.reads, s.writes) for s in steps] == [
        ("make_numbers", (), ("numbers",)),
        ("a/add_up", ("numbers",), ("a/total",)),
        ("a/report", ("a/total",), ("a/metrics",)),
        ("b/add_up", ("numbers",), ("b/total",)),
        ("b/report", ("b/total",), ("b/metrics",)),
    ]
    keys = {s.name: s.key for s in steps}
    assert keys["a/add_up"] != keys["b/add_up"]  # b's scoped binding is part of b's key only
    assert (
        keys["a/add_up"] == {s.name: s.key for s in plan_of(TWO.replace("2.0", "3.0"))}["a/add_up"]
    )


def test_each_branch_runs_with_its_bindings_and_its_own_folder(toy_project, cli) -> None:
    toy_project.write("n.gin", TWO)
    result = cli("run", "n.gin", "--name", "two")
    assert result.exit_code == 0, result.output
    run = toy_project.run_dir("two")
    assert json.loads((run / "a" / "metrics.json").read_text())["total"] == 10.0
    assert json.loads((run / "b" / "metrics.json").read_text())["total"] == 20.0
    assert not (run / "metrics.json").exists()
    assert list(toy_project.task_status("two")) == [
        "make_numbers",
        "a/add_up",
        "a/report",
        "b/add_up",
        "b/report",
    ]
    assert "[3/5] a/report: done in" in result.output
    drawn = (run / "pipeline.mmd").read_text().splitlines()
    at = drawn.index('    subgraph ns_a["a"]')
    assert drawn[at + 1].startswith('        t1["a/add_up<br/>ran ') and drawn[at + 3] == "    end"
    # Only what a binding changes runs again; --only names a branch's task by its path.
    toy_project.write("m.gin", TWO.replace("b/add_up.scale = 2.0", "b/add_up.scale = 5.0"))
    before = len(toy_project.calls())
    assert cli("run", "m.gin", "--name", "five").exit_code == 0
    assert toy_project.calls()[before:] == ["report", "add_up", "report"]
    before = len(toy_project.calls())
    assert cli("run", "m.gin", "--name", "only", "--only", "b/report").exit_code == 0
    assert toy_project.calls()[before:] == ["report"]


def test_outputs_renamed_from_the_config() -> None:
    steps = plan_of(TWO + "b/pipeline.keys = {'metrics': 'metrics'}\n")
    assert steps[-1].writes == ("metrics",)
    with pytest.raises(WiringError) as info:
        plan_of(TWO + "b/pipeline.keys = {'totl': 'sum'}\n")
    assert str(info.value) == (
        "b/pipeline.keys renames 'totl', which no task of 'b' writes (they write metrics, total)"
    )
    with pytest.raises(WiringError, match="'make_numbers' and 'b/add_up' both write 'numbers'"):
        plan_of(TWO + "b/pipeline.keys = {'total': 'numbers'}\n")


def test_a_pattern_read_takes_every_branch_in_list_order(toy_project, cli) -> None:
    config = TWO + "run.tasks += [@gather]\n"
    steps = plan_of(config)
    assert steps[-1].reads == ("a/metrics", "b/metrics")
    toy_project.write("g.gin", config)
    assert cli("run", "g.gin", "--name", "g").exit_code == 0
    assert toy_project.run_json("g")["metrics"] == {"a/total": 10.0, "b/total": 20.0}
    with pytest.raises(WiringError, match=r"reads '\*/metrics', but no task in run\.tasks"):
        plan_of("import toytasks\nimport graphtasks\nrun.tasks = [@make_numbers, @gather]\n")


def test_a_nested_pipeline_without_a_name_is_one_line(toy_project, cli) -> None:
    toy_project.write(
        "u.gin", "import toytasks\nrun.tasks = [@make_numbers, @pipeline()]\npipeline.tasks = []\n"
    )
    result = cli("run", "u.gin")
    assert result.exit_code == 2
    assert result.output == (
        "error: run.tasks[1]: a nested pipeline needs a name: use it as @NAME/pipeline() in "
        "run.tasks, with NAME/pipeline.tasks = [...]\n"
    )
    with pytest.raises(ConfigError, match="nested pipeline 'c' has no tasks"):
        plan_of("import toytasks\nrun.tasks = [@make_numbers, @c/pipeline()]\n")
