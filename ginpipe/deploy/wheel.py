"""ginpipe as the run had it, for an image: a wheel of its checkout or the wheel it came from.

The run's lock records how ginpipe was installed (``ginpipe/runs/provenance.py``). A
checkout is built with ``pip wheel --no-deps`` from a copy of the files its digest covers,
and that copy's digest must be the recorded one: a checkout edited since the run would
give an image running other code, so it is refused unless asked for (``--allow-changed``).
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ginpipe.base.atomic import file_sha256
from ginpipe.base.errors import ConfigError
from ginpipe.base.install import DISTRIBUTION
from ginpipe.runs.provenance import source_digest, source_files

SERVE_EXTRA = "serve"
_DOCS = ("README.md",)  # named by pyproject.toml's readme: the build needs it
_NO_ISOLATION_SETUPTOOLS = (70, 1)  # builds wheels without the separate wheel package


@dataclass(frozen=True)
class GinpipeInstall:
    """What the image installs for ginpipe: a wheel in the context, or a release."""

    wheel: Path | None  # inside the context's wheels/ folder
    spec: str  # what install.sh passes to pip
    note: str  # one phrase for the summary and context.json
    changed: bool  # built from a checkout that differs from the run's


def ginpipe_for_image(origin: dict[str, Any], wheels: Path, allow_changed: bool) -> GinpipeInstall:
    """Put ginpipe's wheel in ``wheels`` (or name its release) as the lock records it."""
    kind = origin.get("kind")
    version = str(origin.get("version"))
    if kind == "checkout":
        return _from_checkout(origin, wheels, allow_changed)
    if kind == "wheel":
        return _copied_wheel(origin, wheels)
    if kind == "index":
        extra = f"[{SERVE_EXTRA}]" if _installed_has_serve_extra() else ""
        spec = f"{DISTRIBUTION}{extra}=={version}"
        return GinpipeInstall(None, spec, f"release {version} from the index", False)
    raise ConfigError(
        f"ginpipe {version} was installed from {origin.get('url')}, which an image cannot "
        "install again: install ginpipe from a wheel, a checkout or the index, then rerun"
    )


def _from_checkout(origin: dict[str, Any], wheels: Path, allow_changed: bool) -> GinpipeInstall:
    root = Path(str(origin["path"]))
    if not (root / "pyproject.toml").is_file():
        raise ConfigError(f"ginpipe's checkout {root}, which the run used, is gone")
    with tempfile.TemporaryDirectory(prefix="ginpipe-wheel-") as tmp:
        source = Path(tmp) / "src"
        for path in [*source_files(root), *(root / name for name in _DOCS)]:
            if path.is_file():
                target = source / path.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
        changed = source_digest(source) != origin.get("source_sha256")
        if changed and not allow_changed:
            raise ConfigError(
                f"ginpipe's source in {root} changed since the run (which ran "
                f"{_commit(origin)}): check out what the run used, or pass --allow-changed "
                "to build from the source as it is now"
            )
        wheel = _build(source, wheels)
    extra = f"[{SERVE_EXTRA}]" if _has_serve_extra(wheel) else ""
    state = "changed since the run" if changed else _commit(origin)
    note = f"wheel built from the checkout {root} ({state})"
    return GinpipeInstall(wheel, f"wheels/{wheel.name}{extra}", note, changed)


def _commit(origin: dict[str, Any]) -> str:
    commit = str(origin.get("commit") or "no git commit")[:12]
    return f"{commit}, dirty" if origin.get("dirty") else commit


def _build(source: Path, wheels: Path) -> Path:
    """``pip wheel --no-deps`` of ``source`` into ``wheels``, without build isolation when
    this environment's setuptools can build it (no index needed)."""
    wheels.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels)]
    if _setuptools_builds_wheels():
        command.append("--no-build-isolation")
    done = subprocess.run([*command, str(source)], capture_output=True, text=True, check=False)
    built = sorted(wheels.glob("ginpipe_ml-*.whl"))
    if done.returncode != 0 or not built:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit code {done.returncode}"
        raise ConfigError(f"building ginpipe's wheel failed: {reason}")
    return built[-1]


def _setuptools_builds_wheels() -> bool:
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return False
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    return parts >= _NO_ISOLATION_SETUPTOOLS


def _copied_wheel(origin: dict[str, Any], wheels: Path) -> GinpipeInstall:
    path = Path(unquote(urlparse(str(origin["url"])).path))
    if not path.is_file():
        raise ConfigError(f"the wheel ginpipe was installed from is gone: {path}")
    expected = origin.get("sha256")
    if expected and file_sha256(path) != expected:
        raise ConfigError(f"the wheel ginpipe was installed from changed since: {path}")
    wheels.mkdir(parents=True, exist_ok=True)
    wheel = wheels / path.name
    shutil.copy2(path, wheel)
    extra = f"[{SERVE_EXTRA}]" if _has_serve_extra(wheel) else ""
    return GinpipeInstall(wheel, f"wheels/{wheel.name}{extra}", f"the wheel {path}", False)


def _has_serve_extra(wheel: Path) -> bool:
    """Whether the wheel's metadata offers the serving extra."""
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(names[0]).decode() if names else ""
    return _offers_serve(text)


def _installed_has_serve_extra() -> bool:
    try:
        text = importlib.metadata.distribution(DISTRIBUTION).read_text("METADATA") or ""
    except importlib.metadata.PackageNotFoundError:
        return False
    return _offers_serve(text)


def _offers_serve(metadata: str) -> bool:
    return any(
        line.split(":", 1)[1].strip() == SERVE_EXTRA
        for line in metadata.splitlines()
        if line.startswith("Provides-Extra:")
    )
