"""``ginpipe sweep`` as a user types it: the installed console script, in a folder of their
own with their own task module, no PYTHONPATH; and the commands that must stay light."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from ginpipe.sweep import definition
from ginpipe.sweep.study import reading_storage

GINPIPE = Path(sys.executable).parent / "ginpipe"

USER_TASKS = """
import time

from ginpipe import task


@task(writes=("numbers",))
def numbers(state, *, n: int = 3):
    return {"numbers": list(range(n))}


@task(reads=("numbers",), writes=("metrics",), cache=False)
def score(state, *, weight: float = 1.0):
    time.sleep(0.5)
    return {"metrics": {"accuracy": weight * sum(state["numbers"]) / 100}}
"""

USER_CONFIG = """
import mytasks
run.tasks = [@numbers, @score]
"""


def user_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if k != "PYTHONPATH" and not k.startswith(("GINPIPE_", "SLURM_"))
    }


def ginpipe(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(GINPIPE), *args], cwd=folder, env=user_env(), capture_output=True, text=True
    )


@pytest.mark.slow
@pytest.mark.skipif(not GINPIPE.is_file(), reason="the console script is not installed")
def test_a_sweep_through_the_console_script_in_a_users_folder(tmp_path: Path) -> None:
    folder = tmp_path / "myproject"
    folder.mkdir()
    (folder / "mytasks.py").write_text(USER_TASKS)
    (folder / "my.gin").write_text(USER_CONFIG)
    result = ginpipe(
        folder,
        "sweep",
        "my.gin",
        "-m",
        "numbers.n=2,3,4,5",
        "-m",
        "score.weight=1.0",
        "--jobs",
        "2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [sweep] = sorted((folder / "experiments" / "myproject").glob("sweep-*"))
    assert f"sweep directory: experiments/myproject/{sweep.name}" in result.stdout
    data = json.loads((sweep / "sweep.json").read_text())
    assert data["results"]["best"]["params"] == {"numbers.n": "5"}
    assert data["results"]["counts"]["complete"] == 4
    # two workers: some trial started before another one ended
    found = definition.load(sweep)
    study = optuna.load_study(study_name=found.study_name, storage=reading_storage(found))
    trials = study.get_trials()
    spans = sorted((t.datetime_start, t.datetime_complete) for t in trials)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))
    table = ginpipe(folder, "runs", "--sweep", str(sweep.relative_to(folder)))
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["TRIAL", "STATE", "numbers.n", "ACCURACY", "DURATION"]
    assert [line.split()[2] for line in lines[1:5]] == ["5", "4", "3", "2"]
    refused = ginpipe(folder, "run", "my.gin", "-m", "numbers.n=2,3")
    assert refused.returncode == 2
    assert "use `ginpipe sweep`" in refused.stderr


def test_help_imports_neither_torch_nor_optuna() -> None:
    code = (
        "import sys\nfrom ginpipe.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'optuna', 'submitit') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_without_the_sweep_extra_the_command_says_what_to_install(
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a)
    )
    monkeypatch.chdir(tmp_path)
    result = cli("sweep", "base", "-m", "LR=1,2")
    assert result.exit_code == 2
    assert result.output.strip() == (
        'error: sweeps need optuna, which is not installed: pip install "ginpipe-ml[sweep]"'
    )
    assert not (tmp_path / "experiments").exists()
