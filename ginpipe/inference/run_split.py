"""The raw items of one split of a run's own data, for ``predict --split`` and export checks.

The run's saved ``config.gin`` is composed again and its tasks up to the one that writes
``splits`` are executed: values still in the run root's cache are read from it (nothing is
written to it), the rest is recomputed from the data sources the config names. The
features are NOT taken from the pipeline: prediction applies the run's saved preprocessing
to the raw items, which is what ``predict`` on the same items from a file does.

A model of one branch of a run (``RUN/resnet/model``, ``predict RUN --model resnet``) reads
the split its nested pipeline read: the branch's own ``dataset`` and ``splits`` if its tasks
write them, else the run's (``ginpipe/core/steps.py``, ``resolve_keys``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from ginpipe.base.errors import ConfigError
from ginpipe.core.store import CACHE_DIR, ArtifactStore, SaveResult
from ginpipe.inference.inputs import Items
from ginpipe.runs import rundir
from ginpipe.tasks.bundle import Bundle

SPLITS = ("train", "val", "test")


def split_items(bundle: Bundle, split: str) -> Items:
    """Identifiers and raw items of ``split`` (dataset row indices, or the file paths)."""
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    run_dir, branch = run_of(bundle.run_dir)
    state, (dataset_key, splits_key) = _data_state(run_dir, branch)
    dataset = state[dataset_key]
    rows = np.asarray(state[splits_key][split], dtype=np.int64)
    if dataset["kind"] == "files":
        paths = dataset["table"]["path"].to_numpy(dtype=str)[rows]
        return Items(identifiers=paths, paths=paths)
    return Items(identifiers=rows, raw=np.asarray(dataset["X"])[rows])


def run_of(folder: Path) -> tuple[Path, str]:
    """The run a model folder belongs to, and its branch (``""``: the run's own model)."""
    if rundir.RunDir(folder).exists():
        return folder, ""
    for candidate in folder.absolute().parents:  # a branch's folder: RUN/resnet, RUN/a/b
        if (candidate / rundir.RUN_JSON).is_file():
            if rundir.RunDir(candidate).exists():
                return candidate, folder.absolute().relative_to(candidate).as_posix()
            break
    raise ConfigError(f"not a run directory (no {rundir.CONFIG}): {folder}")


def _data_state(run_dir: Path, branch: str = "") -> tuple[Any, tuple[str, str]]:
    """The state holding the ``dataset`` and ``splits`` the run (or its ``branch``) read,
    from the cache where they are still there; their state keys."""
    from ginpipe.config.compose import compose_text
    from ginpipe.config.settings import run_settings
    from ginpipe.core.events import Events
    from ginpipe.core.pipeline import Pipeline
    from ginpipe.core.plan import plan
    from ginpipe.core.schedule import execute
    from ginpipe.core.state import RunContext
    from ginpipe.core.steps import in_graph_order, task_steps

    run = rundir.RunDir(run_dir)
    if not run.exists():
        raise ConfigError(f"not a run directory (no {rundir.CONFIG}): {run_dir}")
    compose_text(run.config_text(), str(run.file(rundir.CONFIG)))
    steps = in_graph_order(task_steps(run_settings().tasks))
    if branch and not any(s.namespace == branch for s in steps):
        raise ConfigError(
            f"--model {branch}: the config of {run_dir} has no nested pipeline '{branch}' "
            f"(it has {', '.join(sorted({s.namespace for s in steps if s.namespace})) or 'none'})"
            f"; its split cannot be rebuilt: predict the split's items as an INPUT instead"
        )
    keys = (_state_key(steps, branch, "dataset"), _state_key(steps, branch, "splits"))
    written = {key for s in steps for key in s.writes}
    if not set(keys) <= written:
        where = f"the tasks of {run_dir}" + (f" for '{branch}'" if branch else "")
        raise ConfigError(f"{where} write no 'dataset' and 'splits' to read from")
    store = ReadOnlyStore(rundir.root_of(run_dir) / CACHE_DIR)
    needed = [s.numbered(i) for i, s in enumerate(_needed(plan(steps, store), set(keys)))]
    context = RunContext(run_dir, run.name, run.project)
    logger.info(f"reading the splits of {run_dir}" + (f" for '{branch}'" if branch else ""))
    state = execute(Pipeline(needed, store=store, run=context, events=Events([])))
    return state, keys


def _state_key(steps: list[Any], branch: str, own: str) -> str:
    """The state key a branch's tasks read for ``own``: their namespace's, if a task of it
    writes one, else the run's."""
    for step in steps:
        if branch and step.namespace == branch and own in step.spec.writes:
            return str(step.state_key(own))
    return own


def _needed(steps: list[Any], needed: set[str]) -> list[Any]:
    """The planned steps the ``needed`` keys depend on (a loader, a split, a seed)."""
    kept = []
    for step in reversed(steps):
        if needed & set(step.writes):
            kept.append(step)
            needed |= set(step.reads)
    return list(reversed(kept))


class ReadOnlyStore(ArtifactStore):
    """Reads the cache; stores nothing (predicting must not change the cache)."""

    def save(self, key: str, outputs: dict[str, Any], **_: Any) -> SaveResult:
        return SaveResult(key, (), (), 0)  # nothing stored, nothing to warn about
