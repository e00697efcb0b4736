"""``sweep.json``: everything a sweep is, written when it is created, so ``--resume DIR``
needs no other argument; the results (best trial, per-trial metric) are added as trials end.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ginpipe.base.atomic import atomic_write_json
from ginpipe.base.errors import ConfigError
from ginpipe.base.oserrors import check_component
from ginpipe.runs.rundir import GROUP_FILE, check_contained, now_iso
from ginpipe.sweep.space import Param, Space

SWEEP_FILE = GROUP_FILE
JOURNAL = "study.journal"
VERSION = 1


@dataclass
class Sweep:
    """A sweep's definition (what ``sweep.json`` holds besides the results)."""

    dir: Path
    space: Space
    trials: int
    sampler: str = "tpe"
    seed: int = 0
    pruner: str = "median"
    metric: str = "accuracy"
    direction: str = "maximize"
    jobs: int = 1
    launcher: str = "local"
    storage: str | None = None
    max_failure_rate: float = 0.5
    use_cache: bool = True  # False: every trial recomputes every task (sweep --no-cache)
    prune: bool = False  # trials train with the pruning callback (the pipeline has fit)
    own_process: bool = False  # each trial is its own process (it trains on several devices)
    slurm: dict[str, Any] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    cwd: str = ""
    created: str = ""
    # Unique per sweep, so sweeps can share one database (--storage); fixed at creation, so
    # a moved or renamed sweep folder still finds its study.
    study_name: str = ""

    def __post_init__(self) -> None:
        if not self.study_name:
            self.study_name = f"{self.project}/{self.dir.name}"

    @property
    def root(self) -> Path:
        return self.dir.parent.parent

    @property
    def project(self) -> str:
        return self.dir.parent.name

    @property
    def storage_url(self) -> str:
        return self.storage or str(self.dir / JOURNAL)

    def trial_dir(self, number: int) -> Path:
        return self.dir / trial_name(number)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "created": self.created or now_iso(),
            "argv": self.argv,
            "cwd": self.cwd,
            "configs": self.space.configs,
            "fixed": self.space.fixed,
            "params": [p.to_json() for p in self.space.params],
            "trials": self.trials,
            "sampler": {"name": self.sampler, "seed": self.seed},
            "pruner": self.pruner,
            "metric": self.metric,
            "direction": self.direction,
            "jobs": self.jobs,
            "launcher": self.launcher,
            "storage": self.storage,
            "study_name": self.study_name,
            "max_failure_rate": self.max_failure_rate,
            "use_cache": self.use_cache,
            "prune": self.prune,
            "own_process": self.own_process,
            "slurm": self.slurm,
        }

    def save(self, results: dict[str, Any] | None = None) -> None:
        data = self.to_json()
        if results is None and (self.dir / SWEEP_FILE).is_file():
            results = read_json(self.dir).get("results")
        if results is not None:
            data["results"] = results
        atomic_write_json(self.dir / SWEEP_FILE, data)


def trial_name(number: int) -> str:
    return f"trial-{number:04d}"


def new_sweep_dir(root: Path, project: str) -> Path:
    """``ROOT/PROJECT/sweep-YYYYmmdd-HHMMSS`` (a suffix when that second is taken)."""
    check_component(project, "--project")
    base = root / project
    check_contained(root, base)
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        path = base / (f"sweep-{stamp}" + (f"-{attempt}" if attempt else ""))
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise ConfigError(f"cannot make a new sweep folder in {base}")


def read_json(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / SWEEP_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"not a sweep directory (no {SWEEP_FILE}): {sweep_dir}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path} is damaged: {e}") from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ConfigError(f"{path} is not a sweep definition ginpipe {VERSION} can read")
    return data


def load(sweep_dir: Path) -> Sweep:
    """The sweep a directory holds, as it was created."""
    data = read_json(sweep_dir)
    try:
        space = Space(
            configs=list(data["configs"]),
            fixed=list(data["fixed"]),
            params=[Param.from_json(p) for p in data["params"]],
        )
        return Sweep(
            dir=sweep_dir,
            space=space,
            trials=int(data["trials"]),
            sampler=str(data["sampler"]["name"]),
            seed=int(data["sampler"]["seed"]),
            pruner=str(data["pruner"]),
            metric=str(data["metric"]),
            direction=str(data["direction"]),
            jobs=int(data["jobs"]),
            launcher=str(data["launcher"]),
            storage=data.get("storage"),
            study_name=str(data.get("study_name") or ""),
            max_failure_rate=float(data["max_failure_rate"]),
            use_cache=bool(data.get("use_cache", True)),
            prune=bool(data.get("prune", False)),
            own_process=bool(data.get("own_process", False)),
            slurm=dict(data.get("slurm") or {}),
            argv=list(data.get("argv") or []),
            cwd=str(data.get("cwd") or ""),
            created=str(data.get("created") or ""),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{sweep_dir / SWEEP_FILE} is damaged: missing or bad {e}") from None
