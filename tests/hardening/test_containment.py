"""Security and containment: run files are never followed through symbolic links,
read-only commands write nothing, and a run writes only inside ``ROOT/PROJECT/NAME`` and
``ROOT/.cache`` (checkpoints included: a stored path never leads outside the run)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harden_helpers import assert_one_line_error, snapshot

REPO = Path(__file__).resolve().parents[2]
FAST = [str(REPO / "configs" / n) for n in ("base.gin", "models/resnet.gin", "debug/fast.gin")]


def mark_running(run_dir: Path) -> None:
    """What a run killed by SIGKILL leaves: run.json still says running."""
    record = json.loads((run_dir / "run.json").read_text())
    record["status"] = "running"
    (run_dir / "run.json").write_text(json.dumps(record))


def test_runs_probes_the_lock_without_writing_through_a_symlink(toy_project, cli) -> None:
    assert cli("run", "base.gin", "--name", "a").exit_code == 0
    run_dir = toy_project.run_dir("a")
    mark_running(run_dir)
    victim = toy_project.path / "precious.txt"
    victim.write_text("keep me\n")
    (run_dir / ".lock").unlink()
    (run_dir / ".lock").symlink_to(victim)
    result = cli("runs")
    assert result.exit_code == 0
    assert "stopped" in result.output
    assert victim.read_text() == "keep me\n"


def test_read_only_commands_create_write_or_truncate_nothing(toy_project, cli) -> None:
    assert cli("run", "base.gin", "--name", "a").exit_code == 0
    assert cli("run", "base.gin", "--name", "b", "--mod", "add_up.scale=2.0").exit_code == 0
    for name in ("a", "b"):
        mark_running(toy_project.run_dir(name))
    (toy_project.run_dir("a") / ".lock").unlink()  # runs must not create it either
    (toy_project.run_dir("b") / ".lock").write_text("pid 1 on elsewhere\n")
    before = snapshot(toy_project.root)
    for args in (
        ["runs"],
        ["runs", "--where", "add_up.scale=2.0"],
        ["diff", toy_project.run_dir("a"), toy_project.run_dir("b")],
        ["cache", "ls"],
    ):
        assert cli(*args).exit_code == 0, args
    assert snapshot(toy_project.root) == before


@pytest.mark.parametrize("name", [".lock", "run.log", "config.gin", "logs"])
def test_a_symlinked_run_file_is_refused_and_its_target_untouched(
    toy_project, cli, name: str
) -> None:
    assert cli("run", "base.gin", "--name", "a").exit_code == 0
    run_dir = toy_project.run_dir("a")
    victim = toy_project.path / "victim"
    if name == "logs":
        victim.mkdir()
    else:
        victim.write_text("keep me\n")
        (run_dir / name).unlink()
    (run_dir / name).symlink_to(victim)
    before = snapshot(toy_project.path / "victim") if victim.is_dir() else victim.read_text()
    result = cli("run", "base.gin", "--name", "a")
    assert result.exit_code == 2
    assert_one_line_error(result.output, f"experiments/proj/a/{name}", "symbolic link")
    after = snapshot(victim) if victim.is_dir() else victim.read_text()
    assert after == before


@pytest.mark.parametrize(
    "option",
    [
        ["--project", "../../x"],
        ["--project", ".."],
        ["--project", "a/b"],
        ["--name", "../escaped"],
        ["--name", ".."],
    ],
)
def test_a_project_or_name_that_leaves_the_root_is_refused(
    toy_project, cli, tmp_path: Path, option: list[str]
) -> None:
    before = snapshot(tmp_path)
    result = cli("run", "base.gin", "--root", "experiments", *option)
    assert result.exit_code == 2
    assert_one_line_error(result.output, option[0], "plain folder name")
    assert snapshot(tmp_path) == before  # no run directory, no cache, no calls


def test_a_run_writes_only_in_its_directory_and_the_cache(toy_project, cli, tmp_path) -> None:
    before = set(snapshot(tmp_path))
    assert cli("run", "base.gin", "--name", "a", "--project", "p").exit_code == 0
    created = set(snapshot(tmp_path)) - before - {"proj/experiments", "proj/experiments/p"}
    # calls.log is the toy tasks' own record of their calls (tests/toy/toytasks.py)
    allowed = ("proj/experiments/p/a", "proj/experiments/.cache", "proj/calls.log")
    assert created and all(path.startswith(allowed) for path in created), sorted(created)


@pytest.mark.slow
def test_a_copied_run_uses_its_own_checkpoints(tmp_path: Path) -> None:
    """A checkpoint stores absolute paths of the best checkpoints; a copy of the run whose
    original is gone must use the copy's files (and never read or touch the original)."""

    def ginpipe(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ginpipe.cli", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )

    first = ginpipe("run", *FAST, "--root", "exp", "--project", "p", "--name", "orig")
    assert first.returncode == 0, first.stderr
    original = tmp_path / "exp" / "p" / "orig"
    copy = tmp_path / "exp" / "p" / "copy"
    shutil.copytree(original, copy)
    shutil.rmtree(original / "checkpoints")
    (original / "checkpoints").mkdir()  # an empty original: nothing there to find or change
    done = ginpipe("resume", str(copy), "--rerun", "fit")
    assert done.returncode == 0, done.stderr
    assert list((original / "checkpoints").iterdir()) == []
    assert str(original) not in done.stderr
    assert json.loads((copy / "run.json").read_text())["status"] == "completed"
