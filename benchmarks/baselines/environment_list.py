"""Baseline of benchmarks/environment_lock.py: the plain ``name==version`` list every run
wrote before the environment lock (``ginpipe/runs/provenance.py`` until issue 24)."""

from __future__ import annotations

import importlib.metadata


def installed_distributions() -> str:
    found = {}
    for dist in importlib.metadata.distributions():
        name, version = _name_and_version(dist)
        if name:
            found[name.lower()] = f"{name}=={version}"
    return "".join(f"{found[key]}\n" for key in sorted(found))


def _name_and_version(dist: importlib.metadata.Distribution) -> tuple[str | None, str | None]:
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name = version = None
    for line in text.splitlines():
        if not line:
            break
        if line.startswith("Name:"):
            name = line[len("Name:") :].strip()
        elif line.startswith("Version:"):
            version = line[len("Version:") :].strip()
    return name, version
