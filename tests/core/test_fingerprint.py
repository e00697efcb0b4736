"""Cache keys: computed before running, from code, parameters (references followed but
never called), the files parameters name, and the keys of the inputs.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import toytasks

from ginpipe.config.compose import compose, compose_text
from ginpipe.config.settings import run_settings
from ginpipe.core import fingerprint
from ginpipe.core.plan import plan
from ginpipe.core.steps import task_steps

SHIFT = """\
import toytasks
run.tasks = [@make_numbers, @add_up, @shift]
"""


def keys(text: str, mods: tuple[str, ...] = ()) -> dict[str, str]:
    """Each task's cache key for a config text (no store: nothing is read or run)."""
    compose_text(text, "<test>", mods)
    steps = plan(task_steps(run_settings().tasks), None)
    return {step.spec.name: step.key for step in steps}


def test_digest_is_canonical() -> None:
    assert fingerprint.digest({"a": 1, "b": [1, 2]}) == fingerprint.digest({"b": [1, 2], "a": 1})
    assert fingerprint.digest({"a": 1}) != fingerprint.digest({"a": 1.5})


def test_keys_are_stable_and_follow_parameters_downstream() -> None:
    base = keys(SHIFT)
    assert keys(SHIFT) == base
    changed = keys(SHIFT, ("add_up.scale=2.0",))
    assert changed["make_numbers"] == base["make_numbers"]
    assert changed["add_up"] != base["add_up"]
    # shift's own parameters did not change, but its input did.
    assert changed["shift"] != base["shift"]


def test_macro_values_are_part_of_the_key() -> None:
    text = SHIFT + "S = 2.0\nadd_up.scale = %S\n"
    two = keys(text)
    three = keys(text.replace("S = 2.0", "S = 3.0"))
    assert two["add_up"] != three["add_up"]
    assert two["make_numbers"] == three["make_numbers"]


def test_scoped_bindings_only_change_the_scoped_task() -> None:
    text = "import toytasks\nrun.tasks = [@make_numbers, @add_up, @s/shift]\n"
    base = keys(text)
    scoped = keys(text + "s/shift.offset = 3\n")
    other_scope = keys(text + "t/shift.offset = 3\n")
    assert scoped["shift"] != base["shift"]
    assert other_scope["shift"] == base["shift"]
    assert scoped["add_up"] == base["add_up"]


def test_references_are_followed_but_never_called() -> None:
    text = SHIFT + "shift.offset = @offset_value()\noffset_value.value = 2\n"
    two = keys(text)
    three = keys(text.replace("value = 2", "value = 3"))
    assert toytasks.OFFSET_CALLS == []
    assert two["shift"] != three["shift"]
    assert two["add_up"] == three["add_up"]
    params = fingerprint.bound_parameters("toytasks.shift")
    assert params["offset"]["call"] is True and params["offset"]["ref"].endswith("offset_value")
    assert toytasks.OFFSET_CALLS == []


def test_a_reference_without_call_differs_from_a_call() -> None:
    called = keys(SHIFT + "shift.offset = @offset_value()\n")
    uncalled = keys(SHIFT + "shift.offset = @offset_value\n")
    assert called["shift"] != uncalled["shift"]
    assert toytasks.OFFSET_CALLS == []


def test_file_parameter_changes_the_key_when_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data.txt"
    data.write_text("one")
    text = "import toytasks\nrun.tasks = [@read_text]\nread_text.path = 'data.txt'\n"
    before = keys(text)["read_text"]
    assert keys(text)["read_text"] == before
    data.write_text("one two three")
    assert keys(text)["read_text"] != before


def test_folder_parameter_changes_the_key_when_a_file_inside_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "images" / "cat").mkdir(parents=True)
    (tmp_path / "images" / "cat" / "1.png").write_bytes(b"x")
    first = fingerprint.file_fingerprint("images")
    assert fingerprint.file_fingerprint("images") == first
    (tmp_path / "images" / "cat" / "2.png").write_bytes(b"y")
    assert fingerprint.file_fingerprint("images") != first


def _write_module(path: Path, body: str) -> None:
    path.write_text(body)
    # Make sure the new content is seen even when written within one mtime tick.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


@pytest.fixture
def module_dir(tmp_path: Path):
    folder = tmp_path / "mods"
    folder.mkdir()
    sys.path.insert(0, str(folder))
    added: list[str] = []
    yield folder, added
    sys.path.remove(str(folder))
    for name in added:
        sys.modules.pop(name, None)
    fingerprint.forget_code()


def test_code_change_of_a_task_module_changes_its_fingerprint(module_dir) -> None:
    folder, added = module_dir
    name = f"fp_task_{uuid.uuid4().hex[:8]}"
    file = folder / f"{name}.py"
    _write_module(file, "def work(state):\n    return {'x': 1}\n")
    module = importlib.import_module(name)
    added.append(name)
    before = fingerprint.code_fingerprint(module.work)
    assert fingerprint.code_fingerprint(module.work) == before
    _write_module(file, "def work(state):\n    return {'x': 2}\n")
    importlib.reload(module)  # the per-process memo follows the file: no reset needed
    assert fingerprint.code_fingerprint(module.work) != before


def test_code_change_of_a_project_helper_changes_the_task_fingerprint(module_dir) -> None:
    folder, added = module_dir
    suffix = uuid.uuid4().hex[:8]
    helper, task_module = f"fp_helper_{suffix}", f"fp_uses_{suffix}"
    _write_module(folder / f"{helper}.py", "def double(x):\n    return 2 * x\n")
    _write_module(
        folder / f"{task_module}.py",
        f"from {helper} import double\n\ndef work(state):\n    return double(1)\n",
    )
    module = importlib.import_module(task_module)
    added.extend([helper, task_module])
    before = fingerprint.code_fingerprint(module.work)
    _write_module(folder / f"{helper}.py", "def double(x):\n    return x + x\n")
    assert fingerprint.code_fingerprint(module.work) != before


def test_an_unchanged_module_is_not_read_again(module_dir, monkeypatch) -> None:
    folder, added = module_dir
    name = f"fp_same_{uuid.uuid4().hex[:8]}"
    _write_module(folder / f"{name}.py", "def work(state):\n    return {}\n")
    module = importlib.import_module(name)
    added.append(name)
    before = fingerprint.code_fingerprint(module.work)
    monkeypatch.setattr(fingerprint, "_project_closure", lambda m: pytest.fail("walked again"))
    assert fingerprint.code_fingerprint(module.work) == before


def test_a_notebook_cell_function_is_keyed_by_its_code() -> None:
    """``__main__`` in a kernel has no file: the compiled code stands for the source."""
    main: dict = {"__name__": "__main__"}
    exec(compile("def work(state):\n    return {'x': 1}\n", "<cell-1>", "exec"), main)
    again: dict = {"__name__": "__main__"}
    exec(compile("def work(state):\n    return {'x': 1}\n", "<cell-1>", "exec"), again)
    edited: dict = {"__name__": "__main__"}
    exec(compile("def work(state):\n    return {'x': 2}\n", "<cell-1>", "exec"), edited)
    saved = sys.modules["__main__"].__dict__.get("__file__")
    sys.modules["__main__"].__dict__.pop("__file__", None)
    try:
        first = fingerprint.code_fingerprint(main["work"])
        assert first.startswith("code:")
        assert fingerprint.code_fingerprint(again["work"]) == first
        assert fingerprint.code_fingerprint(edited["work"]) != first
    finally:
        if saved is not None:
            sys.modules["__main__"].__file__ = saved


def test_library_code_is_fingerprinted_by_version() -> None:
    assert fingerprint.code_fingerprint(np.mean) == f"numpy=={np.__version__}"
    assert fingerprint.code_fingerprint(json.dumps).startswith("json==")
    # The engine is covered by its version in every key, not by its source.
    assert fingerprint.code_fingerprint(run_settings).startswith("ginpipe==")


def test_toy_tasks_are_project_code() -> None:
    digest = fingerprint.code_fingerprint(toytasks.add_up)
    assert len(digest) == 64 and "==" not in digest


def test_task_key_covers_inputs_and_libraries() -> None:
    compose_text(SHIFT, "<test>")
    a = fingerprint.task_key("toytasks.add_up", toytasks.add_up, "", {"numbers": "1" * 64})
    b = fingerprint.task_key("toytasks.add_up", toytasks.add_up, "", {"numbers": "2" * 64})
    assert a != b
    versions = fingerprint.library_versions()
    assert {"torch", "numpy", "gin-config", "ginpipe", "python"} <= set(versions)


def test_artifact_keys_differ_per_output_name() -> None:
    assert fingerprint.artifact_key("a" * 64, "x") != fingerprint.artifact_key("a" * 64, "y")


def test_keys_are_computed_from_files_too(toy_project) -> None:
    composition = compose(["base.gin"])
    assert composition.digest
    steps = plan(task_steps(run_settings().tasks), None)
    assert all(len(step.key) == 64 for step in steps)
    assert len({step.key for step in steps}) == 3


def test_configurables_a_task_builds_itself_join_its_key(toy_project):
    """fit builds the Trainer itself: a Trainer binding must change fit's key, or a
    resume with more epochs would reuse the old model (a stale hit)."""
    import gin

    from ginpipe.config import names
    from ginpipe.core import fingerprint

    names.make_configurable("Trainer")

    def key() -> str:
        return fingerprint.task_key("t", key, "", {}, uses=("pytorch_lightning.Trainer",))

    gin.clear_config()
    gin.parse_config("Trainer.max_epochs = 3")
    three = key()
    gin.parse_config("Trainer.max_epochs = 4")
    assert key() != three
    gin.parse_config("Trainer.max_epochs = 3")
    assert key() == three


def test_a_package_installed_in_another_environment_counts_by_version(tmp_path) -> None:
    """A module under some other site-packages (a --user install, a second environment on
    the path) is a library, not code being edited; the same file in a source tree is."""
    folder = tmp_path / "other-env" / "lib" / "site-packages"
    folder.mkdir(parents=True)
    name = f"fp_installed_{uuid.uuid4().hex[:8]}"
    _write_module(folder / f"{name}.py", "def work(state):\n    return 1\n")
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(name)
        assert fingerprint.code_fingerprint(module.work) == f"{name}==unknown"
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(name, None)
