"""Where each planned step runs: in the run's process, in a forked process, or as a job.

One place decides it, from the config: ``executors.tasks`` names the tasks sent to a job
scheduler (a task's ``@task(executor=)`` is only the default the config overrides);
``--jobs N`` lets a task that declares CPU or GPU work (``@task(resources=)``, or its nested
pipeline's) run in a process of its own. Only a step the plan runs is placed away from
here; where a task runs never changes its cache key. Everything a user can get wrong is
refused before work, in one line naming the task.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ginpipe.base.errors import ConfigError
from ginpipe.base.install import install_line
from ginpipe.base.suggest import did_you_mean
from ginpipe.config import ginapi
from ginpipe.config.executors import ExecutorSettings, check_executor, executor_settings
from ginpipe.core.plan import Action, JobPlacement, Place, PlannedStep
from ginpipe.core.taskdef import TaskSpec

NVIDIA_GPUS = "/proc/driver/nvidia/gpus"


class Placeable(Protocol):
    """What placing needs of a step (a wired ``Step`` or a ``PlannedStep``)."""

    @property
    def index(self) -> int: ...

    @property
    def spec(self) -> TaskSpec: ...

    @property
    def name(self) -> str: ...


def settings() -> ExecutorSettings:
    """The bound ``executors`` settings (an error inside gin's call, unwrapped)."""
    try:
        return executor_settings()
    except Exception as raised:
        raise ginapi.unwrap_call_error(raised) from None


def job_placements(steps: Sequence[Placeable]) -> dict[int, JobPlacement]:
    """Step index -> its job placement, for the steps the config sends to a job scheduler."""
    bound = settings()
    names = sorted({s.name for s in steps} | {s.spec.name for s in steps})
    for option, table in (("tasks", bound.tasks), ("array", bound.array)):
        for name in table:
            if name not in names:
                raise ConfigError(
                    f"executors.{option} names {name!r}, which is no task of run.tasks"
                    f"{did_you_mean(name, names)}",
                    binding=f"ginpipe.executors.{option}",
                )
    found: dict[int, JobPlacement] = {}
    for step in steps:
        placement = _job_of(step, bound)
        if placement is not None:
            found[step.index] = placement
    _check_submitters(steps, found)
    return found


def _job_of(step: Placeable, bound: ExecutorSettings) -> JobPlacement | None:
    """Where the config (or, by default, the task) sends one step; its mistakes refused."""
    spec = step.spec
    executor = _named(bound.tasks, step) or spec.needs.executor
    count = _named(bound.array, step)
    if executor:
        check_executor(executor, f"task '{step.name}'")
    if count and not spec.needs.array:
        raise ConfigError(
            f"executors.array[{step.name!r}]: task '{step.name}' cannot split its work "
            f"over an array (it does not declare @task(array=True))",
            binding="ginpipe.executors.array",
        )
    if count and not executor:
        raise ConfigError(
            f"executors.array[{step.name!r}] needs an executor for the task: "
            f"executors.tasks = {{{step.name!r}: 'slurm'}}",
            binding="ginpipe.executors.array",
        )
    if not executor:
        return None
    if not spec.caching.enabled and not spec.needs.array:
        raise ConfigError(
            f"task '{step.name}' cannot run as a job: it is not cached (cache=False), so "
            f"what it computes could not come back from the job"
        )
    return JobPlacement(executor, int(count or 1) if spec.needs.array else 0)


def _check_submitters(steps: Sequence[Placeable], found: dict[int, JobPlacement]) -> None:
    """submitit installed, and sbatch on the PATH for SLURM, when a task is sent."""
    sent = next((s.name for s in steps if s.index in found), "")
    if sent and importlib.util.find_spec("submitit") is None:
        raise ConfigError(
            f"task '{sent}' is sent to a job scheduler, which needs submitit: "
            f"{install_line('sweep')}"
        )
    slurm = [s.name for s in steps if s.index in found and found[s.index].executor == "slurm"]
    if slurm and shutil.which("sbatch") is None:
        raise ConfigError(
            f"task '{slurm[0]}' is sent to slurm, which submits with sbatch, not on this "
            f"machine's PATH: run from a SLURM login node, or use executors.tasks = "
            f"{{{slurm[0]!r}: 'local'}}"
        )


def _named(table: dict[str, Any], step: Placeable) -> Any:
    """A setting by the task's full name (``resnet/fit``), else by its own (``fit``)."""
    return table.get(step.name, table.get(step.spec.name))


def place(steps: Sequence[PlannedStep], jobs: int = 1, world_size: int = 1) -> list[PlannedStep]:
    """The plan with each step's place: jobs from the config, forked processes for tasks
    that declare work under ``--jobs N``; under several ranks everything runs here (DDP
    ranks run the same plan in step)."""
    sent = job_placements(steps)
    placed = []
    for step in steps:
        where = Place.HERE
        if world_size == 1 and step.action == Action.RUN:
            if step.index in sent:
                where = Place.JOB
            elif jobs > 1 and declares_work(step):
                where = Place.PROCESS
        placed.append(dataclasses.replace(step, place=where, job=sent.get(step.index)))
    return placed


def declares_work(step: PlannedStep) -> bool:
    """Whether the step asks for CPUs or GPUs of its own."""
    wants = step.resources
    return wants.get("cpus", 0) > 0 or wants.get("gpus", 0) > 0


def check_fits(steps: Sequence[PlannedStep], jobs: int) -> list[int]:
    """Refuse, before any work, ``--jobs`` below 1 and a task asking for more GPUs than the
    machine has; the GPU devices to share out."""
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: give 1 or more tasks at once")
    forked = [s for s in steps if jobs > 1 and s.action == Action.RUN and declares_work(s)]
    devices = gpu_ids() if any(s.resources.get("gpus", 0) > 0 for s in forked) else []
    for step in forked:
        gpus = int(step.resources.get("gpus", 0))
        if gpus > len(devices):
            raise ConfigError(
                f"task '{step.name}' needs {gpus} GPU(s); this machine has {len(devices)}"
            )
    return devices


def gpu_ids() -> list[int]:
    """The GPU devices to share out."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [int(d) for d in visible.split(",") if d.strip().isdigit()]
    # The driver lists one folder per GPU; asking torch would import it here, in the main
    # process, before the children that train are forked.
    found = Path(NVIDIA_GPUS)
    return list(range(len(list(found.iterdir())))) if found.is_dir() else []
