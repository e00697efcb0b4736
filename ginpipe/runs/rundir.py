"""Writing a run directory: its name, its lock, its config files and ``run.json``.

The layout and its readers (file names, ``RunDir``, ``run.json`` read back, the lock probe)
live in ``ginpipe/layout/rundir.py``, shared with ``ginpipe.records``; they are re-exported
here, so the runner's modules name one module for their run directory.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import fcntl
import hashlib
import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ginpipe.base.atomic import TMP_PREFIX, atomic_write_bytes, atomic_write_json, atomic_write_text
from ginpipe.base.errors import RunDirError, RunLockedError
from ginpipe.base.oserrors import path_error, reported
from ginpipe.core.events import Observer, TaskEvent
from ginpipe.layout.rundir import (
    CONFIG,
    GIT_DIFF,
    GROUP_FILE,
    LOCK,
    OPERATIVE,
    OVERRIDES,
    RESOLVED,
    RUN_JSON,
    RunDir,
    is_locked,
    load_run_json,
    read_run_json,
    read_text_file,
    root_of,
)

# The layout's names (ginpipe/layout/rundir.py) with this module's own.
__all__ = [
    "CONFIG",
    "GIT_DIFF",
    "GROUP_FILE",
    "LOCK",
    "OPERATIVE",
    "OVERRIDES",
    "RESOLVED",
    "RUN_JSON",
    "RunDir",
    "RunLock",
    "RunRecord",
    "check_contained",
    "check_intact",
    "check_no_symlinks",
    "check_same_config",
    "create_unique",
    "generated_name",
    "is_locked",
    "load_run_json",
    "make_run_dir",
    "now_iso",
    "open_nofollow",
    "read_config_files",
    "read_run_json",
    "read_text_file",
    "remove_leftovers",
    "restore_config_files",
    "root_of",
    "write_config_files",
]


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def generated_name(digest: str) -> str:
    """Date-time plus a short config hash: sortable, and readable in a listing."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{digest[:6]}"


def check_intact(run: RunDir) -> None:
    """Before a resume: its config, bindings and record are readable."""
    load_run_json(run.path)
    for name in (CONFIG, RESOLVED):
        if run.file(name).is_file():
            read_text_file(run.file(name))


def check_no_symlinks(run: RunDir) -> None:
    """A run writes only inside its directory: a symbolic link in it would send writes (or
    a lock's truncation) elsewhere, so it is refused before anything is written."""
    for folder, dirs, files in os.walk(run.path, followlinks=False):
        for name in (*dirs, *files):
            path = Path(folder) / name
            if path.is_symlink():
                raise RunDirError(
                    f"{path} is a symbolic link, which run files never follow; "
                    "replace it with a plain file or folder (or remove it)"
                )


def check_contained(root: Path, path: Path) -> None:
    """The folders between ``root`` and ``path`` (project, group, run) are real folders: a
    symbolic link among them (a project folder linked elsewhere) would put runs outside
    the root."""
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            raise RunDirError(
                f"{current} is a symbolic link; runs are written only inside {root}: "
                "make it a real folder, or pass --root where the runs should go"
            )


def make_run_dir(path: Path) -> None:
    """``mkdir -p`` of a run directory, with a one-line error naming the culprit."""
    if path.is_symlink():
        raise RunDirError(
            f"run directory {path} is a symbolic link; runs write only in real folders"
        )
    with reported(path, "create run directory"):
        path.mkdir(parents=True, exist_ok=True)


def open_nofollow(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses a symbolic link at ``path`` (``O_NOFOLLOW``)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise RunDirError(
                f"{path} is a symbolic link, which run files never follow; "
                "replace it with a plain file (or remove it)"
            ) from None
        raise path_error(error, path, "open") from error


def create_unique(parent: Path, name: str) -> Path:
    """Make ``parent/name`` (or ``name-2``, ``name-3``...) atomically: never share a dir."""
    make_run_dir(parent)
    for i in range(1, 1000):
        candidate = parent / (name if i == 1 else f"{name}-{i}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
        except OSError as error:
            raise path_error(error, candidate, "create run directory") from error
    raise RunDirError(f"cannot find a free run name like {name} in {parent}")


def check_same_config(run: RunDir, digest: str, bindings: str) -> None:
    """Same name + same config continues; same name + another config is refused."""
    recorded = run.read_json().get("config_digest")
    if recorded is None and run.file(RESOLVED).is_file():
        # Killed before its first run.json: resolved.gin holds exactly the digested text.
        recorded = hashlib.sha256(run.file(RESOLVED).read_bytes()).hexdigest()
    if recorded is None or recorded == digest:
        return
    old = read_text_file(run.file(RESOLVED)).splitlines() if run.file(RESOLVED).exists() else []
    diff = [
        line
        for line in difflib.unified_diff(old, bindings.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    shown = "; ".join(diff[:6]) + (" ..." if len(diff) > 6 else "")
    raise RunDirError(
        f"run '{run.path}' exists with a different config ({shown}); "
        "pick another --name, or continue it with: ginpipe resume "
        f"{run.path} --mod ..."
    )


def write_config_files(run: RunDir, text: str, bindings: str, mods: list[str]) -> None:
    for name, content in ((CONFIG, text), (RESOLVED, bindings)):
        with reported(run.file(name), "write"):
            atomic_write_text(run.file(name), content)
    with reported(run.file(OVERRIDES), "write"):
        atomic_write_text(run.file(OVERRIDES), "".join(f"{m}\n" for m in mods))


def remove_leftovers(run: RunDir) -> list[Path]:
    """Delete temp files of writers killed mid-write (checkpoints, logs, run files).

    Only called while holding the run's lock, so no live writer can own them.
    """
    removed = []
    for path in run.path.rglob(f"{TMP_PREFIX}*"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def read_config_files(run: RunDir) -> dict[str, bytes]:
    """The saved config, to put back if a resume that changes it is refused."""
    names = (CONFIG, RESOLVED, OVERRIDES)
    return {n: run.file(n).read_bytes() for n in names if run.file(n).is_file()}


def restore_config_files(run: RunDir, saved: dict[str, bytes]) -> None:
    for name, data in saved.items():
        atomic_write_bytes(run.file(name), data)
    record = run.read_json()
    if record and RESOLVED in saved:
        record["config_digest"] = hashlib.sha256(saved[RESOLVED]).hexdigest()
        atomic_write_json(run.file(RUN_JSON), record)


class RunLock:
    """An exclusive ``flock`` on ``RUN/.lock``: one writer per run directory.

    The kernel drops the lock when its process dies, even by ``kill -9``, so a stale lock
    recovers by itself; the file only tells who holds it.
    """

    def __init__(self, run: RunDir) -> None:
        self.path = run.file(LOCK)
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunLockedError(
                f"run directory {self.path.parent} is in use by {holder}; "
                "wait for it to finish or stop it first"
            ) from None
        self._fd = fd
        record = f"pid {os.getpid()} on {socket.gethostname()} since {now_iso()}".encode()
        with contextlib.suppress(OSError):  # who holds it is a courtesy; a full disk is not fatal
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunRecord(Observer):
    """Keeps ``run.json`` true after every event, written atomically each time."""

    def __init__(self, run: RunDir, base: dict[str, Any], started_at: float | None = None) -> None:
        """``started_at``: when this attempt was asked for (``time.monotonic``); the
        record's creation if not given."""
        self.run = run
        previous = run.read_json()
        self.data: dict[str, Any] = {**base}
        self.data["attempts"] = previous.get("attempts", 0) + 1
        self.data["first_started"] = previous.get("first_started") or now_iso()
        self.data["history"] = previous.get("history", [])
        if previous.get("status") == "running":  # its process died without a word
            self.data["history"].append(
                {
                    "attempt": previous.get("attempts"),
                    "status": "stopped",
                    "started": previous.get("started"),
                    "ended": None,
                }
            )
        self._t0 = time.monotonic() if started_at is None else started_at
        # Wall time of the earlier attempts that said how long they took (an attempt killed
        # by kill -9 could not, and counts nothing).
        self._earlier_s = sum(
            float(h["duration_s"])
            for h in self.data["history"]
            if isinstance(h, dict) and isinstance(h.get("duration_s"), (int, float))
        )

    def save(self) -> None:
        """Atomically; on a full disk, in place as a last resort (the old record's blocks
        are reused), so that ``run.json`` still tells how the run ended."""
        path = self.run.file(RUN_JSON)
        try:
            atomic_write_json(path, self.data)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT) or not _overwrite(path, self.data):
                raise path_error(error, path, "write") from error

    def on_run_start(self, run: dict[str, Any]) -> None:
        self.data.update(status="running", started=now_iso(), ended=None, error=None, tasks=[])
        self.save()

    def _task(self, event: TaskEvent) -> dict[str, Any]:
        entry = {
            "name": event.task,
            "status": event.status,
            "seconds": round(event.seconds, 4),
            "key": event.key[:16],
            **event.detail,
        }
        if event.error:
            entry["error"] = event.error
        return entry

    def on_task_end(self, event: TaskEvent) -> None:
        self.data["tasks"].append(self._task(event))
        self.save()

    def on_task_failed(self, event: TaskEvent) -> None:
        self.data["tasks"].append(self._task(event))
        self.data["error"] = {"task": event.task, "message": event.error}
        self.save()

    def on_run_end(self, run: dict[str, Any]) -> None:
        # the total is the rounded attempts summed, so the history adds up to it
        duration = round(time.monotonic() - self._t0, 3)
        self.data.update(
            status=run["status"],
            ended=now_iso(),
            # the run's wall time, every attempt together (``attempt_duration_s``: this one)
            duration_s=round(self._earlier_s + duration, 3),
            attempt_duration_s=duration,
            exit_code=run.get("exit_code"),
        )
        if run.get("error") and not self.data.get("error"):
            self.data["error"] = {"task": None, "message": run["error"]}
        if run.get("metrics"):
            self.data["metrics"] = run["metrics"]
        self.data["history"].append(
            {
                "attempt": self.data["attempts"],
                "status": run["status"],
                "started": self.data.get("started"),
                "ended": self.data["ended"],
                "duration_s": duration,
            }
        )
        self.save()


def _overwrite(path: Path, data: dict[str, Any]) -> bool:
    """Rewrite ``path`` in place (no temp file); True if it worked."""
    text = (json.dumps(data, indent=2, default=str) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.pwrite(fd, text, 0)
        os.ftruncate(fd, len(text))
        os.fsync(fd)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True
