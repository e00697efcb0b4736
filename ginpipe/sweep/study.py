"""The Optuna study of a sweep: storage, sampler, pruner, and the locks that let many
workers share it.

The study lives in the sweep folder as Optuna's journal file (an RDB URL may replace it on a
cluster). Two ``flock`` locks, which the kernel releases when their holder dies (even by
``kill -9``), keep workers honest: the *ask lock* makes "count the trials, start one" atomic,
so a budget is never exceeded; a *claim lock* per trial is held by the worker running it,
so a RUNNING trial whose claim is free was left by a dead worker and is resumed, once.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, cast

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.storages.journal._file import BaseJournalFileLock
from optuna.trial import TrialState

from ginpipe.base.errors import ConfigError
from ginpipe.sweep.definition import Sweep, trial_name

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "percentile", "hyperband", "none")
ASK_LOCK = ".ask.lock"
CLAIMS = ".claims"

optuna.logging.set_verbosity(optuna.logging.WARNING)


class FlockLock(BaseJournalFileLock):
    """The journal's lock as an ``flock``: a killed writer cannot leave it held (Optuna's
    default symlink lock is broken only after a grace period)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _repair_journal(path: Path) -> None:
    """A writer killed mid-line leaves a line without its newline, which Optuna then refuses
    to read past: cut it (under the journal lock; the line's operation never happened)."""
    lock = FlockLock(str(path) + ".lock")
    lock.acquire()
    try:
        if not path.is_file():
            return
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with path.open("r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
                f.flush()
                os.fsync(f.fileno())
    finally:
        lock.release()


def storage(sweep: Sweep) -> Any:
    """The journal file in the sweep folder, or the RDB URL the sweep was given."""
    if sweep.storage:
        return sweep.storage
    path = Path(sweep.storage_url)
    _repair_journal(path)
    return JournalStorage(JournalFileBackend(str(path), lock_obj=FlockLock(str(path) + ".lock")))


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid, without its ``study.stop()`` once every point has started (which only
    works inside ``study.optimize``): the sweep's budget, the grid's size, stops it."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None


def reading_storage(sweep: Sweep) -> Any:
    """The study's storage for reading only: nothing is repaired, locked or created."""
    if sweep.storage:
        return sweep.storage
    path = Path(sweep.storage_url)
    if not path.is_file():
        raise ConfigError(f"the sweep has no study yet ({path} is missing)")
    return JournalStorage(JournalFileBackend(str(path), lock_obj=FlockLock(str(path) + ".lock")))


def parse_pruner(spec: str) -> tuple[str, dict[str, float]]:
    """``median``, ``median:startup=2,warmup=1``, ``percentile:percentile=25``, ``hyperband``,
    ``none`` -> (name, options)."""
    name, _, rest = spec.partition(":")
    if name not in PRUNERS:
        raise ConfigError(f"unknown pruner {name!r}: one of {', '.join(PRUNERS)}")
    options: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        try:
            options[key.strip()] = float(value)
        except ValueError:
            eq = ""
        if not eq:
            raise ConfigError(f"malformed pruner option {item!r}: expected NAME=NUMBER")
    allowed = {"median": {"startup", "warmup"}, "percentile": {"startup", "warmup", "percentile"}}
    unknown = set(options) - allowed.get(name, set())
    if unknown:
        raise ConfigError(f"pruner {name} has no option {sorted(unknown)[0]!r}")
    return name, options


def pruner(spec: str) -> optuna.pruners.BasePruner:
    name, options = parse_pruner(spec)
    startup = int(options.get("startup", 5))
    warmup = int(options.get("warmup", 0))
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(
            options.get("percentile", 25.0), n_startup_trials=startup, n_warmup_steps=warmup
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def sampler(sweep: Sweep, trial_number: int | None = None) -> optuna.samplers.BaseSampler:
    """The sweep's sampler, seeded for one trial when ``trial_number`` is given.

    Every worker process builds its own sampler. Seeded alike, they drew the same random
    numbers: two workers proposed the same configuration (trials 0 and 1 equal, 2 and 3,
    ...), and a restarted worker proposed trial 0's again. Seeded from the sweep's seed and
    the number of the trial it proposes, each trial draws its own numbers, the same whichever
    worker asks. TPE also counts the trials still running (``constant_liar``), so parallel
    workers do not crowd one region. The grid keeps the sweep's seed: it shuffles its points
    with it, and every process must see the same order for trial N to take the N-th.
    """
    if sweep.sampler == "grid":
        # one order of the grid for every process: trial N takes its N-th point
        return GridSampler(sweep.space.grid(), seed=sweep.seed)
    seed = sweep.seed if trial_number is None else trial_seed(sweep.seed, trial_number)
    if sweep.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def trial_seed(seed: int, trial_number: int) -> int:
    """Independent, reproducible seeds per trial (numpy's SeedSequence spawning)."""
    import numpy as np

    return int(np.random.SeedSequence([seed, trial_number]).generate_state(1)[0])


def check_choices(sweep: Sweep) -> None:
    """Sampler, pruner and direction are checked when the sweep is created."""
    if sweep.sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sweep.sampler!r}: one of {', '.join(SAMPLERS)}")
    if sweep.sampler == "grid" and not sweep.space.is_grid:
        raise ConfigError(
            "the grid sampler needs comma lists only; a distribution needs --sampler tpe/random"
        )
    if sweep.direction not in ("maximize", "minimize"):
        raise ConfigError(f"--direction must be maximize or minimize, got {sweep.direction!r}")
    parse_pruner(sweep.pruner)


def open_study(sweep: Sweep, *, create: bool = False) -> optuna.Study:
    """The sweep's study; ``create`` only when the sweep is made.

    Every later open (a worker, ``--resume``, a trial) needs the study to be there: a
    journal that was emptied or damaged would otherwise give a new, empty study, whose
    trials would be proposed again and differ from what the trial folders hold.
    """
    if create:
        return optuna.create_study(
            study_name=sweep.study_name,
            storage=storage(sweep),
            sampler=sampler(sweep),
            pruner=pruner(sweep.pruner),
            # one of the two: check_choices ran when the sweep was made
            direction=cast(Literal["maximize", "minimize"], sweep.direction),
        )
    where = sweep.storage_url
    try:
        return optuna.load_study(
            study_name=sweep.study_name,
            storage=storage(sweep),
            sampler=sampler(sweep),
            pruner=pruner(sweep.pruner),
        )
    except KeyError:
        raise ConfigError(
            f"the study of {sweep.dir} is not in {where} (emptied or replaced?); its trial "
            "folders are kept, but the sweep cannot go on without its study"
        ) from None
    except (ValueError, UnicodeDecodeError) as e:  # a journal line that is not JSON
        raise ConfigError(f"the study journal {where} is damaged: {e}") from None


def started(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that count toward the budget: every trial except those still waiting."""
    return [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]


@contextmanager
def ask_lock(sweep_dir: Path) -> Iterator[None]:
    fd = os.open(sweep_dir / ASK_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Claim:
    """This worker runs trial ``number``: an flock held until released or the process dies."""

    def __init__(self, sweep_dir: Path, number: int) -> None:
        folder = sweep_dir / CLAIMS
        folder.mkdir(exist_ok=True)
        self.number = number
        self._fd = os.open(folder / f"{trial_name(number)}.lock", os.O_RDWR | os.O_CREAT, 0o644)

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            return False
        return True

    def release(self) -> None:
        os.close(self._fd)
