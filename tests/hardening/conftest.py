"""Fixtures for the hardening tests: small file systems to fill or make read-only, and a
check that a command failed with one line."""

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


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
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
