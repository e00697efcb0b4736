"""Names a config uses are resolved when it uses them: dotted paths to any importable
callable, short names from the installed name tables, and one-line errors otherwise."""

from __future__ import annotations

import sys

import gin
import pytest

from ginpipe.base.errors import ConfigError
from ginpipe.config import names
from ginpipe.config.compose import compose

USER_MODULE = '''
class Net:
    """An undecorated class."""

    def __init__(self, width=8, depth=2):
        self.width, self.depth = width, depth


def build(kind="plain", size=3):
    return (kind, size)
'''


@pytest.fixture
def user_module(toy_project, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module of the user's own in the working directory, importable as ``usermod_<n>``."""
    name = f"usermod_{abs(hash(str(toy_project.path))) % 10**8}"
    toy_project.write(f"{name}.py", USER_MODULE)
    monkeypatch.syspath_prepend(str(toy_project.path))
    yield name
    sys.modules.pop(name, None)


def test_an_undecorated_class_is_configured_by_its_dotted_path(toy_project, user_module):
    toy_project.write(
        "m.gin",
        f"import toytasks\nrun.tasks = [@make_numbers]\n"
        f"make_numbers.n = 2\n{user_module}.Net.width = 32\nX = @{user_module}.Net()\n"
        "make_numbers.start = %X\n",
    )
    compose(["m.gin"])
    net = gin.query_parameter("%X")
    assert gin.get_configurable(f"{user_module}.Net")().width == 32
    assert net is not None


def test_a_function_and_a_call_are_configured_by_path(toy_project, user_module):
    toy_project.write(
        "m.gin",
        f"import toytasks\nrun.tasks = [@make_numbers]\n{user_module}.build.size = 7\n",
    )
    compose(["m.gin"])
    assert gin.get_configurable(f"{user_module}.build")() == ("plain", 7)


def test_an_unknown_parameter_of_a_dotted_class_gets_a_did_you_mean(toy_project, user_module):
    toy_project.write("m.gin", f"import toytasks\n{user_module}.Net.widht = 3\n")
    with pytest.raises(ConfigError) as info:
        compose(["m.gin"])
    assert str(info.value) == (
        f"m.gin:2: '{user_module}.Net' has no parameter 'widht' (did you mean 'width'?)"
    )


def test_an_unknown_attribute_gets_a_did_you_mean(toy_project, user_module):
    toy_project.write("m.gin", f"X = @{user_module}.Nett\n")
    with pytest.raises(ConfigError) as info:
        compose(["m.gin"])
    assert str(info.value) == (
        f"m.gin:1: '{user_module}' has no attribute 'Nett' (did you mean 'Net'?)"
    )


def test_a_module_that_fails_to_import_is_named_with_its_error(toy_project, monkeypatch):
    toy_project.write("broken_mod.py", "raise RuntimeError('no GPU here')\n")
    monkeypatch.syspath_prepend(str(toy_project.path))
    toy_project.write("m.gin", "X = @broken_mod.Thing\n")
    with pytest.raises(ConfigError) as info:
        compose(["m.gin"])
    message = str(info.value)
    assert message == "m.gin:1: cannot import module 'broken_mod': RuntimeError: no GPU here"
    assert "\n" not in message


def test_a_missing_dependency_of_a_module_is_named(toy_project, monkeypatch):
    toy_project.write("needs_dep.py", "import not_installed_anywhere\n")
    monkeypatch.syspath_prepend(str(toy_project.path))
    toy_project.write("m.gin", "X = @needs_dep.Thing\n")
    with pytest.raises(ConfigError, match="needs 'not_installed_anywhere', which is not installed"):
        compose(["m.gin"])
    sys.modules.pop("needs_dep", None)


def test_a_missing_dependency_that_an_extra_installs_names_the_extra(toy_project, monkeypatch):
    import importlib.util

    if importlib.util.find_spec("mlflow") is not None:
        pytest.skip("mlflow is installed")
    toy_project.write("needs_mlflow.py", "import mlflow\n")
    monkeypatch.syspath_prepend(str(toy_project.path))
    toy_project.write("m.gin", "X = @needs_mlflow.Thing\n")
    with pytest.raises(ConfigError, match=r"needs 'mlflow'.*pip install \"ginpipe-ml\[mlflow\]\""):
        compose(["m.gin"])
    sys.modules.pop("needs_mlflow", None)


def test_a_module_that_does_not_exist(toy_project):
    toy_project.write("m.gin", "X = @no_such_module_here.Thing\n")
    with pytest.raises(ConfigError, match="no module 'no_such_module_here'"):
        compose(["m.gin"])


def test_short_names_come_from_the_installed_tables():
    table = names.short_names()
    assert table["AdamW"] == "torch.optim.AdamW"
    assert table["Trainer"] == "pytorch_lightning.Trainer"
    assert table["LogisticRegression"] == "sklearn.linear_model.LogisticRegression"
    assert table["fit"] == "ginpipe.tasks.fit.fit"


def test_a_short_name_and_its_full_path_are_one_configurable(toy_project):
    toy_project.write(
        "m.gin",
        "import toytasks\nrun.tasks = [@make_numbers]\n"
        "SVC.C = 2.0\nsklearn.svm.SVC.kernel = 'linear'\n",
    )
    compose(["m.gin"])
    svc = gin.get_configurable("sklearn.svm.SVC")()
    assert (svc.C, svc.kernel) == (2.0, "linear")


def test_an_unknown_short_name_suggests_a_table_name(toy_project):
    toy_project.write("m.gin", "import toytasks\nfit_x.optimizer = @AdamWW\n")
    with pytest.raises(
        ConfigError, match=r"unknown configurable 'AdamWW' \(did you mean 'AdamW'\?\)"
    ):
        compose(["m.gin"])


def test_a_value_that_is_not_callable_is_refused(toy_project):
    toy_project.write("m.gin", "X = @math.pi\n")
    with pytest.raises(ConfigError, match=r"'math\.pi' is a float, not a class or function"):
        compose(["m.gin"])


def test_composing_imports_only_what_the_config_names(toy_project):
    """A torch-free config never imports torch (checked in a fresh interpreter)."""
    import subprocess

    from conftest import TOY_DIR

    probe = (
        f"import sys\nsys.path.insert(0, {str(TOY_DIR)!r})\n"
        "from ginpipe.config.compose import compose\n"
        "compose(['base.gin'])\nprint(sorted(m for m in ('torch', 'pytorch_lightning', "
        "'sklearn', 'torchmetrics') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=toy_project.path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_shipped_scikit_learn_pipeline_validates_without_torch(tmp_path):
    """`base models/logreg` computes nothing with torch, so validating it must not load it."""
    import subprocess

    probe = (
        "import sys\nfrom ginpipe.api import compose\ncompose(['base', 'models/logreg'])\n"
        "print(sorted(m for m in ('torch', 'pytorch_lightning', 'torchmetrics') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_composing_the_default_pipeline_loads_no_more_than_lightning_does(tmp_path):
    """The task modules import pandas, scikit-learn and the report's plotting when their
    tasks run: validating `base models/resnet` costs the Lightning import and little else."""
    import subprocess

    probe = (
        "import sys\nfrom ginpipe.api import compose\ncompose(['base', 'models/resnet'])\n"
        "print(sorted(m for m in ('pandas', 'sklearn', 'ginpipe.tasks.report') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
