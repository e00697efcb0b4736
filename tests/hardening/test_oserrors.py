"""Operating-system errors are one line naming the path and the remedy, with an exit code
per kind of remedy (4 no space, 5 not writable, 6 a path in the way), a ``run.json`` that
says what happened, and what was written stays resumable. Disk-full cases fill a real
(small tmpfs) file system; they are skipped where mounting is not allowed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from harden_helpers import assert_one_line_error, remount, tmpfs_fixture  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
FAST = [str(REPO / "configs" / n) for n in ("base.gin", "models/resnet.gin", "debug/fast.gin")]


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def test_root_is_a_file(toy_project, cli) -> None:
    toy_project.write("afile", "")
    result = cli("run", "base.gin", "--root", "afile", "--name", "x")
    assert result.exit_code == 6
    assert_one_line_error(result.output, "afile", "a file is in the way")


def test_name_is_an_existing_file(toy_project, cli) -> None:
    toy_project.write("experiments/proj/x", "")
    result = cli("run", "base.gin", "--name", "x")
    assert result.exit_code == 6
    assert_one_line_error(result.output, "experiments/proj/x", "--name")


def test_cache_folder_is_a_file(toy_project, cli) -> None:
    toy_project.write("experiments/.cache", "")
    result = cli("run", "base.gin", "--name", "x")
    assert result.exit_code == 6
    assert_one_line_error(result.output, "experiments/.cache")
    assert toy_project.calls() == []  # refused before any task ran
    assert not toy_project.run_dir("x").exists()


def test_a_300_character_name(toy_project, cli) -> None:
    result = cli("run", "base.gin", "--name", "n" * 300)
    assert result.exit_code == 6
    assert_one_line_error(result.output, "--name", "too long")
    assert toy_project.run_dirs() == []


def test_read_only_root_for_run_and_resume(toy_project, cli, tmpfs) -> None:
    root = tmpfs("4m")
    assert cli("run", "base.gin", "--root", root, "--name", "done").exit_code == 0
    remount(root, "ro")
    result = cli("run", "base.gin", "--root", root, "--name", "new")
    assert result.exit_code == 5
    assert_one_line_error(result.output, str(root), "read-only")
    # A completed run resumed as it is needs no write: it is left alone, read-only or not.
    assert cli("resume", root / "proj" / "done").exit_code == 0
    # Recomputing a task does need writes.
    result = cli("resume", root / "proj" / "done", "--rerun", "add_up")
    assert result.exit_code == 5
    assert_one_line_error(result.output, str(root / "proj" / "done"), "read-only")


def test_disk_full_during_a_cache_write(toy_project, cli, tmpfs) -> None:
    """numbers for n=300000 need ~2 MB as JSON: the run files fit in 1 MB, the entry not."""
    root = tmpfs("1m")
    big = ("--mod", "make_numbers.n=300000")
    result = cli("run", "base.gin", "--root", root, "--name", "x", *big)
    assert result.exit_code == 4
    assert_one_line_error(result.output, str(root / ".cache"), "no space left", "resume")
    run = record(root / "proj" / "x")
    assert run["status"] == "failed" and run["exit_code"] == 4
    assert "no space left" in run["error"]["message"]
    remount(root, "size=16m")
    assert cli("resume", root / "proj" / "x").exit_code == 0
    assert record(root / "proj" / "x")["status"] == "completed"


@pytest.mark.slow
def test_disk_full_during_a_checkpoint_write(tmp_path: Path, tmpfs) -> None:
    """A 64-wide ResNet checkpoint (~8 MB) does not fit beside the data (~2 MB) in 4 MB."""
    root = tmpfs("4m")

    def ginpipe(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ginpipe.cli", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )

    run_dir = root / "p" / "x"
    first = ginpipe(
        "run", *FAST, "--root", str(root), "--project", "p", "--name", "x",
        "--mod", "ResNet.width=64",
    )  # fmt: skip
    assert first.returncode == 4, first.stderr
    assert_one_line_error(first.stderr, "checkpoint", "no space left")
    run = record(run_dir)
    assert run["status"] == "failed" and "no space left" in run["error"]["message"]
    assert not [p for p in run_dir.rglob("*") if p.name.startswith(".tmp-")]
    remount(root, "size=64m")
    done = ginpipe("resume", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert record(run_dir)["status"] == "completed"


def test_exit_codes_are_documented() -> None:
    readme = (REPO / "README.md").read_text()
    line = next(line for line in readme.split("\n\n") if line.startswith("Exit codes:"))
    for code in ("4", "5", "6"):
        assert re.search(rf"`{code}`", line), code
