"""ginpipe: compose gin configs, run a pipeline of cached tasks, record every run.

The names below are the public API: what a task author and a notebook need. Module paths
under ``ginpipe`` are internal (docs/architecture.md); the standard task library reaches
the engine's plumbing through ``ginpipe.tasks.engine``. Importing this package stays light
(no torch, no Lightning, not even gin) so the CLI starts fast: each name is imported on
first use.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from ginpipe.base import moved

__version__ = "0.1.0"

moved.install()  # old module paths (ginpipe.runner, ...) warn and forward for one release

# name -> module that defines it
_EXPORTS = {
    # writing a task
    "task": "ginpipe.core.taskdef",
    "TaskView": "ginpipe.core.state",
    "RunContext": "ginpipe.core.state",
    # errors a task raises (each maps to an exit code)
    "GinpipeError": "ginpipe.base.errors",
    "ConfigError": "ginpipe.base.errors",
    "DataError": "ginpipe.base.errors",
    "CheckpointError": "ginpipe.base.errors",
    "Interrupted": "ginpipe.base.errors",
    # files a task writes into its run directory: temp file, fsync, os.replace
    "atomic_path": "ginpipe.base.atomic",
    "atomic_write_bytes": "ginpipe.base.atomic",
    "atomic_write_json": "ginpipe.base.atomic",
    "atomic_write_text": "ginpipe.base.atomic",
    # reading the config a task runs under
    "configured": "ginpipe.config.bindings",
    "bound_value": "ginpipe.config.bindings",
    "bound_class": "ginpipe.config.bindings",
    "is_bound": "ginpipe.config.bindings",
    "did_you_mean": "ginpipe.base.suggest",
    # limits on a task's parameters, checked before any task runs
    "constrain": "ginpipe.config.checks",
    "requires": "ginpipe.config.checks",
    "Constraint": "ginpipe.config.checks",
    "AtLeast": "ginpipe.config.checks",
    "GreaterThan": "ginpipe.config.checks",
    "Positive": "ginpipe.config.checks",
    "NonNegative": "ginpipe.config.checks",
    # running and using runs from Python
    "run": "ginpipe.api",
    "resume": "ginpipe.api",
    "compose": "ginpipe.api",
    "load_run": "ginpipe.inference.runview",
}

# Plumbing that was exported before 0.2 (the standard task library's needs): still found
# here for one release, with a warning; ``@task(pinned=True)`` replaces ``pin_inputs``.
_INTERNAL = {
    "path_error": "ginpipe.base.oserrors",
    "fsync_dir": "ginpipe.base.atomic",
    "file_sha256": "ginpipe.base.atomic",
    "is_temp": "ginpipe.base.atomic",
    "TMP_PREFIX": "ginpipe.base.atomic",
    "code_fingerprint": "ginpipe.core.fingerprint",
    "library_versions": "ginpipe.core.fingerprint",
    "selector_of": "ginpipe.config.bindings",
    "pin_inputs": "ginpipe.core.taskdef",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None and name in _INTERNAL:
        module = _INTERNAL[name]
        warnings.warn(
            f"ginpipe.{name} is internal now ({module}.{name}); it goes away in ginpipe 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(module), name)
    if module is None:
        raise AttributeError(f"module 'ginpipe' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
