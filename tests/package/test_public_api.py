"""The public face is small and old paths keep working for one release, with a warning."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

import ginpipe
from ginpipe.base.moved import MOVED

PUBLIC = {
    "__version__",
    # writing a task
    "task",
    "TaskView",
    "RunContext",
    "GinpipeError",
    "ConfigError",
    "DataError",
    "CheckpointError",
    "Interrupted",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    # the config a task runs under, and limits on its parameters
    "configured",
    "bound_value",
    "bound_class",
    "is_bound",
    "did_you_mean",
    "constrain",
    "requires",
    "Constraint",
    "AtLeast",
    "GreaterThan",
    "Positive",
    "NonNegative",
    # runs from Python
    "run",
    "resume",
    "compose",
    "load_run",
}


def test_the_public_names_are_the_documented_ones() -> None:
    assert set(ginpipe.__all__) == PUBLIC
    for name in ginpipe.__all__:
        assert getattr(ginpipe, name) is not None


def test_every_public_name_resolves_without_a_warning() -> None:
    probe = (
        "import warnings; warnings.simplefilter('error')\n"
        "import ginpipe\n"
        "[getattr(ginpipe, n) for n in ginpipe.__all__]\n"
        "import sys; print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # load_run and run bring no torch with them either (a run's model is loaded lazily)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_warns_and_is_the_moved_module(old: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=MOVED[old].replace(".", r"\.")):
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])


def test_notebook_code_from_before_the_layout_still_runs() -> None:
    """``from ginpipe.runner import execute`` as a 0.1 notebook wrote it."""
    probe = (
        "import warnings; warnings.simplefilter('always')\n"
        "from ginpipe.runner import RunRequest, execute\n"
        "from ginpipe.rundir import RunDir\n"
        "print(execute.__module__, RunDir.__module__)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ginpipe.runs.runner", "ginpipe.layout.rundir"]
    assert "ginpipe.runner moved to ginpipe.runs.runner" in result.stderr


def test_former_plumbing_names_warn_for_one_release() -> None:
    with pytest.warns(DeprecationWarning, match="path_error"):
        path_error = ginpipe.path_error
    from ginpipe.base.oserrors import path_error as current

    assert path_error is current
    assert "path_error" not in ginpipe.__all__


def test_pin_inputs_marks_the_task_pinned_as_the_decorator_does() -> None:
    @ginpipe.task(writes=("x",), name="pin_probe", module="test_public_api")
    def probe(state: ginpipe.TaskView) -> dict[str, int]:
        return {"x": 1}

    assert not probe.__ginpipe_task__.caching.pinned
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ginpipe.pin_inputs(probe)
    assert probe.__ginpipe_task__.caching.pinned


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = ginpipe.nope
