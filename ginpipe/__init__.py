"""ginpipe: compose gin configs, run a pipeline of cached tasks, record every run.

The names below are the public API for task authors (the standard task library uses
only these). Importing this package stays light (no torch, no Lightning, not even gin)
so the CLI starts fast: each name is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    "task": "ginpipe.taskdef",
    "TaskView": "ginpipe.state",
    "RunContext": "ginpipe.state",
    "GinpipeError": "ginpipe.errors",
    "ConfigError": "ginpipe.errors",
    "DataError": "ginpipe.errors",
    "CheckpointError": "ginpipe.errors",
    "Interrupted": "ginpipe.errors",
    "path_error": "ginpipe.oserrors",
    "atomic_path": "ginpipe.atomic",
    "atomic_write_bytes": "ginpipe.atomic",
    "atomic_write_json": "ginpipe.atomic",
    "atomic_write_text": "ginpipe.atomic",
    "fsync_dir": "ginpipe.atomic",
    "file_sha256": "ginpipe.atomic",
    "is_temp": "ginpipe.atomic",
    "TMP_PREFIX": "ginpipe.atomic",
    "code_fingerprint": "ginpipe.fingerprint",
    "library_versions": "ginpipe.fingerprint",
    "configured": "ginpipe.bindings",
    "bound_value": "ginpipe.bindings",
    "bound_class": "ginpipe.bindings",
    "is_bound": "ginpipe.bindings",
    "selector_of": "ginpipe.bindings",
    "did_you_mean": "ginpipe.suggest",
    "constrain": "ginpipe.checks",
    "requires": "ginpipe.checks",
    "Constraint": "ginpipe.checks",
    "AtLeast": "ginpipe.checks",
    "GreaterThan": "ginpipe.checks",
    "Positive": "ginpipe.checks",
    "NonNegative": "ginpipe.checks",
    "run": "ginpipe.api",
    "resume": "ginpipe.api",
    "compose": "ginpipe.api",
    "load_run": "ginpipe.inference.runview",
    "pin_inputs": "ginpipe.continuation",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ginpipe' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
