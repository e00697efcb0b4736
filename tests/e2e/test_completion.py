"""Shell completion of run directories, through the real completion protocol.

``ginpipe resume <TAB>`` runs the console script with ``_GINPIPE_COMPLETE=complete_bash``
and the words typed so far; it prints one candidate per line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("ginpipe") is None, reason="console script")


def complete(folder: Path, words: str) -> list[str]:
    env = {
        **os.environ,
        "_GINPIPE_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    result = subprocess.run(
        ["ginpipe"], cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("completion")
    for name in ("alpha", "beta"):
        run = root / "experiments" / "proj" / name
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({"status": "completed"}))
    (root / "experiments" / "proj" / "not-a-run").mkdir()
    return root


RUNS = ["experiments/proj/alpha", "experiments/proj/beta"]


@pytest.mark.parametrize(
    "words",
    [
        "ginpipe resume ",
        "ginpipe predict ",
        "ginpipe export ",
        "ginpipe demo ",
        "ginpipe diff ",
        "ginpipe diff experiments/proj/alpha ",
    ],
)
def test_every_command_that_takes_a_run_completes_run_directories(folder: Path, words: str) -> None:
    assert complete(folder, words) == RUNS


def test_completion_narrows_to_what_was_typed(folder: Path) -> None:
    assert complete(folder, "ginpipe predict experiments/proj/b") == ["experiments/proj/beta"]
