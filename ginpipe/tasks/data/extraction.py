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

import ctypes
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from ginpipe.errors import DataError
from ginpipe.fingerprint import code_fingerprint, library_versions
from ginpipe.tasks.data import callables
from ginpipe.tasks.data.shards import Shard, ShardStore, item_key

FORMAT = 1
CONTEXTS = ("fork", "forkserver", "spawn")
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
    paths: Sequence[str],
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
    """Make sure every path's features are in a shard of ``directory``; say where."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    store = ShardStore(directory)
    store.clean_temp()
    keys = [item_key(str(path)) for path in paths]
    located = _locate(store.scan(verify))
    missing = {}  # key -> path, first occurrence, table order
    for key, path in zip(keys, paths, strict=True):
        if key not in located and key not in missing:
            missing[key] = str(path)
    reused = len({key for key in keys if key in located})
    jobs = [
        Job(
            str(directory),
            dict(decoder),
            dict(function),
            tuple(keys_),
            tuple(map(missing.get, keys_)),
        )
        for keys_ in _chunks(list(missing), shard_size)
    ]
    for shard in _run_jobs(jobs, len(missing), workers, context, progress):
        for row, key in enumerate(shard.keys):
            located.setdefault(key, (shard, row))
    return _assemble(store, keys, paths, located, computed=len(missing), reused=reused)


def _locate(shards: list[Shard]) -> dict[str, tuple[Shard, int]]:
    """Item key -> (shard, row); a key in several shards (racing writers) takes the first."""
    located: dict[str, tuple[Shard, int]] = {}
    for shard in shards:
        for row, key in enumerate(shard.keys):
            located.setdefault(key, (shard, row))
    return located


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
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
    child must not use the OpenMP pool its parent started, as in DataLoader workers)."""
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
    keys: list[str],
    paths: Sequence[str],
    located: dict[str, tuple[Shard, int]],
    *,
    computed: int,
    reused: int,
) -> Extracted:
    order: dict[str, int] = {}
    shards: list[Shard] = []
    shard_of = np.empty(len(keys), dtype=np.int64)
    row_of = np.empty(len(keys), dtype=np.int64)
    for index, key in enumerate(keys):
        shard, row = located[key]
        if shard.name not in order:
            order[shard.name] = len(shards)
            shards.append(shard)
        shard_of[index], row_of[index] = order[shard.name], row
    item_shape = shards[0].item_shape if shards else ()
    for shard in shards:
        if shard.item_shape != item_shape:
            first = paths[int(np.argmax(shard_of == 0))]
            other = paths[int(np.argmax(shard_of == order[shard.name]))]
            raise DataError(_shape_message(first, item_shape, other, shard.item_shape))
    logger.info(
        f"extract_features: {computed} items computed, {reused} reused, "
        f"{len(shards)} shards in {store.directory}"
    )
    return Extracted(store, shards, shard_of, row_of, item_shape, computed, reused)


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
