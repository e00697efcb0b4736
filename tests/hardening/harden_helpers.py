"""Helpers of the hardening tests (a unique module name: ``conftest`` is taken by other
test folders on ``sys.path``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


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
