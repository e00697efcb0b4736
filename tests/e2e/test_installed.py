"""ginpipe as a user has it: built as a wheel, installed into a fresh virtual environment,
used from a folder of their own through the console script, with no PYTHONPATH.

The user's project has its own ``tasks.py`` (the name the standard library used to take),
its own undecorated model class, and its own config that names both by import path.
The new environment reuses this environment's third-party packages (torch and friends)
through a ``.pth`` file, so nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# a wheel built and installed into a fresh virtual environment
pytestmark = pytest.mark.heavy

USER_TASKS = '''
from ginpipe import task


@task(reads=("data",), writes=("row_counts",))
def count_rows(state):
    """The user's own task, in a module named like the old standard library."""
    return {"row_counts": {s: len(state["data"][s]["y"]) for s in ("train", "val", "test")}}
'''

USER_MODELS = '''
from torch import nn


class TinyNet(nn.Module):
    """An undecorated model class, named in the config by its dotted path."""

    def __init__(self, num_classes, input_shape, hidden=32):
        super().__init__()
        size = 1
        for dim in input_shape:
            size *= dim
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(size, hidden), nn.ReLU(),
                                  nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.body(x)
'''

USER_CONFIG = """
import tasks
run.tasks = [@seed_everything, @load_sklearn, @split_dataset, @make_features,
             @count_rows, @fit, @evaluate]
fit.model = @mymodels.TinyNet
mymodels.TinyNet.hidden = 16
Trainer.max_epochs = 5
OneCycleLR.max_lr = 0.05
"""

TORCH_FREE_TASKS = """
import gin
from ginpipe import task


@task(writes=("numbers",))
def numbers(state, *, n: int = 3):
    return {"numbers": list(range(n))}
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with ginpipe installed from a freshly built wheel."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(work / "dist"), str(REPO)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (wheel,) = (work / "dist").glob("ginpipe_ml-*.whl")
    env = work / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    python = env / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # Third-party packages come from this environment; ginpipe itself only from the wheel.
    (Path(site) / "reuse_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return env


def run_in(env: Path, cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GINPIPE_RUN_DIR")}
    return subprocess.run(
        [str(env / "bin" / args[0]), *args[1:]],
        cwd=cwd, env=clean, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_the_wheel_installs_the_library_under_ginpipe_and_the_configs(
    installed: Path, tmp_path: Path
) -> None:
    found = run_in(
        installed, tmp_path, "python", "-c",
        "import ginpipe, ginpipe.tasks, importlib.util; "
        "print(ginpipe.__file__); print(importlib.util.find_spec('tasks'))",
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    module_file, tasks_spec = found.stdout.split()[:2]
    assert str(installed) in module_file  # not the source checkout
    assert tasks_spec == "None"  # no top-level `tasks` package is installed
    listed = run_in(installed, tmp_path, "ginpipe", "configs")
    assert listed.returncode == 0, listed.stderr
    assert "base " in listed.stdout and "models/resnet" in listed.stdout
    copied = run_in(installed, tmp_path, "ginpipe", "cp", "models/resnet.gin", "my/resnet.gin")
    assert copied.returncode == 0, copied.stderr
    assert (tmp_path / "my" / "resnet.gin").read_text().startswith("# A small ResNet")
    # The README's command line resolves configs/... to the shipped files from any folder.
    shown = run_in(installed, tmp_path, "ginpipe", "config", "configs/base.gin", "my/resnet.gin")
    assert shown.returncode == 0, shown.stderr
    assert "ResNet.width = 32" in shown.stdout


def test_a_torch_free_project_validates_without_importing_torch(
    installed: Path, tmp_path: Path
) -> None:
    (tmp_path / "mine.py").write_text(TORCH_FREE_TASKS)
    (tmp_path / "my.gin").write_text("import mine\nrun.tasks = [@numbers]\nnumbers.n = 5\n")
    probe = (
        "import sys\nfrom ginpipe.cli import main\n"
        "try:\n    main(['config', 'my.gin'])\nexcept SystemExit as e:\n    code = e.code\n"
        "print('torch' in sys.modules, code)"
    )
    result = run_in(installed, tmp_path, "python", "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False 0"


@pytest.mark.slow
def test_a_user_project_with_its_own_tasks_and_model_runs_from_its_folder(
    installed: Path, tmp_path: Path
) -> None:
    project = tmp_path / "myproject"
    project.mkdir()
    (project / "tasks.py").write_text(USER_TASKS)
    (project / "mymodels.py").write_text(USER_MODELS)
    (project / "my.gin").write_text(USER_CONFIG)
    result = run_in(
        installed, project, "ginpipe", "run", "base", "models/resnet", "my.gin", "--name", "e2e"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = project / "experiments" / "myproject" / "e2e"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed"
    assert [t["name"] for t in record["tasks"]][4] == "count_rows"
    assert record["metrics"]["accuracy"] > 0.5
    resolved = (run_dir / "resolved.gin").read_text()
    assert "fit.model = @mymodels.TinyNet" in resolved
    assert "TinyNet.hidden = 16" in resolved
