"""One module, one identity. The repository's top-level ``tasks/`` is an example of a user's
own tasks (``tasks/__init__.py``, ``tasks/example.gin``), not a second name for
``ginpipe.tasks``: were it one (it was a symlink), ``python -m pytest`` from the root, which
puts the root on ``sys.path``, could import ``tasks.sklearn_models`` beside
``ginpipe.tasks.sklearn_models``, and gin refused ``fit_sklearn`` as an ambiguous selector."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GINPIPE = Path(sys.executable).parent / "ginpipe"

# Run with ``python -c`` from the root: the root is on sys.path as ``python -m pytest`` has it.
PROBE = """
import json, os, sys
import gin
from ginpipe.base.errors import ConfigError
from ginpipe.config.compose import compose, compose_text

# A config naming the library by its old top-level name: refused (tests/config/test_config.py),
# else it would register fit_sklearn a second time, as tasks.sklearn_models.fit_sklearn.
try:
    compose_text("import tasks.sklearn_models\\n", "old.gin")
    shadow = sys.modules["tasks.sklearn_models"].__file__
except ConfigError:
    shadow = None
gin.clear_config()
compose(["base", "models/logreg"])  # when shadowed, gin took tasks.sklearn_models.fit_sklearn
fit_sklearn = [c.selector for c in gin.config._REGISTRY.get_all_matches("fit_sklearn")]
gin.clear_config()
if os.path.exists("tasks/example.gin"):
    compose(["base", "models/logreg", "tasks/example.gin"])
import tasks
objects = {}
for module in list(sys.modules.values()):
    path = getattr(module, "__file__", None)
    ours = tuple(os.path.join(os.getcwd(), top) + os.sep for top in ("ginpipe", "tasks"))
    if path and os.path.realpath(path).startswith(ours):
        objects.setdefault(os.path.realpath(path), set()).add(id(module))
print(json.dumps({
    "shadow": shadow,
    "tasks": os.path.realpath(tasks.__file__),
    "fit_sklearn": fit_sklearn,
    "count_rows": [c.selector for c in gin.config._REGISTRY.get_all_matches("count_rows")],
    "twice": sorted(path for path, ids in objects.items() if len(ids) > 1),
}))
"""


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and "GINPIPE" not in k}


def test_the_top_level_tasks_folder_shares_no_module_with_the_library() -> None:
    assert not (REPO / "tasks").is_symlink() and (REPO / "tasks").is_dir()
    library = {p.stem for p in (REPO / "ginpipe" / "tasks").iterdir()}
    example = {p.stem for p in (REPO / "tasks").iterdir()}
    assert example & library <= {"__init__", "__pycache__"}


def test_a_config_from_the_root_has_one_selector_per_task() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=clean_env(), capture_output=True, text=True
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    assert seen["shadow"] is None
    assert seen["tasks"] == str(REPO / "tasks" / "__init__.py")
    assert seen["fit_sklearn"] == ["ginpipe.tasks.sklearn_models.fit_sklearn"]
    assert seen["count_rows"] == ["tasks.count_rows"]
    assert seen["twice"] == []


@pytest.mark.slow
@pytest.mark.skipif(not GINPIPE.exists(), reason="console script")
def test_the_example_tasks_run_from_the_root_through_the_console_script(tmp_path: Path) -> None:
    command = [str(GINPIPE), "run", "base", "models/logreg", "tasks/example.gin"]
    command += ["--root", str(tmp_path), "--project", "p", "--name", "ex"]
    result = subprocess.run(command, cwd=REPO, env=clean_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "p" / "ex" / "run.json").read_text())
    assert record["status"] == "completed"
    names = [t["name"] for t in record["tasks"]]
    assert "count_rows" in names and "fit_sklearn" in names
    assert record["metrics"]["accuracy"] > 0.9
    assert (
        "count_rows.splits = ('train', 'test')"
        in (tmp_path / "p" / "ex" / "resolved.gin").read_text()
    )
