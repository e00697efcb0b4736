"""Helpers of the hardening tests (a unique module name: ``conftest`` is taken by other
test folders on ``sys.path``)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def _can_mount(path: Path) -> str | None:
    """None if this process may mount a tmpfs at ``path``, else why not."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return f"cannot mount a tmpfs here: {done.stderr.strip()}"
    subprocess.run(["umount", str(path)], check=True)
    return None


@pytest.fixture(name="tmpfs")
def tmpfs_fixture(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``tmpfs(size="1m")`` mounts a small, fresh file system and returns its folder;
    ``remount(path, "ro")`` changes its options. Skips where mounting is not allowed."""
    mounted: list[Path] = []

    def mount(size: str = "1m") -> Path:
        path = tmp_path / f"fs-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        reason = _can_mount(path)
        if reason:
            pytest.skip(reason)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True
        )
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def assert_one_line_error(output: str, *needles: str) -> str:
    """The command said exactly one ``error:`` line, no traceback; it contains needles."""
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def snapshot(root: Path) -> dict[str, tuple[int, int, bool]]:
    """Every path under ``root`` (links not followed): size, mtime, is-link."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = Path(folder) / name
            info = path.lstat()
            found[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns, path.is_symlink())
    return found
