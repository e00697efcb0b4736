"""Operating-system errors as one line: the path, what happened, what to do.

A full disk, a read-only mount or a file where a folder should be is not a bug in a task:
the user needs the path and the remedy, and a script needs an exit code that says which
kind of remedy (README, "Exit codes"). Every place that writes run or cache files turns an
``OSError`` into a ``PathError`` through ``path_error``; the CLI does it for any that slip
through.
"""

from __future__ import annotations

import errno as errnos
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ginpipe.base.errors import (
    EXIT_BAD_PATH,
    EXIT_NO_SPACE,
    EXIT_NOT_WRITABLE,
    NoSpaceError,
    NotWritableError,
    PathError,
)

# errno -> (exit code, what happened, what to do)
_KINDS: dict[int, tuple[int, str, str]] = {
    errnos.ENOSPC: (EXIT_NO_SPACE, "no space left on the device", "free space, then resume"),
    errnos.EDQUOT: (EXIT_NO_SPACE, "disk quota exceeded", "free space, then resume"),
    errnos.EFBIG: (EXIT_NO_SPACE, "file size limit exceeded", "raise the limit, then resume"),
    errnos.EROFS: (
        EXIT_NOT_WRITABLE,
        "read-only file system",
        "use a writable --root (or copy the run there)",
    ),
    errnos.EACCES: (
        EXIT_NOT_WRITABLE,
        "permission denied",
        "fix the permissions or use another --root",
    ),
    errnos.EPERM: (
        EXIT_NOT_WRITABLE,
        "operation not permitted",
        "fix the permissions or use another --root",
    ),
    errnos.ENOTDIR: (
        EXIT_BAD_PATH,
        "a file is in the way where a folder is needed",
        "move the file away or pick another --root/--project/--name",
    ),
    errnos.EEXIST: (
        EXIT_BAD_PATH,
        "a file already exists where a folder is needed",
        "move it away or pick another --name",
    ),
    errnos.EISDIR: (
        EXIT_BAD_PATH,
        "a folder is in the way where a file is needed",
        "move the folder away",
    ),
    errnos.ENAMETOOLONG: (
        EXIT_BAD_PATH,
        "file name too long",
        "use a shorter --name/--project or a shorter --root",
    ),
    errnos.ELOOP: (
        EXIT_BAD_PATH,
        "it is a symbolic link, which run files never follow",
        "replace the link with a plain file or folder",
    ),
}
HANDLED = frozenset(_KINDS)


# The storage itself failed (not the task's logic): the run stops with the storage's exit
# code and a remedy, wherever the write happened (a task, a worker of its pool).
STORAGE_ERRNOS = frozenset({errnos.ENOSPC, errnos.EDQUOT, errnos.EFBIG, errnos.EROFS})


# numpy's writers report a full device as a short write, with no errno:
# "OSError: 200000 requested and 8176 written".
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def errno_of(error: OSError) -> int | None:
    """The error number, also for a short write (a full device) that carries none."""
    if error.errno is None and _SHORT_WRITE.search(str(error)):
        return errnos.ENOSPC
    return error.errno


def is_storage_error(error: BaseException) -> bool:
    return isinstance(error, OSError) and errno_of(error) in STORAGE_ERRNOS


def path_error(error: OSError, path: Path | str | None = None, doing: str = "") -> PathError:
    """One line for ``error``: ``cannot <doing> <path>: <what happened>; <what to do>``.

    Errors of other kinds keep their own text, with exit code ``EXIT_BAD_PATH``.
    """
    where = path if path is not None else (error.filename or "")
    code, what, todo = _KINDS.get(
        errno_of(error) or 0, (EXIT_BAD_PATH, error.strerror or str(error), "check the path")
    )
    verb = f"cannot {doing} " if doing else "cannot use "
    kind = {EXIT_NO_SPACE: NoSpaceError, EXIT_NOT_WRITABLE: NotWritableError}.get(code, PathError)
    return kind(f"{verb}{where}: {what}; {todo}")


@contextmanager
def reported(path: Path | str | None = None, doing: str = "") -> Iterator[None]:
    """Turn an ``OSError`` raised inside into a ``PathError`` naming ``path``."""
    try:
        yield
    except PathError:
        raise
    except OSError as error:
        raise path_error(error, path, doing) from error


def check_component(value: str, option: str) -> None:
    """A ``--name``/``--project`` is one plain folder name: no separators, not ``..``,
    and short enough for the file system (checked before anything is created)."""
    from ginpipe.base.errors import ConfigError

    if not value or "/" in value or "\\" in value or value in (".", ".."):
        raise ConfigError(f"{option} must be a plain folder name, got {value!r}")
    if not value.isprintable() or value != value.strip():
        # a newline or escape in a folder name breaks every listing and shell that shows it
        raise ConfigError(f"{option} must be printable, without surrounding spaces, got {value!r}")
    if len(os.fsencode(value)) > 255:
        raise PathError(
            f"cannot use {option} {value[:40]}...: file name too long "
            f"({len(os.fsencode(value))} bytes, at most 255); use a shorter {option}"
        )
