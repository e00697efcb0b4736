"""What a run is asked to do (``RunRequest``) and its config, composed and checked (``Prepared``).

Apart from the runner so that the rank roles (``ginpipe/runs/roles.py``) can read both
without importing the runner that uses them. ``ginpipe.runs.runner`` exports both names.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ginpipe.config.compose import Composition
from ginpipe.config.settings import RunSettings
from ginpipe.core.steps import Step


@dataclass
class RunRequest:
    files: list[str] = field(default_factory=list)
    mods: list[str] = field(default_factory=list)
    name: str | None = None
    project: str | None = None
    # A folder of runs inside the project (a sweep's trials): ROOT/PROJECT/GROUP/NAME.
    group: str | None = None
    root: Path = Path("experiments")
    resume: Path | None = None
    dry_run: bool = False
    use_cache: bool = True
    rerun: list[str] = field(default_factory=list)
    # A partial run (--from, --until, --only; inputs of an earlier run with --inputs-from).
    start: list[str] = field(default_factory=list)
    stop: list[str] = field(default_factory=list)
    only: list[str] = field(default_factory=list)
    inputs_from: Path | None = None
    # Tasks at once (``ginpipe/core/schedule.py``); 1 runs them one after another.
    jobs: int = 1
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    # When the run was asked for (time.monotonic): its duration counts composing the config and
    # importing what it names, not only the tasks.
    requested_at: float = field(default_factory=time.monotonic)
    # Objects the caller hands the run's tasks (``RunContext.attached``): a sweep's trial.
    attached: tuple[Any, ...] = ()

    @property
    def partial(self) -> bool:
        return bool(self.start or self.stop or self.only or self.inputs_from)


@dataclass
class Prepared:
    composition: Composition
    settings: RunSettings
    steps: list[Step]
