"""Compute a per-item feature for every file once, in a process pool, into shards.

The cache is per item: an item's features are reused when a shard already holds its key
(path, size, mtime: ``shards.item_key``) in the folder of the same decoder and feature
function (``feature_key``: their specs and the code they come from). So adding 1 % new
files computes 1 %, and a run killed half-way keeps every shard it committed: only the
shards in flight are lost.

Each pool job is one shard: a worker decodes and transforms its items and commits the
shard itself, so the main process only receives small manifests, whatever the data size.
Workers get plain specs (``callables``), never gin state, so any start method works.

``fork`` is the default where the platform has it: the workers start at once with torch and
the decoders already imported, where ``forkserver`` or ``spawn`` pay a fresh import of torch
first (seconds, a large share of a small extraction). Forked workers inherit the parent's
open files, the run directory's lock among them, so each one asks the kernel to kill it
when its parent dies (``PR_SET_PDEATHSIG``): a ``kill -9`` of the run leaves no worker
holding the lock or finishing a shard nobody waits for.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from loguru import logger

from ginpipe import DataError
from ginpipe.tasks.data import callables
from ginpipe.tasks.data.shards import KEY_DTYPE, Shard, ShardStore, item_key
from ginpipe.tasks.engine import code_fingerprint, library_versions

FORMAT = 1
Context = Literal["fork", "forkserver", "spawn"]  # extract_features.multiprocessing_context
CONTEXTS: tuple[str, ...] = get_args(Context)
PR_SET_PDEATHSIG = 1  # linux/prctl.h
VERSIONED = ("numpy", "torch", "soundfile", "scipy", "pillow")


@dataclass(frozen=True)
class Job:
    """One shard to compute: plain values only, pickled into a worker."""

    directory: str
    decoder: dict[str, Any]
    function: dict[str, Any]
    keys: tuple[str, ...]
    paths: tuple[str, ...]


@dataclass
class Extracted:
    """Where every requested item lives, and what was done to get there."""

    store: ShardStore
    shards: list[Shard]  # the shards the items use, in a fixed order
    shard_of: np.ndarray  # (items,) int64 index into ``shards``
    row_of: np.ndarray  # (items,) int64 row inside that shard
    item_shape: tuple[int, ...]
    computed: int
    reused: int


def feature_key(decoder: Mapping[str, Any], function: Mapping[str, Any]) -> str:
    """Names the folder of one (decoder, function) pair: their specs, the code of the
    modules they come from, and the versions of the numeric libraries they use."""
    versions = library_versions()
    doc = {
        "format": FORMAT,
        "decoder": decoder,
        "function": function,
        "code": [_code_of(decoder), _code_of(function)],
        "versions": {name: _version(name, versions) for name in VERSIONED},
    }
    return callables.spec_digest(doc)[:32]


def extract(
    paths: Sequence[str] | np.ndarray,
    directory: Path,
    decoder: Mapping[str, Any],
    function: Mapping[str, Any],
    *,
    shard_size: int = 256,
    workers: int = 2,
    context: str = "fork",
    verify: str = "stat",
    progress: bool = True,
) -> Extracted:
    """Make sure every path's features are in a shard of ``directory``; say where.

    The bookkeeping is NumPy arrays (keys as fixed-width bytes, sorted and searched), not
    a Python object per item, so the main process stays small for millions of files.
    """
    paths = np.asarray(paths, dtype=object)  # the caller's str objects, not a copy
    store, keys, shards, missing, reused = _missing(paths, directory, shard_size, verify)
    jobs = _jobs(directory, decoder, function, keys, paths, missing, shard_size)
    shards += list(_run_jobs(jobs, len(missing), workers, context, progress))
    return _assemble(store, shards, keys, paths, computed=len(missing), reused=reused)


def extract_share(
    paths: Sequence[str] | np.ndarray,
    directory: Path,
    decoder: Mapping[str, Any],
    function: Mapping[str, Any],
    share: Any,
    *,
    shard_size: int = 256,
    workers: int = 2,
    context: str = "fork",
    verify: str = "stat",
    progress: bool = True,
) -> int:
    """One job array element's part of ``extract``: the missing items of the shard-sized
    blocks of ``paths`` that ``share.owns`` (block ``i`` holds items ``i * shard_size`` on),
    computed and committed; the number of items it computed. Blocks are counted over every
    path, not only the missing ones, so the shares do not depend on what another element
    has already committed."""
    paths = np.asarray(paths, dtype=object)
    _, keys, _, missing, _ = _missing(paths, directory, shard_size, verify)
    owned = np.array([share.owns(int(i) // shard_size) for i in missing], dtype=bool)
    mine = missing[owned] if len(missing) else missing
    jobs = _jobs(directory, decoder, function, keys, paths, mine, shard_size)
    for _ in _run_jobs(jobs, len(mine), workers, context, progress):
        pass
    logger.info(f"extract_features: {len(mine)} items computed by this share")
    return len(mine)


def _missing(
    paths: np.ndarray, directory: Path, shard_size: int, verify: str
) -> tuple[ShardStore, np.ndarray, list[Shard], np.ndarray, int]:
    """The store, every item's key, the shards there, the positions of the items no shard
    holds yet (each once, in table order), and how many distinct items are reused."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    store = ShardStore(directory)
    store.clean_temp()
    keys = np.empty(len(paths), dtype=KEY_DTYPE)
    for index, path in enumerate(paths):
        keys[index] = item_key(str(path))
    shards = store.scan(verify)
    found = _Index(shards).find(keys)
    missing = np.flatnonzero(found < 0)
    _, first = np.unique(keys[missing], return_index=True)
    missing = missing[np.sort(first)]  # each missing item once, in table order
    reused = len(np.unique(keys[found >= 0]))
    return store, keys, shards, missing, reused


def _jobs(
    directory: Path,
    decoder: Mapping[str, Any],
    function: Mapping[str, Any],
    keys: np.ndarray,
    paths: np.ndarray,
    missing: np.ndarray,
    shard_size: int,
) -> list[Job]:
    return [
        Job(
            str(directory),
            dict(decoder),
            dict(function),
            tuple(key.decode() for key in keys[chunk]),
            tuple(str(path) for path in paths[chunk]),
        )
        for chunk in _chunks(missing, shard_size)
    ]


class _Index:
    """Sorted item keys of all shards with the shard and row of each; a key stored twice
    (racing writers) resolves to the first shard in name order."""

    def __init__(self, shards: list[Shard]) -> None:
        counts = [len(shard.keys) for shard in shards]
        all_keys = np.concatenate([shard.keys for shard in shards] or [np.empty(0, KEY_DTYPE)])
        shard_ids = np.repeat(np.arange(len(shards), dtype=np.int64), counts)
        rows = np.concatenate(
            [np.arange(count, dtype=np.int64) for count in counts] or [np.empty(0, np.int64)]
        )
        self.keys, first = np.unique(all_keys, return_index=True)
        self.shard = shard_ids[first]
        self.row = rows[first].astype(np.int64)

    def find(self, keys: np.ndarray) -> np.ndarray:
        """Position of each key in ``self.keys``, -1 where absent."""
        if len(self.keys) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        position = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[position] == keys, position, -1)


def _chunks(items: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _run_jobs(
    jobs: list[Job], total: int, workers: int, context: str, progress: bool
) -> Iterator[Shard]:
    """Yield each committed shard as its job finishes, with a progress bar over items."""
    if not jobs:
        return
    from tqdm import tqdm

    interactive = sys.stderr.isatty()
    bar = tqdm(
        total=total,
        unit="item",
        desc="extract_features",
        disable=not progress,
        mininterval=0.5 if interactive else 10.0,
        dynamic_ncols=interactive,
        file=sys.stderr,
    )
    try:
        # One job gains nothing from a pool but would pay its start (importing torch in a
        # fresh process): a small top-up such as 1 % new files runs here. workers=0 runs
        # everything here (for debugging: breakpoints, tracebacks).
        if workers <= 0 or len(jobs) == 1:
            with _one_thread():
                for job in jobs:
                    shard = compute_shard(job)
                    bar.update(len(shard.keys))
                    yield shard
            return
        ctx = _context(context)
        parent = os.getpid() if ctx.get_start_method() == "fork" else None
        processes = min(workers, len(jobs))
        with ctx.Pool(processes, initializer=_init_worker, initargs=(parent,)) as pool:
            for shard in pool.imap_unordered(compute_shard, jobs):
                bar.update(len(shard.keys))
                yield shard
    finally:
        bar.close()


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Per-item work in this process on one torch thread, as in the workers: small ops on
    several threads cost more than they gain, ten times more on a busy machine (measured:
    1.4 ms vs 12 ms per log-mel item on 2 shared cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _context(name: str) -> Any:
    if name not in CONTEXTS:
        raise ValueError(f"multiprocessing context must be one of {CONTEXTS}, got {name!r}")
    if name not in multiprocessing.get_all_start_methods():
        name = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(name)
    if name == "forkserver":
        # The server imports this module (numpy, torch, soundfile) once; workers fork from
        # it with those already loaded instead of importing them each.
        ctx.set_forkserver_preload([__name__])
    return ctx


def _init_worker(parent: int | None) -> None:
    """Die with the parent; one thread per worker (the pool is the parallelism, and a forked
    child must not use the OpenMP pool its parent started, as in DataLoader workers).

    A forked worker inherits the runner's handlers, which turn SIGINT/SIGTERM into
    ``Interrupted``: the pool's own SIGTERM at shutdown then printed a worker traceback.
    Workers end quietly on SIGTERM and leave Ctrl-C to the parent, which stops the pool.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent is not None and os.getppid() != parent:  # the parent died before prctl
        os._exit(1)
    import torch

    torch.set_num_threads(1)


_BUILT: dict[str, Callable[..., Any]] = {}  # per worker process: spec JSON -> callable


def _built(spec: Mapping[str, Any]) -> Callable[..., Any]:
    text = json.dumps(spec, sort_keys=True)
    if text not in _BUILT:
        _BUILT[text] = callables.from_spec(spec)
    return _BUILT[text]


def compute_shard(job: Job) -> Shard:
    """Decode and transform every item of the job, then commit the shard (in a worker)."""
    decode, transform = _built(job.decoder), _built(job.function)
    name = callables.spec_name(job.function)
    rows: list[np.ndarray] = []
    for path in job.paths:
        rows.append(_one_item(decode, transform, name, path))
        if rows[-1].shape != rows[0].shape:
            raise DataError(_shape_message(job.paths[0], rows[0].shape, path, rows[-1].shape))
    return ShardStore(job.directory).write(job.keys, job.paths, np.stack(rows))


def _one_item(decode: Callable, transform: Callable, name: str, path: str) -> np.ndarray:
    try:
        decoded = decode(path)
    except DataError:
        raise
    except Exception as error:  # a user's decoder: name the file, keep it to one line
        raise DataError(f"decoder failed on '{path}': {type(error).__name__}: {error}") from None
    try:
        features = np.asarray(transform(decoded))
    except DataError:
        raise
    except Exception as error:
        raise DataError(
            f"feature function {name} failed on '{path}': {type(error).__name__}: {error}"
        ) from None
    if not (np.issubdtype(features.dtype, np.number) or features.dtype == np.bool_):
        raise DataError(f"feature function {name} returned {features.dtype} for '{path}'")
    features = features.astype(np.float32, copy=False)
    if not np.isfinite(features).all():
        raise DataError(f"feature function {name} returned NaN or inf for '{path}'")
    return features


def _shape_message(first: str, first_shape: tuple, path: str, shape: tuple) -> str:
    return (
        f"features differ in shape: '{first}' gives {list(first_shape)}, '{path}' gives "
        f"{list(shape)}; every item needs one shape (for audio: audio_decoder.duration)"
    )


def _assemble(
    store: ShardStore,
    shards: list[Shard],
    keys: np.ndarray,
    paths: np.ndarray,
    *,
    computed: int,
    reused: int,
) -> Extracted:
    index = _Index(shards)
    found = index.find(keys)
    if (found < 0).any():  # a shard vanished while we computed: say which item
        lost = str(paths[int(np.argmax(found < 0))])
        raise DataError(f"the features of '{lost}' were removed while extracting; run again")
    used, shard_of = np.unique(index.shard[found], return_inverse=True)
    row_of = index.row[found]
    kept = [shards[int(i)] for i in used]
    item_shape = kept[0].item_shape if kept else ()
    for number, shard in enumerate(kept):
        if shard.item_shape != item_shape:
            first = str(paths[int(np.argmax(shard_of == 0))])
            other = str(paths[int(np.argmax(shard_of == number))])
            raise DataError(_shape_message(first, item_shape, other, shard.item_shape))
    logger.info(
        f"extract_features: {computed} items computed, {reused} reused, "
        f"{len(kept)} shards in {store.directory}"
    )
    return Extracted(store, kept, shard_of.astype(np.int64), row_of, item_shape, computed, reused)


def _code_of(spec: Mapping[str, Any]) -> str:
    try:
        return code_fingerprint(callables.resolve(str(spec["target"])))
    except Exception:  # unimportable here: the spec alone keys it, from_spec will complain
        return "unknown"


def _version(name: str, known: Mapping[str, str]) -> str:
    if name in known:
        return known[name]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"
