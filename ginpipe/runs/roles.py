"""What one process does in a run, by its global rank: the runner asks its role, never the rank.

Global rank 0 owns the run directory (``ginpipe/runs/distributed.py``): it takes the lock,
writes the run files and the run record (``run.json``), records pinned inputs, writes
``operative.gin`` and the summary line, hands the directory down to the ranks it starts, and
tells waiting ranks when it stops. Every other rank only makes the directory for its own log
and runs its part of the pipeline: no lock, no record, no observers.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from loguru import logger

from ginpipe.base.atomic import atomic_write_text
from ginpipe.base.errors import ConfigError, GinpipeError
from ginpipe.config.compose import Composition
from ginpipe.core.events import Events
from ginpipe.core.plan import PlannedStep
from ginpipe.core.store import ArtifactStore
from ginpipe.runs import continuation, distributed, rundir
from ginpipe.runs.graphs import GraphRecorder
from ginpipe.runs.provenance import (
    ENVIRONMENT_FILE,
    environment,
    git_diff,
    git_state,
    installed_distributions,
)
from ginpipe.runs.request import Prepared, RunRequest


class Observed:
    """The observers of one run in this process; ``end`` tells them how it ended."""

    def __init__(self, observers: list[Any]) -> None:
        self.events = Events(observers)

    def end(self, outcome: dict[str, Any]) -> None:
        self.events.emit("on_run_end", outcome)


class Recorded(Observed):
    """Rank 0's observers, the run record first; it ends with the world training saw."""

    def __init__(
        self, record: rundir.RunRecord, others: list[Any], ranks: distributed.Ranks
    ) -> None:
        super().__init__([record, *others])
        self.record = record
        self.ranks = ranks

    def end(self, outcome: dict[str, Any]) -> None:
        world = distributed.trained_world(self.ranks)
        self.record.data.update(world_size=world.world_size, launcher=world.launcher)
        super().end(outcome)


class RankRole(ABC):
    """The rank-dependent part of a run; ``role_of`` picks the one for this process."""

    def __init__(self, ranks: distributed.Ranks) -> None:
        self.ranks = ranks

    @property
    def is_main(self) -> bool:
        """Whether this process computes tasks that other ranks wait for (the plan)."""
        return self.ranks.is_main

    @abstractmethod
    def unnamed_run_dir(self, create: Callable[[], str]) -> Path:
        """The directory of a run nobody named, when ranks cannot share one through a store."""

    @abstractmethod
    def leaves_as_it_is(
        self, run: rundir.RunDir, request: RunRequest, prepared: Prepared, steps: list[PlannedStep]
    ) -> bool:
        """Whether an existing run is complete with this config, so nothing is done."""

    @abstractmethod
    def claim(
        self,
        run: rundir.RunDir,
        request: RunRequest,
        composition: Composition,
        store: ArtifactStore,
    ) -> AbstractContextManager[None]:
        """The run directory, ready for the pipeline, for as long as the pipeline runs."""

    @abstractmethod
    def observe(
        self, run: rundir.RunDir, request: RunRequest, prepared: Prepared, steps: list[PlannedStep]
    ) -> Observed:
        """The observers of this run in this process."""

    @abstractmethod
    def completed(
        self,
        run: rundir.RunDir,
        operative_text: Callable[[], str],
        unused: dict[str, set[str]],
        metrics: dict[str, float] | None,
        main_metric: str,
    ) -> None:
        """After the last task; ``operative_text`` is computed only by a role that writes it."""

    @abstractmethod
    def stop_waiting_ranks(self, reason: str) -> None:
        """This process stops a run that other ranks may be waiting on."""


class MainRank(RankRole):
    """Global rank 0: owns the run directory and everything written in it."""

    def unnamed_run_dir(self, create: Callable[[], str]) -> Path:
        return Path(create())

    def leaves_as_it_is(
        self, run: rundir.RunDir, request: RunRequest, prepared: Prepared, steps: list[PlannedStep]
    ) -> bool:
        if not run.exists():
            return False
        composition = prepared.composition
        continuation.check_pinned_inputs(run, steps, composition.bindings, request.mods)
        return _nothing_to_do(run, request, composition.digest)

    @contextmanager
    def claim(
        self,
        run: rundir.RunDir,
        request: RunRequest,
        composition: Composition,
        store: ArtifactStore,
    ) -> Iterator[None]:
        lock = rundir.RunLock(run)
        rundir.make_run_dir(run.path)
        rundir.check_no_symlinks(run)
        lock.acquire()
        previous = rundir.read_config_files(run) if request.resume else None
        try:
            rundir.remove_leftovers(run)
            store.clean_temp()
            _write_run_files(run, request, composition)
            distributed.hand_down_run_dir(run.path)
            yield
        except GinpipeError:
            # A resume refused on the way (e.g. its --mod does not fit the checkpoint) must
            # leave the run as it was: the saved config is what the next resume reads.
            if previous:
                rundir.restore_config_files(run, previous)
            raise
        finally:
            lock.release()

    def observe(
        self, run: rundir.RunDir, request: RunRequest, prepared: Prepared, steps: list[PlannedStep]
    ) -> Observed:
        record = _open_record(run, request, prepared, self.ranks)
        pinned = continuation.InputsRecorder(run, steps)
        drawn = GraphRecorder(run, steps)
        return Recorded(record, [pinned, drawn, *prepared.settings.observers], self.ranks)

    def completed(
        self,
        run: rundir.RunDir,
        operative_text: Callable[[], str],
        unused: dict[str, set[str]],
        metrics: dict[str, float] | None,
        main_metric: str,
    ) -> None:
        continuation.write_operative(run, operative_text(), unused)
        _summary(run, metrics, main_metric)

    def stop_waiting_ranks(self, reason: str) -> None:
        if self.ranks.world_size > 1:
            distributed.announce_rank0_failure(reason)


class OtherRank(RankRole):
    """A rank > 0: runs its part of the pipeline in rank 0's run directory."""

    def unnamed_run_dir(self, create: Callable[[], str]) -> Path:
        raise ConfigError(
            "ranks started together need one run name: pass --name NAME (or use torchrun)"
        )

    def leaves_as_it_is(
        self, run: rundir.RunDir, request: RunRequest, prepared: Prepared, steps: list[PlannedStep]
    ) -> bool:
        return False

    @contextmanager
    def claim(
        self,
        run: rundir.RunDir,
        request: RunRequest,
        composition: Composition,
        store: ArtifactStore,
    ) -> Iterator[None]:
        # A rank started with the run's name may get here before rank 0 made the folder;
        # its own log file goes there (mkdir -p: rank 0's later mkdir is unaffected).
        rundir.make_run_dir(run.path)
        yield

    def observe(
        self, run: rundir.RunDir, request: RunRequest, prepared: Prepared, steps: list[PlannedStep]
    ) -> Observed:
        return Observed([])

    def completed(
        self,
        run: rundir.RunDir,
        operative_text: Callable[[], str],
        unused: dict[str, set[str]],
        metrics: dict[str, float] | None,
        main_metric: str,
    ) -> None:
        return None

    def stop_waiting_ranks(self, reason: str) -> None:
        return None


def role_of(ranks: distributed.Ranks) -> RankRole:
    """The role of a process with these ranks."""
    return MainRank(ranks) if ranks.is_main else OtherRank(ranks)


def _nothing_to_do(run: rundir.RunDir, request: RunRequest, digest: str) -> bool:
    """A resume of a completed run with its own config changes nothing already there."""
    resumed = request.resume is not None and not request.rerun and request.use_cache
    if not resumed or "partial" in run.read_json():  # a partial run is not the whole
        return False
    return continuation.is_complete(run, digest)


def _write_run_files(run: rundir.RunDir, request: RunRequest, composition: Composition) -> None:
    if request.resume is not None:
        old = (
            run.file(rundir.OVERRIDES).read_text().splitlines()
            if run.file(rundir.OVERRIDES).exists()
            else []
        )
        rundir.write_config_files(run, composition.text, composition.bindings, old + request.mods)
        return
    if run.exists():
        rundir.check_same_config(run, composition.digest, composition.bindings)
        return
    rundir.write_config_files(run, composition.text, composition.bindings, request.mods)


def _open_record(
    run: rundir.RunDir, request: RunRequest, prepared: Prepared, ranks: distributed.Ranks
) -> rundir.RunRecord:
    """run.json's fixed part (argv, config, provenance); the record then follows events."""
    git = git_state()
    if git and git["dirty"]:
        atomic_write_text(run.file(rundir.GIT_DIFF), git_diff())
    atomic_write_text(run.file(ENVIRONMENT_FILE), installed_distributions())
    base = {
        "name": run.name,
        "project": run.project,
        "dir": str(run.path.resolve()),
        "argv": request.argv,
        "cwd": os.getcwd(),
        "config_files": prepared.composition.files,
        "overrides": _all_overrides(run),
        "config_digest": prepared.composition.digest,
        "main_metric": prepared.settings.main_metric,
        "git": git,
        **environment(),
        "world_size": ranks.world_size,
        "launcher": ranks.launcher,
    }
    if request.partial:  # a later resume runs the whole pipeline
        base["partial"] = {
            "from": request.start,
            "until": request.stop,
            "only": request.only,
            "inputs_from": str(request.inputs_from) if request.inputs_from else None,
        }
    return rundir.RunRecord(run, base, started_at=request.requested_at)


def _all_overrides(run: rundir.RunDir) -> list[str]:
    """Every --mod the run has had (first start and resumes), as overrides.txt holds them."""
    path = run.file(rundir.OVERRIDES)
    return path.read_text().splitlines() if path.exists() else []


def _summary(run: rundir.RunDir, metrics: dict[str, float] | None, main_metric: str) -> None:
    shown = ""
    if metrics and main_metric in metrics:
        shown = f" ({main_metric} {metrics[main_metric]:.4f})"
    logger.success(f"run completed: {run.path}{shown}")
