"""A run directory as its readers see it: file names, its root, ``run.json``, the lock probe.

``ROOT/PROJECT/NAME`` holds everything a run is: ``config.gin`` (the composed text, which
resumes and DDP children parse again), ``resolved.gin`` (every binding, canonical),
``overrides.txt``, ``run.json``, ``run.log``, ``operative.gin`` (written at the end), and
what tasks put there (checkpoints, logs, metrics, plots). Writing them is the runner's
(``ginpipe/runs/rundir.py``); these names and readers are shared with ``ginpipe.records``.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ginpipe.base.errors import DamagedRunError, RunDirError
from ginpipe.base.oserrors import path_error

CONFIG = "config.gin"
RESOLVED = "resolved.gin"
OVERRIDES = "overrides.txt"
OPERATIVE = "operative.gin"
RUN_JSON = "run.json"
LOCK = ".lock"
GIT_DIFF = "git.diff"
# A folder of runs inside a project (a sweep: ROOT/PROJECT/SWEEP/NAME) holds this file.
GROUP_FILE = "sweep.json"


def root_of(run_dir: Path) -> Path:
    """The root a run directory belongs to (its cache is ``ROOT/.cache``): two levels up,
    three for a run inside a folder of runs (``ROOT/PROJECT/SWEEP/NAME``)."""
    if (run_dir.parent / GROUP_FILE).is_file():
        return run_dir.parent.parent.parent
    return run_dir.parent.parent


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def project(self) -> str:
        return self.path.parent.name

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self) -> bool:
        return self.file(CONFIG).is_file()

    def read_json(self) -> dict[str, Any]:
        """``run.json`` ({} before the first one); ``DamagedRunError`` if it is unusable."""
        return load_run_json(self.path)

    def config_text(self) -> str:
        return read_text_file(self.file(CONFIG))


def read_text_file(path: Path) -> str:
    """A run's own text file; undecodable bytes make the run damaged, not a traceback."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DamagedRunError(
            f"{path} is damaged (not UTF-8 text at byte {error.start}); "
            "restore it, or start another --name"
        ) from None
    except OSError as error:
        raise path_error(error, path, "read") from error


def load_run_json(path: Path) -> dict[str, Any]:
    """``path/run.json`` as a dict; {} if absent (killed before its first write)."""
    file = path / RUN_JSON
    try:
        data = json.loads(file.read_bytes())
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise path_error(error, file, "read") from error
    except ValueError as error:
        raise DamagedRunError(
            f"{file} is damaged (not JSON: {error}); move it aside to continue the run"
        ) from None
    if not isinstance(data, dict):
        raise DamagedRunError(
            f"{file} is damaged (JSON {_json_kind(data)}, not an object); "
            "move it aside to continue the run"
        )
    return data


def _json_kind(data: Any) -> str:
    return "null" if data is None else f"a {type(data).__name__}"


def read_run_json(path: Path) -> dict[str, Any]:
    """Lenient ``run.json`` for listings: {} when absent or damaged."""
    try:
        return load_run_json(path)
    except (DamagedRunError, OSError, RunDirError):
        return {}


def is_locked(path: Path) -> bool:
    """Whether a live process holds ``path/.lock``, without writing anything.

    Opened read-only (never created, truncated or followed through a link); a shared
    ``flock`` probe fails while the writer holds its exclusive lock.
    """
    try:
        fd = os.open(path / LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False
