"""Errors a user can act on, each with its exit code.

The CLI prints ``str(error)`` as one line (no traceback unless ``-v``) and exits with
``error.exit_code``. Anything that is not a ``GinpipeError`` is a bug or a task failure.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_NO_SPACE = 4  # ENOSPC, EDQUOT, EFBIG: free space, then resume
EXIT_NOT_WRITABLE = 5  # EROFS, EACCES, EPERM: pick a writable --root or fix permissions
EXIT_BAD_PATH = 6  # ENOTDIR, EEXIST, EISDIR, ENAMETOOLONG, ELOOP: a path is in the way
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class GinpipeError(Exception):
    """Base class: a problem with the user's input, reported as one line."""

    exit_code = EXIT_USAGE


class ConfigError(GinpipeError):
    """A config file, include, binding or ``--mod`` is wrong.

    ``binding`` names the key at fault (``fit.monitor``) when the message does not say
    where it is set; the runner then prefixes the file and line that set it.
    """

    binding: str | None = None

    def __init__(self, message: str = "", *, binding: str | None = None) -> None:
        super().__init__(message)
        self.binding = binding


class WiringError(GinpipeError):
    """The task list reads a key that no earlier task writes (checked before any work)."""


class UndeclaredKeyError(GinpipeError):
    """A task touched a state key it did not declare."""


class DataError(GinpipeError):
    """Input data is missing, malformed or empty (a column, a file, a split)."""


class RunDirError(GinpipeError):
    """The run directory cannot be used as asked (e.g. same name, other config)."""


class RunLockedError(RunDirError):
    """Another live process holds the run directory."""

    exit_code = EXIT_LOCKED


class DamagedRunError(RunDirError):
    """A run directory's own files (run.json, config.gin, resolved.gin) are unreadable."""


class PathError(GinpipeError):
    """The operating system refused a file operation; see ``ginpipe.base.oserrors``.

    One subclass per kind of remedy, each with its exit code as a class attribute (gin
    re-raises a task's error as a proxy that skips ``__init__``: only class attributes
    survive it).
    """

    exit_code = EXIT_BAD_PATH


class NoSpaceError(PathError):
    """The disk (or quota, or file size limit) is full: free space, then resume."""

    exit_code = EXIT_NO_SPACE


class NotWritableError(PathError):
    """A read-only file system or missing permission."""

    exit_code = EXIT_NOT_WRITABLE


class CheckpointError(GinpipeError):
    """A checkpoint is corrupt or does not fit the configured model."""


class TaskFailed(Exception):
    """A task raised; carries the task name. Exit code 1, details in run.json."""

    exit_code = EXIT_TASK_FAILED

    def __init__(self, task: str, cause: BaseException) -> None:
        super().__init__(f"task '{task}' failed: {type(cause).__name__}: {cause}")
        self.task = task
        self.cause = cause


class Interrupted(BaseException):
    """SIGINT/SIGTERM reached the run; the state was saved and the run can be resumed."""

    def __init__(self, signum: int) -> None:
        import signal

        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}")
        self.signum = signum
        self.exit_code = EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_TERMINATED
