"""Where a run came from: git commit and dirty flag, versions, host, command line."""

from __future__ import annotations

import importlib.metadata
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from ginpipe.core.fingerprint import library_versions

ENVIRONMENT_FILE = "environment.txt"


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def git_state(cwd: Path | None = None) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the repository holding ``cwd``; None outside git."""
    cwd = cwd or Path.cwd()
    root = _git(["rev-parse", "--show-toplevel"], cwd)
    if root is None:
        return None
    commit = (_git(["rev-parse", "HEAD"], cwd) or "").strip() or None
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd) or ""
    branch = (_git(["rev-parse", "--abbrev-ref", "HEAD"], cwd) or "").strip() or None
    return {"root": root.strip(), "commit": commit, "branch": branch, "dirty": bool(status)}


def git_diff(cwd: Path | None = None) -> str:
    """The uncommitted changes to tracked files (saved with a dirty run)."""
    return _git(["diff", "HEAD"], cwd or Path.cwd()) or ""


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "versions": library_versions(),
    }


def installed_distributions() -> str:
    """Every installed distribution as ``name==version`` lines, sorted (like ``pip freeze``):
    what a run needs to be repeated, kept in its directory (``environment.txt``)."""
    found = {}
    for dist in importlib.metadata.distributions():
        name, version = _name_and_version(dist)
        if name:
            found[name.lower()] = f"{name}=={version}"
    return "".join(f"{found[key]}\n" for key in sorted(found))


def _name_and_version(dist: importlib.metadata.Distribution) -> tuple[str | None, str | None]:
    """``Name`` and ``Version`` from the metadata's header lines only.

    ``dist.metadata`` parses the whole file as an e-mail message, long description
    included: ten times slower over a large environment, paid before every run.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name = version = None
    for line in text.splitlines():
        if not line:
            break  # the headers end at the first blank line
        if line.startswith("Name:"):
            name = line[len("Name:") :].strip()
        elif line.startswith("Version:"):
            version = line[len("Version:") :].strip()
    return name, version
