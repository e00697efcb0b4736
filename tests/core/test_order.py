"""The order tasks run in comes from what they read and write; the list breaks ties."""

from __future__ import annotations

import graphtasks  # noqa: F401  (registers the tasks the configs name)
import pytest
from graphhelpers import plan_of

from ginpipe.base.errors import WiringError

BRANCHES = "import toytasks\nimport graphtasks\n"


def test_a_listed_pipeline_keeps_its_order_and_its_keys() -> None:
    listed = plan_of("import toytasks\nrun.tasks = [@make_numbers, @add_up, @shift, @report]\n")
    shuffled = plan_of("import toytasks\nrun.tasks = [@report, @shift, @make_numbers, @add_up]\n")
    assert [s.spec.name for s in listed] == ["make_numbers", "add_up", "shift", "report"]
    # Shuffled: each task after what it reads; ties (shift, report) keep their list order.
    assert [s.spec.name for s in shuffled] == ["make_numbers", "add_up", "report", "shift"]
    assert {s.spec.name: s.key for s in listed} == {s.spec.name: s.key for s in shuffled}
    assert [s.index for s in shuffled] == [0, 1, 2, 3]


def test_independent_branches_keep_the_list_order() -> None:
    steps = plan_of(BRANCHES + "run.tasks = [@make_numbers, @right, @left, @join]\n")
    assert [s.spec.name for s in steps] == ["make_numbers", "right", "left", "join"]


def test_two_writers_of_one_key_are_refused_naming_both() -> None:
    with pytest.raises(WiringError) as info:
        plan_of(BRANCHES + "run.tasks = [@make_numbers, @add_up, @other_numbers]\n")
    assert str(info.value).startswith(
        "tasks 'make_numbers' and 'other_numbers' both write 'numbers'"
    )


def test_a_cycle_is_refused_naming_tasks_and_keys() -> None:
    with pytest.raises(WiringError) as info:
        plan_of(BRANCHES + "run.tasks = [@cycle_a, @cycle_b]\n")
    message = str(info.value)
    assert message.startswith("the tasks form a cycle: ")
    assert "'cycle_b' reads 'x' from 'cycle_a'" in message
    assert "'cycle_a' reads 'y' from 'cycle_b'" in message


def test_scoped_tasks_are_named_by_scope() -> None:
    with pytest.raises(WiringError, match="'a/make_numbers' and 'b/make_numbers' both write"):
        plan_of("import toytasks\nrun.tasks = [@a/make_numbers, @b/make_numbers]\n")


def test_refusals_come_before_any_work(toy_project, cli) -> None:
    toy_project.write("c.gin", BRANCHES + "run.tasks = [@make_numbers, @cycle_a, @cycle_b]\n")
    result = cli("run", "c.gin")
    assert result.exit_code == 2
    assert result.output.startswith("error: the tasks form a cycle")
    assert len(result.output.strip().splitlines()) == 1
    assert toy_project.calls() == [] and not toy_project.root.exists()


def test_a_list_out_of_order_runs_in_dependency_order(toy_project, cli) -> None:
    toy_project.write("r.gin", "import toytasks\nrun.tasks = [@report, @add_up, @make_numbers]\n")
    assert cli("run", "r.gin", "--name", "r").exit_code == 0
    assert toy_project.calls() == ["make_numbers", "add_up", "report"]
    assert list(toy_project.task_status("r")) == ["make_numbers", "add_up", "report"]


@pytest.mark.parametrize("model", ["models/resnet", "models/logreg"])
def test_shipped_pipelines_keep_the_keys_of_list_order(model: str) -> None:
    """The keys as computed before the graph: task by task in list order, from the keys of
    what each read."""
    from ginpipe.config.compose import compose
    from ginpipe.config.settings import run_settings
    from ginpipe.core import fingerprint
    from ginpipe.core.plan import plan
    from ginpipe.core.steps import task_steps

    compose(["base", model], [])
    steps = task_steps(run_settings().tasks)
    artifact: dict[str, str] = {}
    listed = []
    for step in steps:
        inputs = {k: artifact[k] for k in step.spec.reads}
        key = fingerprint.task_key(
            step.selector, step.spec.fn, step.scope, inputs, step.spec.caching.uses
        )
        artifact.update({name: fingerprint.artifact_key(key, name) for name in step.spec.writes})
        listed.append((step.spec.name, key))
    assert [(s.name, s.key) for s in plan(steps, None)] == listed
