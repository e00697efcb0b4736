"""Composing gin files and ``--mod`` bindings: order, includes, imports, macros, ``+=``,
and errors that name the file and line with a did-you-mean.
"""

from __future__ import annotations

from pathlib import Path

import gin
import pytest

from ginpipe.base.errors import ConfigError, WiringError
from ginpipe.config.compose import compose, compose_text
from ginpipe.config.settings import run_settings
from ginpipe.core.steps import task_steps
from ginpipe.runs.runner import RunRequest, prepare


def names(tasks: list) -> list[str]:
    return [step.spec.name for step in task_steps(tasks)]


def config_error(files: list, mods: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        compose(files, mods)
    message = str(info.value)
    assert "\n" not in message.strip(), message
    return message


# -- composition ----------------------------------------------------------------------------


def test_files_apply_in_order_and_later_wins(toy_project) -> None:
    first = toy_project.write(
        "first.gin", "import toytasks\nadd_up.scale = 1.0\nmake_numbers.n = 2\n"
    )
    second = toy_project.write("second.gin", "add_up.scale = 2.0\n")
    compose([first, second])
    assert gin.query_parameter("add_up.scale") == 2.0
    assert gin.query_parameter("make_numbers.n") == 2
    compose([second, first])
    assert gin.query_parameter("add_up.scale") == 1.0


def test_mods_apply_after_files_and_later_mod_wins(toy_project) -> None:
    composition = compose(
        ["base.gin"], ["add_up.scale=3.0", "make_numbers.n=7", "add_up.scale=5.0"]
    )
    assert gin.query_parameter("add_up.scale") == 5.0
    assert gin.query_parameter("make_numbers.n") == 7
    assert composition.mods == ["add_up.scale=3.0", "make_numbers.n=7", "add_up.scale=5.0"]
    assert "add_up.scale = 5.0" in composition.bindings


def test_include_resolves_against_the_including_file(
    toy_project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toy_project.write("conf/parts/tasks.gin", "import toytasks\nmake_numbers.n = 2\n")
    main = toy_project.write(
        "conf/main.gin",
        "include 'parts/tasks.gin'\nmake_numbers.start = 5\nrun.tasks = [@make_numbers]\n",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Also a decoy with the same relative name under the working directory.
    (elsewhere / "parts").mkdir()
    (elsewhere / "parts" / "tasks.gin").write_text("make_numbers.n = 99\n")
    monkeypatch.chdir(elsewhere)
    compose([main])
    assert gin.query_parameter("make_numbers.n") == 2
    assert gin.query_parameter("make_numbers.start") == 5


def test_later_statements_override_an_include(toy_project) -> None:
    toy_project.write("defaults.gin", "import toytasks\nmake_numbers.n = 2\n")
    main = toy_project.write("main.gin", "include 'defaults.gin'\nmake_numbers.n = 9\n")
    compose([main])
    assert gin.query_parameter("make_numbers.n") == 9


def test_include_cycle_is_reported(toy_project) -> None:
    toy_project.write("a.gin", "include 'b.gin'\n")
    toy_project.write("b.gin", "x = 1\ninclude 'a.gin'\n")
    message = config_error(["a.gin"])
    assert "include cycle" in message
    assert "b.gin:2" in message
    assert "a.gin" in message


def test_missing_include_names_the_line(toy_project) -> None:
    toy_project.write("main.gin", "import toytasks\ninclude 'nope.gin'\n")
    message = config_error(["main.gin"])
    assert "main.gin:2" in message
    assert "nope.gin" in message


def test_import_lines_and_macros(toy_project) -> None:
    toy_project.write(
        "m.gin",
        "import toytasks\nSCALE = 4.0\nadd_up.scale = %SCALE\nrun.tasks = [@make_numbers]\n",
    )
    compose(["m.gin"])
    assert gin.query_parameter("%SCALE") == 4.0
    assert names(run_settings().tasks) == ["make_numbers"]


def test_append_in_files_and_in_mods(toy_project) -> None:
    toy_project.write("one.gin", "import toytasks\nrun.tasks = [@make_numbers]\n")
    toy_project.write("two.gin", "run.tasks += [@add_up]\n")
    compose(["one.gin", "two.gin"], ["run.tasks+=[@report]"])
    assert names(run_settings().tasks) == ["make_numbers", "add_up", "report"]


def test_append_to_an_unbound_parameter_starts_from_its_default(toy_project) -> None:
    compose(["base.gin"], ["run.observers+=[@Recorder()]"])
    observers = run_settings().observers
    assert [type(o).__name__ for o in observers] == ["Recorder"]


def test_append_needs_a_list(toy_project) -> None:
    toy_project.write("x.gin", "import toytasks\nrun.tasks = [@make_numbers]\nrun.tasks += 3\n")
    message = config_error(["x.gin"])
    assert "x.gin:3" in message
    assert "list" in message


def test_equals_inside_strings_and_multiline_lists(toy_project) -> None:
    toy_project.write(
        "m.gin",
        "import toytasks\n"
        "run.tasks = [\n"
        "    @make_numbers,  # a comment = with an equals sign\n"
        "    @read_text,\n"
        "]\n"
        "read_text.path = 'key=value.txt'\n"
        "run.tasks += [\n"
        "    @add_up,\n"
        "]\n",
    )
    compose(["m.gin"])
    assert gin.query_parameter("read_text.path") == "key=value.txt"
    assert names(run_settings().tasks) == ["make_numbers", "read_text", "add_up"]


def test_composed_text_parses_back_to_the_same_config(toy_project) -> None:
    toy_project.write("conf/parts/p.gin", "import toytasks\nSCALE = 2.0\nmake_numbers.n = 2\n")
    toy_project.write(
        "conf/main.gin",
        "include 'parts/p.gin'\n"
        "add_up.scale = %SCALE\n"
        "run.tasks = [@make_numbers,\n  @add_up]\n"
        "read_text.path = 'a=b'\n",
    )
    original = compose(
        ["conf/main.gin"],
        ["run.tasks+=[@report]", "run.observers+=[@Recorder()]", "make_numbers.start=3"],
    )
    again = compose_text(original.text, str(toy_project.path / "elsewhere" / "config.gin"))
    assert again.bindings == original.bindings
    assert again.digest == original.digest
    assert names(run_settings().tasks) == ["make_numbers", "add_up", "report"]


def test_digest_follows_the_bindings(toy_project) -> None:
    a = compose(["base.gin"]).digest
    assert compose(["base.gin"]).digest == a
    assert compose(["base.gin"], ["add_up.scale=2.0"]).digest != a


# -- errors ----------------------------------------------------------------------------------


def test_gin_syntax_error_names_file_and_line(toy_project) -> None:
    toy_project.write("x.gin", "import toytasks\nmake_numbers.n = 3\nadd_up.scale = = 2\n")
    assert "x.gin:3" in config_error(["x.gin"])


def test_unterminated_list_names_the_line_of_its_opening_bracket(toy_project) -> None:
    toy_project.write(
        "x.gin",
        "import toytasks\nrun.tasks = [@make_numbers,\n    @add_up,\n\nmake_numbers.n = 2\n",
    )
    message = config_error(["x.gin"])
    assert "x.gin:2" in message
    assert "never closed" in message


def test_unknown_configurable_suggests_a_name(toy_project) -> None:
    toy_project.write("x.gin", "import toytasks\n\nadd_upp.scale = 2.0\n")
    message = config_error(["x.gin"])
    assert "x.gin:3" in message
    assert "did you mean 'add_up'" in message


def test_unknown_parameter_suggests_a_name(toy_project) -> None:
    toy_project.write("x.gin", "import toytasks\nadd_up.scal = 2.0\n")
    message = config_error(["x.gin"])
    assert "x.gin:2" in message
    assert "did you mean 'scale'" in message


def test_unknown_trainer_parameter_suggests_a_name(toy_project) -> None:
    toy_project.write("t.gin", "Trainer.max_epocs = 3\n")
    message = config_error(["t.gin"])
    assert "t.gin:1" in message
    assert "max_epochs" in message


def test_unknown_macro_suggests_a_name(toy_project) -> None:
    toy_project.write("m.gin", "import toytasks\nSCALE = 2.0\nadd_up.scale = %SCAEL\n")
    message = config_error(["m.gin"])
    assert "m.gin:3" in message
    assert "SCAEL" in message
    assert "did you mean 'SCALE'" in message


def test_unquoted_string_gets_a_quoting_hint(toy_project) -> None:
    toy_project.write("q.gin", "import toytasks\nread_text.path = hello\n")
    message = config_error(["q.gin"])
    assert "q.gin:2" in message
    assert "read_text.path='hello'" in message


def test_missing_import_names_the_module(toy_project) -> None:
    toy_project.write("i.gin", "import toytasks_nowhere\n")
    message = config_error(["i.gin"])
    assert "i.gin:1" in message
    assert "toytasks_nowhere" in message


@pytest.mark.parametrize("mod", ["add_up.scale", "add_up.scale=", "=3", "no spaces allowed=1"])
def test_malformed_mod(toy_project, mod: str) -> None:
    message = config_error(["base.gin"], (mod,))
    assert "--mod" in message
    assert "KEY=VALUE" in message


def test_mod_with_unknown_parameter_names_the_mod(toy_project) -> None:
    message = config_error(["base.gin"], ("add_up.scael=2.0",))
    assert "add_up.scael=2.0" in message
    assert "did you mean 'scale'" in message


def test_mod_is_one_binding(toy_project) -> None:
    message = config_error(["base.gin"], ("add_up.scale=2.0\nmake_numbers.n=1",))
    assert "one binding" in message


def test_missing_file_suggests_a_name(toy_project) -> None:
    message = config_error(["bsae.gin"])
    assert "not found" in message
    assert "did you mean 'base.gin'" in message


def test_no_file_at_all(toy_project) -> None:
    assert "no config given" in config_error([])


def test_required_parameter_missing_shows_the_task_hint(toy_project) -> None:
    toy_project.write("r.gin", "include 'base.gin'\nrun.tasks += [@scale_by]\n")
    with pytest.raises(ConfigError) as info:
        prepare(RunRequest(files=["r.gin"]))
    message = str(info.value)
    assert "scale_by.factor" in message
    assert "how much to multiply the total by" in message
    # Bound, it passes.
    prepare(RunRequest(files=["r.gin"], mods=["scale_by.factor=2.0"]))


def test_a_reader_listed_before_its_writer_runs_after_it(toy_project) -> None:
    """The order comes from reads/writes (``ginpipe/core/graph.py``); two writers of one key
    are the wiring error naming both tasks."""
    toy_project.write("w.gin", "import toytasks\nrun.tasks = [@add_up, @make_numbers]\n")
    steps = prepare(RunRequest(files=["w.gin"])).steps
    assert [step.spec.name for step in steps] == ["make_numbers", "add_up"]
    toy_project.write("d.gin", "import toytasks\nrun.tasks = [@make_numbers, @overshare]\n")
    with pytest.raises(WiringError) as info:
        prepare(RunRequest(files=["d.gin"]))
    message = str(info.value)
    assert "'overshare'" in message and "'make_numbers'" in message and "'numbers'" in message


def test_wiring_error_when_nobody_writes_a_key(toy_project) -> None:
    toy_project.write("w.gin", "import toytasks\nrun.tasks = [@add_up]\n")
    with pytest.raises(WiringError, match=r"no task in run\.tasks writes it"):
        prepare(RunRequest(files=["w.gin"]))


def test_a_non_task_in_the_task_list_is_a_config_error(toy_project) -> None:
    toy_project.write("w.gin", "import toytasks\nrun.tasks = [@make_numbers, @offset_value]\n")
    with pytest.raises(ConfigError, match=r"run.tasks\[1\]"):
        prepare(RunRequest(files=["w.gin"]))


# -- overrides that take effect -------------------------------------------------------------


def test_a_mod_setting_a_macro_no_binding_uses_is_refused_with_a_did_you_mean(toy_project):
    toy_project.write("m.gin", "import toytasks\nSCALE = 2.0\nadd_up.scale = %SCALE\n")
    message = config_error(["base.gin", "m.gin"], ("SCALEE=3.0",))
    assert (
        message == "--mod 'SCALEE=3.0': macro SCALEE is used by no binding (did you mean 'SCALE'?)"
    )


def test_a_file_macro_no_binding_uses_is_one_warning_naming_its_line(toy_project, capsys):
    """GinPipe configs often carry macros for other compositions: a warning, not a refusal."""
    toy_project.write("m.gin", "import toytasks\nSCALE = 2.0\nadd_up.scale = %SCALE\nSCAEL = 1\n")
    compose(["base.gin", "m.gin"])
    warnings = [line for line in capsys.readouterr().err.splitlines() if "SCAEL" in line]
    assert len(warnings) == 1
    assert warnings[0].endswith(
        "m.gin:4: macro SCAEL is used by no binding (did you mean 'SCALE'?)"
    )
    assert "WARNING" in warnings[0]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "$lr = 3\n",
            "m.gin:1: Unexpected token; GinPipe's $lr = ... is a gin macro here: "
            "write lr = ... and use it as %lr",
        ),
        (
            "add_up.scale = $lr\n",
            "m.gin:1: Unable to parse value; GinPipe's $lr is written %lr "
            "in gin (a macro defined as lr = ...)",
        ),
        (
            "!load_template: other.gin\n",
            "m.gin:1: Unexpected token; GinPipe's !load_template is "
            "not gin: write include 'other.gin' (relative to this file), or name both configs on "
            "the command line",
        ),
    ],
)
def test_ginpipe_syntax_gets_the_gin_form_in_one_line(toy_project, line, expected):
    toy_project.write("m.gin", line)
    assert config_error(["base.gin", "m.gin"]) == expected


def test_the_old_tasks_package_names_its_new_place(toy_project):
    toy_project.write("m.gin", "import tasks.sklearn_models\n")
    message = config_error(["base.gin", "m.gin"])
    assert message.startswith("m.gin:1: cannot import module 'tasks.sklearn_models': no module")
    assert message.endswith(
        "; the standard task library is ginpipe.tasks.sklearn_models now: "
        "import ginpipe.tasks.sklearn_models"
    )


def test_a_macro_whose_binding_a_later_file_replaces_is_fine_but_not_as_a_mod(toy_project):
    toy_project.write("m.gin", "import toytasks\nSCALE = 2.0\nadd_up.scale = %SCALE\n")
    toy_project.write("fixed.gin", "add_up.scale = 5.0\n")
    compose(["base.gin", "m.gin", "fixed.gin"])
    message = config_error(["base.gin", "m.gin", "fixed.gin"], ("SCALE=3.0",))
    assert "macro SCALE is used by no binding; add_up.scale is set by fixed.gin:1 instead" in (
        message
    )


def test_the_shipped_lr_macro_reaches_the_optimizer_and_the_schedule(toy_project):
    composition = compose(["base", "models/resnet"], ["LR=0.05"])
    assert "LR = 0.05" in composition.bindings
    from ginpipe.config import ginapi

    assert ginapi.follow_macros(gin.query_parameter("torch.optim.AdamW.lr")) == 0.05
    assert ginapi.follow_macros(gin.query_parameter("OneCycleLR.max_lr")) == 0.05


def test_a_self_referential_macro_is_reported_with_its_chain(toy_project):
    toy_project.write("m.gin", "import toytasks\nS = %T\nT = %S\nadd_up.scale = %S\n")
    message = config_error(["base.gin", "m.gin"])
    assert "macro cycle: S -> T -> S" in message


def test_a_mod_of_a_configurable_no_task_uses_gets_a_one_line_warning(toy_project, cli):
    toy_project.write("unused.py", "def helper(x=1):\n    return x\n")
    import sys

    sys.path.insert(0, str(toy_project.path))
    try:
        result = cli("config", "base.gin", "-m", "unused.helper.x=2", "-m", "add_up.scale=3.0")
    finally:
        sys.path.remove(str(toy_project.path))
        sys.modules.pop("unused", None)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "changes nothing" in line]
    assert len(warnings) == 1
    assert (
        "--mod 'unused.helper.x=2' changes nothing that runs: no task uses unused.helper"
        in (warnings[0])
    )


def test_run_macros_hold_the_run_directory_name_and_project(toy_project, cli):
    toy_project.write(
        "m.gin",
        "import toytasks\nrun.tasks = [@make_numbers, @read_text]\nread_text.path = %RUN_DIR\n",
    )
    composition = compose(["m.gin"])
    assert "RUN_DIR = '<RUN_DIR>'" in composition.bindings
    result = cli("run", "m.gin", "--name", "named", "--dry-run")
    assert result.exit_code == 0, result.output
    from ginpipe.config import ginapi

    assert ginapi.macro_value("RUN_DIR") == str(toy_project.run_dir("named").resolve())


def test_simple_lines_bind_exactly_what_gins_parser_binds(toy_project, monkeypatch) -> None:
    """One-line literal bindings skip gin's parser; the bound config is the same."""
    import re

    from ginpipe.config import gintext

    toy_project.write(
        "lits.gin",
        "import toytasks\n"
        "run.tasks = [@make_numbers, @add_up, @report]\n"
        "make_numbers.n = 7  # a comment\n"
        "add_up.scale = -1.5e-3\n"
        "report.bonus = %BONUS\n"
        "BONUS = 2.\n"
        "s/make_numbers.start = 3\n"
        "s/M = 'x # = y'\n"
        "make_numbers.start = %s/M\n"
        "make_numbers.start = None\n"
        "add_up.scale = .5\n",
    )
    fast = compose(["lits.gin"]).bindings
    monkeypatch.setattr(gintext, "_SIMPLE_LINE", re.compile(r"(?!)"))
    assert compose(["lits.gin"]).bindings == fast
    assert "make_numbers.n = 7" in fast and "BONUS = 2.0" in fast
