"""Atomic file writes: a reader sees the old file or the new one, never half of one.

The temp file lives in the destination's directory (``os.replace`` is atomic only within
one filesystem), is fsynced before the rename, and the directory is fsynced after it, so a
kill or power loss at any instant leaves either version intact.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

TMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(dest: Path | str) -> Iterator[Path]:
    """Yield a temp path beside ``dest``; on success fsync it and move it over ``dest``.

    For writers that want a path (``torch.save``, ``df.to_parquet``, ``savefig``).
    On an exception the temp file is removed and ``dest`` is untouched.
    """
    dest = Path(dest)
    with _named_as(dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A suffix even when ``dest`` has none: writers that name things after the file's
        # stem (torch.jit.save's archive folder) refuse a stem-less ".tmp-xyz".
        suffix = dest.suffix or ".tmp"
        fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=dest.parent)
        os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; results are meant to be shared
    try:
        with _named_as(dest):
            yield tmp
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, dest)
            fsync_dir(dest.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG}


@contextlib.contextmanager
def _named_as(dest: Path) -> Iterator[None]:
    """An ``OSError`` about the temp file (a read-only folder, a full disk) names ``dest``:
    the file the user asked for, not a temp name that is gone once the error is shown."""
    try:
        yield
    except OSError as error:
        named = error.filename
        about_temp = named is not None and Path(os.fsdecode(named)).name.startswith(TMP_PREFIX)
        unnamed_write = named is None and error.errno in _WRITE_ERRORS
        if not (about_temp or unnamed_write):
            raise
        raise OSError(error.errno, error.strerror, str(dest)) from error


def atomic_write(dest: Path | str, write: Callable[[IO[Any]], object], mode: str = "w") -> None:
    """Write ``dest`` atomically by calling ``write(file)`` on a temp file beside it."""
    with atomic_path(dest) as tmp, open(tmp, mode) as f:
        write(f)
        f.flush()


def atomic_write_text(dest: Path | str, text: str) -> None:
    atomic_write(dest, lambda f: f.write(text))


def atomic_write_bytes(dest: Path | str, data: bytes) -> None:
    atomic_write(dest, lambda f: f.write(data), mode="wb")


def atomic_write_json(dest: Path | str, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"
    atomic_write_text(dest, text)


def is_temp(path: Path) -> bool:
    """True for leftovers of an interrupted atomic write; readers must ignore them."""
    return path.name.startswith(TMP_PREFIX)


def file_sha256(path: Path | str) -> str:
    """sha256 of a file, read in 1 MiB chunks: what manifests record to check a file later."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
