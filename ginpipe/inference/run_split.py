"""The raw items of one split of a run's own data, for ``predict --split`` and export checks.

The run's saved ``config.gin`` is composed again and its tasks up to the one that writes
``splits`` are executed: values still in the run root's cache are read from it (nothing is
written to it), the rest is recomputed from the data sources the config names. The
features are NOT taken from the pipeline: prediction applies the run's saved preprocessing
to the raw items, which is what ``predict`` on the same items from a file does.
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
    state = _data_state(bundle.run_dir)
    dataset, rows = state["dataset"], np.asarray(state["splits"][split], dtype=np.int64)
    if dataset["kind"] == "files":
        paths = dataset["table"]["path"].to_numpy(dtype=str)[rows]
        return Items(identifiers=paths, paths=paths)
    return Items(identifiers=rows, raw=np.asarray(dataset["X"])[rows])


def _data_state(run_dir: Path) -> Any:
    """``dataset`` and ``splits`` of the run, from the cache where they are still there."""
    from ginpipe.config.compose import compose_text
    from ginpipe.config.settings import run_settings
    from ginpipe.core.events import Events
    from ginpipe.core.pipeline import Pipeline, plan, task_steps
    from ginpipe.core.state import RunContext

    run = rundir.RunDir(run_dir)
    if not run.exists():
        raise ConfigError(f"not a run directory (no {rundir.CONFIG}): {run_dir}")
    compose_text(run.config_text(), str(run.file(rundir.CONFIG)))
    steps = task_steps(run_settings().tasks)
    last = next((s.index for s in steps if "splits" in s.spec.writes), None)
    if last is None or not any("dataset" in s.spec.writes for s in steps[:last]):
        raise ConfigError(f"the tasks of {run_dir} write no 'dataset' and 'splits' to read from")
    needed = _needed(steps[: last + 1])
    for index, step in enumerate(needed):
        step.index = index
    store = ReadOnlyStore(rundir.root_of(run_dir) / CACHE_DIR)
    planned = plan(needed, store)
    context = RunContext(run_dir, run.name, run.project)
    logger.info(f"reading the splits of {run_dir}")
    return Pipeline(planned, store=store, run=context, events=Events([])).execute()


def _needed(steps: list[Any]) -> list[Any]:
    """The steps that ``dataset`` and ``splits`` depend on (a loader, a split, a seed)."""
    needed = {"dataset", "splits"}
    kept = []
    for step in reversed(steps):
        if needed & set(step.spec.writes):
            kept.append(step)
            needed |= set(step.spec.reads)
    return list(reversed(kept))


class ReadOnlyStore(ArtifactStore):
    """Reads the cache; stores nothing (predicting must not change the cache)."""

    def save(self, key: str, outputs: dict[str, Any], **_: Any) -> SaveResult:
        return SaveResult(key, (), (), 0)  # nothing stored, nothing to warn about
