"""The ``run`` configurable: the pipeline as the config states it (``run.tasks = [...]``).

It lives apart from the pipeline so that composing a config can register it without
importing the machinery that runs tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gin

RUN = "ginpipe.run"


@dataclass(frozen=True)
class RunSettings:
    """What ``run`` binds, read once: the runner, sweeps and inference read named fields,
    which a type checker follows and a typo cannot miss."""

    tasks: list[Any]
    observers: list[Any]
    main_metric: str
    report_key: str


@gin.configurable("run", module="ginpipe")
def run_settings(
    tasks: Sequence[Any] = gin.REQUIRED,
    observers: Sequence[Any] = (),
    main_metric: str = "accuracy",
    report_key: str = "metrics",
) -> RunSettings:
    """The pipeline as the config states it.

    Args:
        tasks: task references in order, e.g. ``[@seed_everything, @load_sklearn, ...]``.
        observers: objects receiving run/task events (notifiers, trackers).
        main_metric: the metric ``ginpipe runs`` shows.
        report_key: the state key whose dict of numbers is copied into ``run.json``.
    """
    return RunSettings(
        tasks=list(tasks),
        observers=list(observers),
        main_metric=main_metric,
        report_key=report_key,
    )
