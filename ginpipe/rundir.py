"""The run directory: its name, its files, its lock, and ``run.json``.

``ROOT/PROJECT/NAME`` holds everything a run is: ``config.gin`` (the composed text, which
resumes and DDP children parse again), ``resolved.gin`` (every binding, canonical),
``overrides.txt``, ``run.json``, ``run.log``, ``operative.gin`` (written at the end), and
what tasks put there (checkpoints, logs, metrics, plots).
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ginpipe.atomic import TMP_PREFIX, atomic_write_bytes, atomic_write_json, atomic_write_text
from ginpipe.errors import RunDirError, RunLockedError
from ginpipe.events import Observer, TaskEvent

CONFIG = "config.gin"
RESOLVED = "resolved.gin"
OVERRIDES = "overrides.txt"
OPERATIVE = "operative.gin"
RUN_JSON = "run.json"
LOCK = ".lock"
GIT_DIFF = "git.diff"


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def generated_name(digest: str) -> str:
    """Date-time plus a short config hash: sortable, and readable in a listing."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{digest[:6]}"


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
        return read_run_json(self.path)

    def config_text(self) -> str:
        return self.file(CONFIG).read_text()


def read_run_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / RUN_JSON).read_text())
    except (OSError, ValueError):
        return {}


def create_unique(parent: Path, name: str) -> Path:
    """Make ``parent/name`` (or ``name-2``, ``name-3``...) atomically: never share a dir."""
    parent.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        candidate = parent / (name if i == 1 else f"{name}-{i}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RunDirError(f"cannot find a free run name like {name} in {parent}")


def check_same_config(run: RunDir, digest: str, bindings: str) -> None:
    """Same name + same config continues; same name + another config is refused."""
    recorded = run.read_json().get("config_digest")
    if recorded is None and run.file(RESOLVED).is_file():
        # Killed before its first run.json: resolved.gin holds exactly the digested text.
        recorded = hashlib.sha256(run.file(RESOLVED).read_bytes()).hexdigest()
    if recorded is None or recorded == digest:
        return
    old = run.file(RESOLVED).read_text().splitlines() if run.file(RESOLVED).exists() else []
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
    atomic_write_text(run.file(CONFIG), text)
    atomic_write_text(run.file(RESOLVED), bindings)
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
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunLockedError(
                f"run directory {self.path.parent} is in use by {holder}; "
                "wait for it to finish or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {now_iso()}".encode(), 0)
        self._fd = fd

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

    def __init__(self, run: RunDir, base: dict[str, Any]) -> None:
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
        self._t0 = time.monotonic()

    def save(self) -> None:
        atomic_write_json(self.run.file(RUN_JSON), self.data)

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
        duration = time.monotonic() - self._t0
        self.data.update(
            status=run["status"],
            ended=now_iso(),
            duration_s=round(duration, 3),
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
            }
        )
        self.save()
