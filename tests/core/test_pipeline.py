"""Running the task list: wiring and declarations, the state, timings, observers, and the
cross-run cache (hits, reruns, --rerun, --no-cache, unstorable and corrupted outputs).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import toytasks

from ginpipe.base.errors import UndeclaredKeyError
from ginpipe.config.compose import compose
from ginpipe.config.settings import run_settings
from ginpipe.core.plan import plan
from ginpipe.core.state import State, TaskView
from ginpipe.core.steps import task_steps
from ginpipe.core.store import ArtifactStore
from ginpipe.core.taskdef import check_outputs, spec_of

CHAIN = """\
import toytasks
make_numbers.n = 4
add_up.scale = 1.0
run.tasks = [@make_numbers, @add_up, @shift, @report]
"""

THINGS = """\
import toytasks
run.tasks = [@make_thing, @use_thing]
"""


# -- state and declarations -----------------------------------------------------------------


def test_state_loads_lazy_values_on_first_read_only() -> None:
    loads: list[str] = []
    state = State()
    state.set("a", 1)
    state.set_lazy("b", lambda: loads.append("b") or 2)
    assert set(state) == {"a", "b"} and len(state) == 2 and "b" in state
    assert loads == [] and not state.is_loaded("b")
    assert state["b"] == 2 and state["b"] == 2
    assert loads == ["b"]


def test_task_view_refuses_undeclared_reads_and_assignments() -> None:
    state = State()
    state.set("numbers", [1, 2])
    state.set("other", 3)
    view = TaskView(state, "add_up", ("numbers",))
    assert view["numbers"] == [1, 2]
    assert list(view) == ["numbers"]
    with pytest.raises(UndeclaredKeyError, match="read 'other'"):
        view["other"]
    with pytest.raises(UndeclaredKeyError, match="return"):
        view["total"] = 1  # type: ignore[index]


def test_state_attribute_access_says_how_keys_are_read() -> None:
    """GinPipe's ``state.seed`` is ``state["seed"]`` here; the error names the readable keys."""
    view = TaskView(State(), "fit", ("data", "seed"))
    with pytest.raises(AttributeError) as info:
        _ = view.seed
    assert str(info.value) == (
        "task 'fit': the state has no attribute 'seed'; read a state key as state['seed'] "
        "(this task reads 'data', 'seed')"
    )
    assert not hasattr(view, "_private_probe")


def test_outputs_must_match_the_declared_writes() -> None:
    spec = spec_of(toytasks.add_up)
    assert spec.reads == ("numbers",) and spec.writes == ("total",)
    assert check_outputs(spec, {"total": 1.0}) == {"total": 1.0}
    with pytest.raises(UndeclaredKeyError, match="wrote \\['extra'\\]"):
        check_outputs(spec, {"total": 1.0, "extra": 2})
    with pytest.raises(UndeclaredKeyError, match="did not return \\['total'\\]"):
        check_outputs(spec, {})
    with pytest.raises(UndeclaredKeyError, match="returned int"):
        check_outputs(spec, 3)


def test_wiring_is_checked_before_any_work(toy_project, cli) -> None:
    toy_project.write("w.gin", "import toytasks\nrun.tasks = [@make_numbers, @report]\n")
    result = cli("run", "w.gin")
    assert result.exit_code == 2
    assert "'report' reads 'total'" in result.output
    assert toy_project.calls() == []
    assert not toy_project.root.exists()


def test_undeclared_read_fails_the_run_clearly(toy_project, cli) -> None:
    toy_project.write("p.gin", "import toytasks\nrun.tasks = [@make_numbers, @peek]\n")
    result = cli("run", "p.gin", "--name", "peek")
    assert result.exit_code != 0
    assert "task 'peek' read 'numbers'" in result.output
    record = toy_project.run_json("peek")
    assert record["status"] == "failed"
    assert record["error"]["task"] == "peek"


def test_undeclared_write_fails_the_run_clearly(toy_project, cli) -> None:
    toy_project.write("o.gin", "import toytasks\nrun.tasks = [@overshare]\n")
    result = cli("run", "o.gin", "--name", "over")
    assert result.exit_code != 0
    assert "wrote ['secret']" in result.output
    assert toy_project.run_json("over")["error"]["task"] == "overshare"


def test_failing_task_exit_1_and_run_json_names_it(toy_project, cli) -> None:
    toy_project.write("f.gin", "import toytasks\nrun.tasks = [@make_numbers, @explode, @add_up]\n")
    result = cli("run", "f.gin", "--name", "bad")
    assert result.exit_code == 1
    assert "task 'explode' failed" in result.output
    record = toy_project.run_json("bad")
    assert record["status"] == "failed" and record["exit_code"] == 1
    assert record["error"]["task"] == "explode"
    assert "RuntimeError: boom" in record["error"]["message"]
    assert toy_project.task_status("bad") == {"make_numbers": "completed", "explode": "failed"}
    assert toy_project.calls("add_up") == 0


def test_timings_and_metrics_in_run_json(toy_project, cli) -> None:
    toy_project.write(
        "n.gin",
        "import toytasks\nnap.seconds = 0.2\nrun.tasks = [@make_numbers, @add_up, @nap, @report]\n",
    )
    assert cli("run", "n.gin", "--name", "nap").exit_code == 0
    record = toy_project.run_json("nap")
    seconds = {t["name"]: t["seconds"] for t in record["tasks"]}
    assert list(seconds) == ["make_numbers", "add_up", "nap", "report"]
    assert seconds["nap"] >= 0.2
    assert seconds["make_numbers"] < 0.2
    assert record["duration_s"] >= 0.2
    assert record["metrics"] == {"accuracy": 0.06, "total": 6.0}
    assert (toy_project.run_dir("nap") / "metrics.json").is_file()


# -- observers -------------------------------------------------------------------------------


def test_observers_from_the_config_receive_every_event(toy_project, cli) -> None:
    result = cli("run", "base.gin", "--name", "obs", "--mod", "run.observers=[@Recorder()]")
    assert result.exit_code == 0
    hooks = [hook for hook, _ in toytasks.EVENTS]
    assert hooks == [
        "on_run_start",
        *["on_task_start", "on_task_end"] * 3,
        "on_run_end",
    ]
    ends = [payload for hook, payload in toytasks.EVENTS if hook == "on_task_end"]
    assert ends == [("make_numbers", "completed"), ("add_up", "completed"), ("report", "completed")]
    assert toytasks.EVENTS[-1][1]["status"] == "completed"


def test_observers_hear_about_failures(toy_project, cli) -> None:
    toy_project.write(
        "f.gin",
        "import toytasks\nrun.tasks = [@make_numbers, @explode]\nrun.observers = [@Recorder()]\n",
    )
    assert cli("run", "f.gin", "--name", "f").exit_code == 1
    hooks = [hook for hook, _ in toytasks.EVENTS]
    assert hooks == [
        "on_run_start",
        "on_task_start",
        "on_task_end",
        "on_task_start",
        "on_task_failed",
        "on_run_end",
    ]
    failed = dict(toytasks.EVENTS)["on_task_failed"]
    assert failed[0] == "explode" and "boom" in failed[1]
    assert toytasks.EVENTS[-1][1]["status"] == "failed"


def test_a_failing_observer_does_not_fail_the_run(toy_project, cli) -> None:
    result = cli(
        "run", "base.gin", "--name", "g", "--mod", "run.observers=[@Grumpy(), @Recorder()]"
    )
    assert result.exit_code == 0
    assert toy_project.run_json("g")["status"] == "completed"
    assert [hook for hook, _ in toytasks.EVENTS][-1] == "on_run_end"


# -- cache -----------------------------------------------------------------------------------


def test_identical_second_run_reads_everything_from_the_cache(toy_project, cli) -> None:
    toy_project.write("c.gin", CHAIN)
    assert cli("run", "c.gin", "--name", "one").exit_code == 0
    assert toy_project.calls() == ["make_numbers", "add_up", "shift", "report"]
    assert cli("run", "c.gin", "--name", "two").exit_code == 0
    # Only the uncached report ran again.
    assert toy_project.calls() == ["make_numbers", "add_up", "shift", "report", "report"]
    assert toy_project.task_status("two") == {
        "make_numbers": "cached",
        "add_up": "cached",
        "shift": "cached",
        "report": "completed",
    }
    one, two = toy_project.run_json("one"), toy_project.run_json("two")
    assert two["metrics"] == one["metrics"] == {"accuracy": 0.1, "total": 10.0}
    # Where a reused output came from, as a path that means the same from any folder.
    producer = {t["name"]: t.get("from_run") for t in two["tasks"]}
    assert producer["add_up"] == str(toy_project.run_dir("one").resolve())


def test_a_task_that_writes_nothing_runs_every_time(toy_project, cli) -> None:
    """Its side effects are its point: a cache hit would skip them without a word."""
    toy_project.write(
        "s.gin", "import toytasks\nrun.tasks = [@make_numbers, @side_effect, @add_up, @report]\n"
    )
    assert cli("run", "s.gin", "--name", "one").exit_code == 0
    assert cli("run", "s.gin", "--name", "two").exit_code == 0
    assert toy_project.calls("side_effect") == 2
    assert toy_project.calls("make_numbers") == 1
    assert toy_project.task_status("two")["side_effect"] == "completed"


def test_changed_parameter_reruns_that_task_and_after(toy_project, cli) -> None:
    toy_project.write("c.gin", CHAIN)
    assert cli("run", "c.gin", "--name", "one").exit_code == 0
    assert cli("run", "c.gin", "--name", "two", "--mod", "add_up.scale=2.0").exit_code == 0
    assert toy_project.task_status("two") == {
        "make_numbers": "cached",
        "add_up": "completed",
        "shift": "completed",
        "report": "completed",
    }
    assert toy_project.calls("make_numbers") == 1
    assert toy_project.run_json("two")["metrics"]["total"] == 20.0


def test_rerun_forces_a_task_and_everything_after(toy_project, cli) -> None:
    toy_project.write("c.gin", CHAIN)
    assert cli("run", "c.gin", "--name", "one").exit_code == 0
    assert cli("run", "c.gin", "--name", "two", "--rerun", "add_up").exit_code == 0
    assert toy_project.task_status("two") == {
        "make_numbers": "cached",
        "add_up": "completed",
        "shift": "completed",
        "report": "completed",
    }
    assert toy_project.calls("make_numbers") == 1 and toy_project.calls("shift") == 2


def test_rerun_of_an_unknown_task_is_a_usage_error(toy_project, cli) -> None:
    result = cli("run", "base.gin", "--rerun", "add_upp")
    assert result.exit_code == 2
    assert "add_upp" in result.output
    assert toy_project.calls() == []


def test_no_cache_runs_everything(toy_project, cli) -> None:
    toy_project.write("c.gin", CHAIN)
    assert cli("run", "c.gin", "--name", "one").exit_code == 0
    assert cli("run", "c.gin", "--name", "two", "--no-cache").exit_code == 0
    assert set(toy_project.task_status("two").values()) == {"completed"}
    assert toy_project.calls("make_numbers") == 2 and toy_project.calls("add_up") == 2


def test_unstorable_output_producer_reruns_when_needed(toy_project, cli) -> None:
    toy_project.write("t.gin", THINGS)
    assert cli("run", "t.gin", "--name", "one").exit_code == 0
    # Nothing changed: both cached, the unstorable value is not needed.
    assert cli("run", "t.gin", "--name", "two").exit_code == 0
    assert toy_project.task_status("two") == {"make_thing": "cached", "use_thing": "cached"}
    assert toy_project.calls("make_thing") == 1
    # The consumer changed: it needs the value, so its producer runs again.
    assert cli("run", "t.gin", "--name", "three", "--mod", "use_thing.plus=1").exit_code == 0
    assert toy_project.task_status("three") == {
        "make_thing": "completed",
        "use_thing": "completed",
    }
    assert toy_project.calls("make_thing") == 2


def test_plan_marks_the_producer_of_an_unstorable_needed_output(toy_project, cli) -> None:
    toy_project.write("t.gin", THINGS)
    assert cli("run", "t.gin", "--name", "one").exit_code == 0
    compose(["t.gin"], ["use_thing.plus=2"])
    steps = plan(task_steps(run_settings().tasks), ArtifactStore(toy_project.root / ".cache"))
    assert [(s.spec.name, s.action) for s in steps] == [("make_thing", "run"), ("use_thing", "run")]
    assert "not storable" in steps[0].reason
    assert steps[0].transient == ("thing",)


def _flip_bytes(entry_dir: Path) -> Path:
    data = [p for p in entry_dir.iterdir() if p.name != "manifest.json"]
    assert data, f"no data files in {entry_dir}"
    target = data[0]
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    target.write_bytes(bytes(raw))
    return target


def test_corrupted_stored_output_is_recomputed(toy_project, cli) -> None:
    toy_project.write("c.gin", CHAIN)
    assert cli("run", "c.gin", "--name", "one").exit_code == 0
    store = ArtifactStore(toy_project.root / ".cache")
    (entry,) = [e for e in store.entries() if e.task == "make_numbers"]
    _flip_bytes(entry.path)
    # add_up changed, so it reads the (corrupt) numbers of the cached make_numbers.
    result = cli("run", "c.gin", "--name", "two", "--mod", "add_up.scale=3.0")
    assert result.exit_code == 0, result.output
    assert toy_project.calls("make_numbers") == 2
    assert toy_project.run_json("two")["metrics"]["total"] == 30.0
    # The recomputed value was stored again and is good for the next run.
    assert store.verify(entry.key)
    assert cli("run", "c.gin", "--name", "three", "--mod", "add_up.scale=4.0").exit_code == 0
    assert toy_project.calls("make_numbers") == 2
    assert toy_project.run_json("three")["metrics"]["total"] == 40.0


def test_cache_is_shared_across_run_names_but_not_projects(toy_project, cli) -> None:
    assert cli("run", "base.gin", "--name", "a").exit_code == 0
    assert cli("run", "base.gin", "--name", "b", "--project", "other").exit_code == 0
    # Same root, so same cache: the other project reuses the outputs.
    assert toy_project.calls("make_numbers") == 1
    assert cli("run", "base.gin", "--name", "c", "--root", "elsewhere").exit_code == 0
    assert toy_project.calls("make_numbers") == 2


def test_an_observer_method_that_is_no_event_is_refused_before_any_work(toy_project, cli):
    toy_project.write(
        "obs.py",
        "class Typo:\n    def on_task_done(self, event):\n        pass\n",
    )
    toy_project.write(
        "o.gin", "import toytasks\nrun.tasks = [@make_numbers]\nrun.observers = [@obs.Typo()]\n"
    )
    import sys

    sys.path.insert(0, str(toy_project.path))
    try:
        result = cli("run", "o.gin", "--name", "o")
    finally:
        sys.path.remove(str(toy_project.path))
        sys.modules.pop("obs", None)
    assert result.exit_code == 2
    assert "has a method on_task_done, which is no event (did you mean 'on_task_end'?)" in (
        result.output
    )
    assert toy_project.run_dirs() == []


def test_a_value_recomputed_for_a_later_task_runs_as_its_producers_own_step(toy_project, cli):
    """A corrupt cached value is recomputed by its producer as a step of its own: its
    events come before the consumer's, and the consumer's timing does not include it."""
    import toytasks

    toy_project.write("c.gin", CHAIN)
    assert cli("run", "c.gin", "--name", "one").exit_code == 0
    store = ArtifactStore(toy_project.root / ".cache")
    (entry,) = [e for e in store.entries() if e.task == "make_numbers"]
    _flip_bytes(entry.path)
    toytasks.EVENTS.clear()
    result = cli(
        "run", "c.gin", "--name", "two", "-m", "add_up.scale=3.0",
        "-m", "run.observers=[@Recorder()]",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    order = [(hook, payload) for hook, payload in toytasks.EVENTS if hook != "on_run_start"]
    start_add_up = order.index(("on_task_start", "add_up"))
    assert ("on_task_end", ("make_numbers", "completed")) in order[:start_add_up]
    assert "running (recomputing: stored 'numbers' unusable)" in result.output


def test_a_task_error_is_reported_in_the_tasks_own_words(toy_project, cli):
    """gin wraps errors from configurables with an 'In call to configurable' line and a
    memory address; neither the console nor run.json shows it."""
    toy_project.write("x.gin", "import toytasks\nrun.tasks = [@make_numbers, @explode]\n")
    result = cli("run", "x.gin", "--name", "x", "-m", "explode.message='disk on fire'")
    assert result.exit_code == 1
    assert "In call to configurable" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert error_lines == [
        "error: task 'explode' failed: RuntimeError: disk on fire "
        "(details in run.json; -v for the traceback)"
    ]
    recorded = toy_project.run_json("x")["error"]
    assert "In call to configurable" not in json.dumps(recorded)
    assert "disk on fire" in json.dumps(recorded)
