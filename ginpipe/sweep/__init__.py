"""Sweeps and hyperparameter search: Optuna studies whose trials are ordinary ginpipe runs.

Above the runner, like ``ginpipe.inference``: it runs trials through ``ginpipe.api`` and
reads their run directories; the engine never imports it. Optuna and submitit are the
optional extra ``ginpipe-ml[sweep]``; ``require`` says so in one line when they are missing.
"""

from __future__ import annotations

import importlib.util

from ginpipe.base.errors import ConfigError
from ginpipe.base.install import install_line

INSTALL = install_line("sweep")


def require(*modules: str) -> None:
    """Refuse, before any work, when a module of the sweep extra is not installed."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"sweeps need {module}, which is not installed: {INSTALL}")
