"""The ``executors`` configurable: which tasks leave this machine, and how.

    executors.tasks = {'extract_features': 'slurm'}   # by task name (or nested name)
    executors.array = {'extract_features': 4}         # a task over shards: 4 array jobs
    executors.slurm = {'partition': 'cpu', 'time_min': 120, 'cpus_per_task': 8}

A task may also declare it (``@task(executor="slurm")``); the config wins. ``slurm`` submits
with sbatch through submitit; ``local`` runs the same job through submitit's local executor
on this machine (a config tried before it goes to a cluster). Where a task runs never
changes its cache key. It lives apart from the engine so that composing a config registers
it without importing submitit; ``ginpipe/core/placement.py`` places the tasks and
``ginpipe/core/jobs.py`` runs the jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gin

from ginpipe.base.errors import ConfigError
from ginpipe.base.suggest import did_you_mean

EXECUTORS = ("slurm", "local")
SELECTOR = "ginpipe.executors"
# executors.slurm keys -> (submitit parameter, type); only these reach sbatch.
SLURM_OPTIONS: dict[str, tuple[str, type]] = {
    "partition": ("slurm_partition", str),
    "account": ("slurm_account", str),
    "qos": ("slurm_qos", str),
    "time_min": ("timeout_min", int),
    "cpus_per_task": ("cpus_per_task", int),
    "gpus_per_node": ("gpus_per_node", int),
    "mem_gb": ("mem_gb", int),
    "max_parallel": ("slurm_array_parallelism", int),
}


@dataclass(frozen=True)
class ExecutorSettings:
    """What ``executors`` binds, checked: task name -> executor, array sizes, options."""

    tasks: dict[str, str] = field(default_factory=dict)
    array: dict[str, int] = field(default_factory=dict)
    slurm: dict[str, Any] = field(default_factory=dict)


@gin.configurable("executors", module="ginpipe")
def executor_settings(
    tasks: Mapping[str, str] | None = None,
    array: Mapping[str, int] | None = None,
    slurm: Mapping[str, Any] | None = None,
) -> ExecutorSettings:
    """Tasks sent to a job scheduler instead of running here.

    Args:
        tasks: task name (``fit``, or ``resnet/fit`` for one branch) -> ``slurm`` or ``local``.
        array: task name -> number of array jobs, for a task over shards
            (``@task(array=True)``, such as ``extract_features``).
        slurm: job options: partition, account, qos, time_min, cpus_per_task,
            gpus_per_node, mem_gb, max_parallel (array jobs at once).
    """
    tasks, array, slurm = dict(tasks or {}), dict(array or {}), dict(slurm or {})
    for name, executor in tasks.items():
        check_executor(executor, f"executors.tasks[{name!r}]")
    for name, count in array.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(
                f"executors.array[{name!r}] = {count!r}: give a number of jobs, 1 or more",
                binding=f"{SELECTOR}.array",
            )
    for key, value in slurm.items():
        if key not in SLURM_OPTIONS:
            raise ConfigError(
                f"executors.slurm has no option {key!r}{did_you_mean(key, SLURM_OPTIONS)}; "
                f"options: {', '.join(SLURM_OPTIONS)}",
                binding=f"{SELECTOR}.slurm",
            )
        kind = SLURM_OPTIONS[key][1]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ConfigError(
                f"executors.slurm[{key!r}] = {value!r}: give a {kind.__name__}",
                binding=f"{SELECTOR}.slurm",
            )
    return ExecutorSettings(tasks, array, slurm)


def check_executor(executor: str, where: str) -> None:
    """One line naming a misspelt executor."""
    if executor not in EXECUTORS:
        raise ConfigError(
            f"{where}: unknown executor {executor!r}{did_you_mean(str(executor), EXECUTORS)}; "
            f"executors are {', '.join(EXECUTORS)}",
            binding=f"{SELECTOR}.tasks",
        )


def submitit_parameters(options: Mapping[str, Any]) -> dict[str, Any]:
    """``executors.slurm`` as submitit's parameter names."""
    return {SLURM_OPTIONS[key][0]: value for key, value in options.items()}
