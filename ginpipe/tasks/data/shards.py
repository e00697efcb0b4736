"""A folder of fixed-size feature shards: ``.npy`` files plus one JSON manifest each.

One folder holds the features of one (decoder, feature function) pair; its name is their
key (see ``ginpipe.tasks.data.extraction``). Inside::

    shard-<hash>.npy    float32 array (items, *item_shape): memory-mapped by readers
    shard-<hash>.json   the manifest, written last (the commit marker): item keys, source
                        paths, the .npy's size, mtime and sha256, per-item sum and sum of
                        squares (for normalization statistics without reading the data)
    .tmp-*              files being written (ignored; removed once stale)

Why ``.npy`` shards: NumPy alone writes and memory-maps them (``np.load(mmap_mode="r")``),
so any DataLoader worker reads one item with one page-cache lookup and no copy of the
shard, without pickle and without a new dependency. zarr would add chunk compression but
decompresses a whole chunk per random item; webdataset's tar shards are read
sequentially, which does not fit the seeded random-access sampling of ``fit``.

Every file is written to a temp name in the folder, fsynced and renamed (as
ginpipe/base/atomic.py does), the manifest last: a writer killed at any instant leaves whole
shards or temp files, never a half shard that a reader takes for complete. A shard whose
file no longer matches its manifest (truncated, rewritten) is reported in one line, moved
aside and its items computed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from loguru import logger

from ginpipe import DataError
from ginpipe.tasks.engine import (
    TMP_PREFIX,
    atomic_path,
    atomic_write_json,
    file_sha256,
    fsync_dir,
    is_temp,
)

FORMAT = 1
PREFIX = "shard-"
VerifyMode = Literal["stat", "sha256"]  # extract_features.verify
VERIFY_MODES: tuple[str, ...] = get_args(VerifyMode)
KEY_DTYPE = "S32"  # an item key: 32 hex digits
STALE_TEMP_S = 3600.0  # a temp file untouched this long belongs to a dead writer


@dataclass(frozen=True)
class Shard:
    """What a manifest says about one committed shard."""

    name: str  # file stem, e.g. "shard-0a1b..."
    keys: np.ndarray  # (items,) "S32": the hex item keys as bytes (no object per item)
    item_shape: tuple[int, ...]
    sums: np.ndarray  # (items, 2) float64: sum and sum of squares of each item's values

    @property
    def file(self) -> str:
        return f"{self.name}.npy"


def item_key(path: str) -> str:
    """Identity of one input file: its path, size and modification time (no reading)."""
    try:
        stat = os.stat(path)
    except OSError as error:
        raise DataError(f"cannot read '{path}': {error.strerror}") from error
    text = f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def shard_name(keys: Sequence[str]) -> str:
    """Named after its items: the same items always land in the same file name."""
    return PREFIX + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]


class ShardStore:
    """The shards of one feature folder; safe for concurrent writers (names are by
    content, every write is atomic, duplicates of an item are harmless)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def write(self, keys: Sequence[str], paths: Sequence[str], features: np.ndarray) -> Shard:
        """Commit ``features`` (items, *item_shape) for the items ``keys``: .npy, then manifest."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        if len(features) != len(keys) or len(keys) != len(paths):
            raise ValueError(f"{len(features)} feature rows for {len(keys)} keys")
        self.directory.mkdir(parents=True, exist_ok=True)
        name = shard_name(keys)
        flat = features.reshape(len(features), -1).astype(np.float64)
        sums = np.stack([flat.sum(axis=1), (flat**2).sum(axis=1)], axis=1)
        buffer = io.BytesIO()
        np.save(buffer, features, allow_pickle=False)
        data = buffer.getbuffer()
        with atomic_path(self.directory / f"{name}.npy") as tmp:
            tmp.write_bytes(data)
            stat = tmp.stat()  # rename keeps size and mtime: they describe the final file
        manifest = {
            "format": FORMAT,
            "items": list(keys),
            "paths": list(paths),
            "item_shape": list(features.shape[1:]),
            "dtype": features.dtype.str,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": hashlib.sha256(data).hexdigest(),
            "sums": sums.tolist(),
        }
        atomic_write_json(self.directory / f"{name}.json", manifest)
        return Shard(name, np.array(keys, dtype=KEY_DTYPE), tuple(features.shape[1:]), sums)

    def scan(self, verify: str = "stat") -> list[Shard]:
        """Every committed, intact shard, sorted by name.

        ``verify="stat"`` compares each .npy's size and mtime with its manifest and hashes
        only the files that differ; ``"sha256"`` hashes every file. A shard that fails is
        reported, moved aside and left out, so its items are computed again.
        """
        if verify not in VERIFY_MODES:
            raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
        if not self.directory.is_dir():
            return []
        shards = []
        for manifest_path in sorted(self.directory.glob(f"{PREFIX}*.json")):
            shard = self._check(manifest_path, verify)
            if shard is not None:
                shards.append(shard)
        return shards

    def path(self, shard: Shard | str) -> Path:
        name = shard.name if isinstance(shard, Shard) else shard
        return self.directory / f"{name}.npy"

    def clean_temp(self, max_age_s: float = STALE_TEMP_S) -> int:
        """Remove temp files of killed writers, and .npy files whose manifest never came."""
        if not self.directory.is_dir():
            return 0
        removed = 0
        now = time.time()
        for path in self.directory.iterdir():
            orphan = path.suffix == ".npy" and not path.with_suffix(".json").exists()
            if not (is_temp(path) or orphan):
                continue
            with contextlib.suppress(FileNotFoundError):
                if now - path.stat().st_mtime > max_age_s:
                    path.unlink()
                    removed += 1
        return removed

    # --- internals ----------------------------------------------------------------------

    def _check(self, manifest_path: Path, verify: str) -> Shard | None:
        name = manifest_path.stem
        npy = manifest_path.with_suffix(".npy")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            keys = [str(key) for key in manifest["items"]]
            shape = tuple(int(side) for side in manifest["item_shape"])
            sums = np.asarray(manifest["sums"], dtype=np.float64).reshape(len(keys), 2)
            expected_size, expected_sha = int(manifest["size"]), str(manifest["sha256"])
            if manifest.get("format") != FORMAT or name != shard_name(keys):
                raise ValueError("not a manifest of this format")
        except (OSError, ValueError, KeyError, TypeError) as error:
            self._reject(name, f"its manifest is unreadable ({error})")
            return None
        try:
            stat = npy.stat()
        except FileNotFoundError:
            self._reject(name, "its .npy file is missing")
            return None
        if stat.st_size != expected_size:
            self._reject(
                name, f"it is truncated or altered ({stat.st_size} of {expected_size} bytes)"
            )
            return None
        if verify == "sha256" or stat.st_mtime_ns != manifest.get("mtime_ns"):
            if file_sha256(npy) != expected_sha:
                self._reject(name, "its content does not match its checksum")
                return None
            if stat.st_mtime_ns != manifest.get("mtime_ns"):  # same bytes, newer write
                manifest["mtime_ns"] = stat.st_mtime_ns
                with contextlib.suppress(OSError):
                    atomic_write_json(manifest_path, manifest)
        return Shard(name, np.array(keys, dtype=KEY_DTYPE), shape, sums)

    def _reject(self, name: str, reason: str) -> None:
        """One line naming the shard and why; then move it aside so nobody reads it."""
        logger.warning(
            f"feature shard '{self.directory / name}.npy' is not usable: {reason}; "
            "its items will be computed again"
        )
        for suffix in (".json", ".npy"):  # manifest first: without it the shard is not there
            path = self.directory / f"{name}{suffix}"
            trash = self.directory / f"{TMP_PREFIX}bad-{uuid.uuid4().hex}{suffix}"
            with contextlib.suppress(FileNotFoundError):
                os.rename(path, trash)
                trash.unlink()
        fsync_dir(self.directory)
        return None
