"""Content-addressed store of task outputs, shared by runs and processes.

One entry holds the outputs of one task execution, addressed by a key the caller derives
from everything that determines them. Layout::

    root/objects/<key[:2]>/<key>/<files>   encoded outputs (see ginpipe.core.codecs)
    root/objects/<key[:2]>/<key>/manifest.json   written last: the commit marker
    root/.tmp-*                            entries being written, or trash being deleted

An entry is built in a temp dir inside the root and renamed into place in one step, so a
reader sees a whole entry or none, whatever writers are killed or racing. Readers check
every file against the manifest's sha256 before decoding; a bad entry is moved aside (a
rename, so a concurrent reader never sees it half deleted) and counts as a miss.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ginpipe.base.atomic import TMP_PREFIX, UMASK, atomic_write_json, fsync_dir, is_temp
from ginpipe.base.errors import GinpipeError
from ginpipe.base.oserrors import path_error, reported
from ginpipe.core import codecs, run_files

CACHE_DIR = ".cache"  # ROOT/.cache: one store shared by every project of a root

FORMAT = 1
MANIFEST = "manifest.json"
_KEY_RE = re.compile(r"[0-9a-f]{8,128}")
_TRASH = f"{TMP_PREFIX}trash-"
_PUBLISH_ATTEMPTS = 20


class CorruptArtifact(GinpipeError):
    """A stored output is missing, altered or undecodable; treat it as a cache miss."""


@dataclass(frozen=True)
class Entry:
    """What the manifest says about one stored task execution."""

    key: str
    task: str
    created: float
    names: tuple[str, ...]
    transient: tuple[str, ...]
    meta: dict[str, Any]
    size: int
    last_used: float
    path: Path


@dataclass(frozen=True)
class SaveResult:
    """``reused`` is True when a valid entry already existed and was kept."""

    key: str
    stored: tuple[str, ...]
    transient: tuple[str, ...]
    bytes_written: int
    reused: bool = False


class ArtifactStore:
    """Cross-run cache of task outputs under ``root``; safe for concurrent processes."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"

    # --- writing ------------------------------------------------------------------------

    def save(
        self,
        key: str,
        outputs: dict[str, Any],
        *,
        task: str,
        meta: dict[str, Any] | None = None,
        pickle_ok: Iterable[str] = (),
        files: Iterable[tuple[str, Path, str]] = (),
    ) -> SaveResult:
        """Store ``outputs`` under ``key``; values without a safe codec are listed transient.

        Pickle is used only for the names in ``pickle_ok``. If another writer already
        committed this key, its entry is kept and this one discarded. ``files``: run files
        kept with the entry (``ginpipe.core.run_files``).
        """
        final = self._entry_dir(key)
        pickle_names = set(pickle_ok)
        existing = self._read_manifest(final, key)
        if existing is not None:
            if self._loadable(final, existing, pickle_names):
                return self._reused(key, final, existing)
            # e.g. it records pickle this task does not allow: it would fail every run
            self._discard_if_same(key, existing["nonce"])
        with reported(self.root, "write the cache entry in"):
            return self._save_new(key, final, outputs, task, meta, pickle_names, files)

    def _save_new(
        self,
        key: str,
        final: Path,
        outputs: dict[str, Any],
        task: str,
        meta: dict[str, Any] | None,
        pickle_names: set[str],
        files: Iterable[tuple[str, Path, str]] = (),
    ) -> SaveResult:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{key[:12]}-", dir=self.root))
        os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp makes 0700; a cache is shared by runs
        try:
            manifest = self._build(tmp, key, outputs, task, meta or {}, pickle_names, files)
            written = _dir_size(tmp)
            if not _publish(tmp, final, lambda: self._read_manifest(final, key) is not None):
                self._discard(tmp)
                existing = self._read_manifest(final, key)
                if existing is not None:
                    return self._reused(key, final, existing)
                # someone else published then removed it; ours is gone: report as not stored
                return SaveResult(key, (), tuple(outputs), 0)
        except BaseException:
            self._discard(tmp)
            raise
        fsync_dir(final.parent)
        stored = tuple(manifest["outputs"])
        return SaveResult(key, stored, tuple(manifest["transient"]), written)

    def _build(
        self,
        tmp: Path,
        key: str,
        outputs: dict[str, Any],
        task: str,
        meta: dict[str, Any],
        pickle_names: set[str],
        files: Iterable[tuple[str, Path, str]] = (),
    ) -> dict[str, Any]:
        """Encode every output into ``tmp`` and write the manifest last."""
        records: dict[str, Any] = {}
        transient: list[str] = []
        for index, (name, value) in enumerate(outputs.items()):
            base = f"{index:03d}-{_slug(name)}"
            record = codecs.encode(value, tmp, base, allow_pickle=name in pickle_names)
            if record is None:
                transient.append(name)
                continue
            checksums = {}
            for file_name in codecs.record_files(record):
                digest, size = _digest(tmp / file_name, fsync=True)
                checksums[file_name] = {"sha256": digest, "size": size}
            records[name] = {"record": record, "files": checksums}
        manifest = {
            "format": FORMAT,
            "key": key,
            "task": task,
            "created": time.time(),
            "nonce": uuid.uuid4().hex,
            "outputs": records,
            "transient": transient,
            "meta": meta,
            "run_files": run_files.keep(files, tmp),
        }
        atomic_write_json(tmp / MANIFEST, manifest)
        fsync_dir(tmp)
        return manifest

    def _reused(self, key: str, path: Path, manifest: dict[str, Any]) -> SaveResult:
        _touch(path)
        return SaveResult(
            key, tuple(manifest["outputs"]), tuple(manifest["transient"]), 0, reused=True
        )

    # --- reading ------------------------------------------------------------------------

    def lookup(self, key: str) -> Entry | None:
        """The entry for ``key``, or None if it is missing, unreadable or of another format."""
        path = self._entry_dir(key)
        entry = _entry(path, self._read_manifest(path, key))
        if entry is not None:
            _touch(path)
        return entry

    def load(self, key: str, name: str, *, allow_pickle: bool = False) -> Any:
        """Decode output ``name`` after checking its files; ``CorruptArtifact`` on any fault.

        A corrupt entry is removed so the next ``save`` can replace it. ``KeyError`` if the
        entry has no stored output ``name`` (e.g. it was transient).
        """
        path = self._entry_dir(key)
        manifest = self._read_manifest(path, key)
        if manifest is None:
            raise CorruptArtifact(f"artifact {key[:12]} is missing or unreadable")
        if name not in manifest["outputs"]:
            raise KeyError(f"artifact {key[:12]} has no stored output {name!r}")
        output = manifest["outputs"][name]
        try:
            _check_files(path, output)
            value = codecs.decode(output["record"], path, allow_pickle=allow_pickle)
        except Exception as error:
            # Whatever the reason (damage, a pickle the task does not allow, a codec that
            # cannot be imported), an entry that cannot be loaded is a miss: it is removed
            # so the task runs again and stores a fresh one.
            self._discard_if_same(key, manifest["nonce"])
            raise CorruptArtifact(f"artifact {key[:12]} output {name!r}: {error}") from error
        _touch(path)
        return value

    def restore_run_files(self, key: str, run_dir: Path) -> list[str]:
        """Put the run files kept with ``key`` into ``run_dir`` (those it lacks)."""
        path = self._entry_dir(key)
        manifest = self._read_manifest(path, key)
        record = (manifest or {}).get("run_files") or {}
        return run_files.restore(path, record, run_dir) if record else []

    def check_usable(self) -> None:
        """Fail before any work if ``root`` cannot hold a cache (e.g. a file is there)."""
        for path in (self.root, self.objects):
            if path.exists() and not path.is_dir():
                raise path_error(OSError(errno.ENOTDIR, "Not a directory"), path, "use cache")
            if path.is_symlink():
                raise path_error(OSError(errno.ELOOP, "symlink"), path, "use cache")

    def _loadable(self, path: Path, manifest: dict[str, Any], pickle_names: set[str]) -> bool:
        """Every stored output passes its checksums and needs no pickle it may not use."""
        try:
            for name, output in manifest["outputs"].items():
                if name not in pickle_names and codecs.needs_pickle(output["record"]):
                    return False
                _check_files(path, output)
        except (CorruptArtifact, OSError, KeyError, TypeError, AttributeError):
            return False
        return True

    def verify(self, key: str) -> bool:
        """True if the entry exists and every file matches its checksum."""
        path = self._entry_dir(key)
        manifest = self._read_manifest(path, key)
        if manifest is None:
            return False
        try:
            for output in manifest["outputs"].values():
                _check_files(path, output)
        except (CorruptArtifact, OSError, KeyError, TypeError, AttributeError):
            return False
        return True

    # --- housekeeping -------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """All valid entries (temp dirs and unreadable entries are skipped)."""
        found = []
        for path in self._entry_dirs():
            entry = _entry(path, self._read_manifest(path, path.name))
            if entry is not None:
                found.append(entry)
        return found

    def delete(self, key: str) -> bool:
        """Remove the entry for ``key``; False if there was none."""
        return self._discard(self._entry_dir(key))

    def prune(
        self,
        *,
        older_than: float | None = None,
        max_bytes: int | None = None,
        dry_run: bool = False,
    ) -> list[Entry]:
        """Remove entries unused for ``older_than`` seconds, then least recently used ones
        until the total is at most ``max_bytes``. Returns the removed (or, dry, doomed) ones.
        """
        by_age = sorted(self.entries(), key=lambda entry: entry.last_used)
        now = time.time()
        doomed: list[Entry] = []
        kept: list[Entry] = []
        for entry in by_age:
            stale = older_than is not None and now - entry.last_used > older_than
            (doomed if stale else kept).append(entry)
        if max_bytes is not None:
            total = sum(entry.size for entry in kept)
            while kept and total > max_bytes:
                entry = kept.pop(0)
                doomed.append(entry)
                total -= entry.size
        if not dry_run:
            for entry in doomed:
                self._discard(entry.path)
        return doomed

    def clean_temp(self, max_age_s: float = 3600) -> list[Path]:
        """Remove temp dirs of writers killed mid-save (idle ``max_age_s``) and old trash.

        A temp dir still being filled has fresh mtimes, so a live writer is left alone.
        """
        if not self.root.is_dir():
            return []
        removed = []
        now = time.time()
        for path in self.root.iterdir():
            if not is_temp(path):
                continue
            trash = path.name.startswith(_TRASH)
            if trash or now - _newest_mtime(path) > max_age_s:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    # --- internals ----------------------------------------------------------------------

    def _entry_dir(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise ValueError(f"artifact key must be lowercase hex: {key!r}")
        return self.objects / key[:2] / key

    def _entry_dirs(self) -> list[Path]:
        if not self.objects.is_dir():
            return []
        paths: list[Path] = []
        for shard in sorted(self.objects.iterdir()):
            if shard.is_dir() and not is_temp(shard):
                paths.extend(p for p in sorted(shard.iterdir()) if p.is_dir() and not is_temp(p))
        return paths

    def _read_manifest(self, path: Path, key: str) -> dict[str, Any] | None:
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        valid = (
            isinstance(manifest, dict)
            and manifest.get("format") == FORMAT
            and manifest.get("key") == key
            and isinstance(manifest.get("outputs"), dict)
            and isinstance(manifest.get("transient"), list)
            and isinstance(manifest.get("nonce"), str)
        )
        return manifest if valid else None

    def _discard(self, path: Path) -> bool:
        """Rename ``path`` into the trash, then delete it: readers never see it half gone."""
        trash = self.root / f"{_TRASH}{uuid.uuid4().hex}"
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return False
        except OSError:  # e.g. cross-device or a busy dir: delete in place as a last resort
            shutil.rmtree(path, ignore_errors=True)
            return True
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def _discard_if_same(self, key: str, nonce: str) -> None:
        """Discard the entry only if it is still the one found bad, not a fresh rewrite."""
        path = self._entry_dir(key)
        manifest = self._read_manifest(path, key)
        if manifest is None or manifest["nonce"] == nonce:
            with contextlib.suppress(OSError):
                self._discard(path)


def _publish(tmp: Path, final: Path, final_is_valid: Callable[[], bool]) -> bool:
    """Rename ``tmp`` onto ``final``; False if a valid entry is already there.

    An invalid ``final`` (corrupt, older format) is moved aside first. Renaming a dir onto
    a non-empty one fails, so two writers can never interleave their files.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(_PUBLISH_ATTEMPTS):
        try:
            os.rename(tmp, final)
            return True
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise
        if final_is_valid():
            return False
        bad = tmp.parent / f"{_TRASH}{uuid.uuid4().hex}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(final, bad)
            shutil.rmtree(bad, ignore_errors=True)
    return False


def _check_files(path: Path, output: dict[str, Any]) -> None:
    for name in codecs.record_files(output["record"]):
        expected = output["files"].get(name)
        if expected is None or Path(name).name != name:
            raise CorruptArtifact(f"file {name!r} is not listed in the manifest")
        try:
            digest, size = _digest(path / name)
        except FileNotFoundError as error:
            raise CorruptArtifact(f"file {name!r} is missing") from error
        if size != expected["size"] or digest != expected["sha256"]:
            raise CorruptArtifact(f"file {name!r} does not match its checksum")


def _digest(path: Path, *, fsync: bool = False) -> tuple[str, int]:
    """sha256 and size of a file; ``fsync`` also makes the freshly written file durable."""
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
        if fsync:
            os.fsync(f.fileno())
    return sha.hexdigest(), size


def _entry(path: Path, manifest: dict[str, Any] | None) -> Entry | None:
    """The manifest as an Entry; None if there is none or it is malformed."""
    if manifest is None:
        return None
    try:
        size = sum(
            int(info["size"])
            for output in manifest["outputs"].values()
            for info in output["files"].values()
        ) + run_files.size(manifest.get("run_files") or {})
        created = float(manifest.get("created", 0.0))
        meta = dict(manifest.get("meta") or {})
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    manifest_path = path / MANIFEST
    try:
        stat = manifest_path.stat()
        size += stat.st_size
        last_used = stat.st_mtime
    except OSError:
        last_used = created
    return Entry(
        key=manifest["key"],
        task=str(manifest.get("task", "")),
        created=created,
        names=tuple(manifest["outputs"]),
        transient=tuple(manifest["transient"]),
        meta=meta,
        size=size,
        last_used=last_used,
        path=path,
    )


def _touch(path: Path) -> None:
    """Mark the entry used now (manifest mtime), for pruning by last use; best effort."""
    with contextlib.suppress(OSError):
        os.utime(path / MANIFEST)


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:48]
    return slug or "out"


def _dir_size(path: Path) -> int:
    return sum(child.stat().st_size for child in path.iterdir() if child.is_file())


def _newest_mtime(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir():
        with contextlib.suppress(OSError):
            for child in path.iterdir():
                with contextlib.suppress(OSError):
                    newest = max(newest, child.lstat().st_mtime)
    return newest
