"""``ginpipe rm``: delete run directories, refusing a run in use, and (``--cache``) the
cache entries that no other run needs.

A run is in use while its process holds ``RUN/.lock`` (an ``flock``, dropped by the kernel
when the process dies) or, on this host, while the process its lock record names is alive
(the runner's ``RunLock``, ``ginpipe/runs/rundir.py``, writes ``pid N on HOST since ...``
and clears it on release). Every named run is checked before any is deleted: a refusal
deletes nothing.

Cache entries are shared: a run that reused a cached step names the same key as the run
that computed it (``run.json`` tasks, ``inputs.json``). ``--cache`` deletes an entry only
when no run left under the root names it, and deletes none while another run under the root
is in use (the keys it will ask for are not all recorded yet). ``ginpipe cache prune`` is
the way to free the cache by age or size.

A run directory is first renamed to a temporary name (one step: it is listed whole or not
at all), then deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ginpipe.base.atomic import TMP_PREFIX
from ginpipe.base.errors import ConfigError, RunLockedError
from ginpipe.base.oserrors import reported
from ginpipe.layout import rundir

# Keys as run.json records them (the first 16 hex digits of the cache key).
KEY_CHARS = 16
INPUTS = "inputs.json"


@dataclass(frozen=True)
class Removal:
    runs: list[Path]
    cache_keys: list[str]  # full keys of the entries deleted with them
    kept_shared: int  # entries of these runs another run still names
    kept_reason: str | None = None  # why no entry was deleted, when none could be


def in_use(path: Path) -> str | None:
    """Who uses the run directory, if a live process does; None otherwise."""
    if rundir.is_locked(path):
        return _holder(path) or "another process"
    holder = _holder(path)
    if holder is None:
        return None
    parts = holder.split()  # "pid N on HOST since TIME"
    ours = len(parts) >= 4 and parts[0] == "pid" and parts[3] == socket.gethostname()
    return holder if ours and _alive(parts[1]) else None


def _holder(path: Path) -> str | None:
    try:
        fd = os.open(path / rundir.LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        text = os.pread(fd, 512, 0).decode(errors="replace").strip()
    finally:
        os.close(fd)
    return text or None


def _alive(pid_text: str) -> bool:
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def check_removable(path: Path) -> None:
    """A run directory nothing uses, outside a sweep; raises the reason otherwise."""
    if path.is_symlink():
        raise ConfigError(f"{path} is a symbolic link; name the run directory itself")
    if not (path / rundir.CONFIG).is_file():
        raise ConfigError(f"not a run directory (no {rundir.CONFIG}): {path}")
    if (path.parent / rundir.GROUP_FILE).is_file():
        raise ConfigError(
            f"{path} is a trial of the sweep {path.parent}; its study still counts it: "
            "remove the whole sweep folder instead"
        )
    holder = in_use(path)
    if holder is not None:
        raise RunLockedError(
            f"run directory {path} is in use by {holder}; wait for it to finish or stop it first"
        )


def run_dirs(root: Path) -> Iterator[Path]:
    """Every run directory under ``root``: ``PROJECT/NAME`` and sweep trials."""
    if not root.is_dir():
        return
    for pattern in (f"*/*/{rundir.CONFIG}", f"*/*/*/{rundir.CONFIG}"):
        for config in root.glob(pattern):
            if not any(part.startswith(TMP_PREFIX) for part in config.parts):
                yield config.parent


def needed_keys(path: Path) -> set[str]:
    """The cache keys a run names (its tasks' and fit's inputs), as 16-digit prefixes."""
    keys = set()
    record = rundir.read_run_json(path)
    for task in record.get("tasks") or []:
        if isinstance(task, dict) and isinstance(task.get("key"), str) and task["key"]:
            keys.add(task["key"][:KEY_CHARS])
    try:
        inputs = json.loads((path / INPUTS).read_text())
    except (OSError, ValueError):
        inputs = {}
    if isinstance(inputs, dict):
        for pinned in inputs.values():
            if isinstance(pinned, dict):
                keys.update(k[:KEY_CHARS] for k in pinned.values() if isinstance(k, str))
    return keys


def plan(paths: Sequence[Path], cache: bool) -> Removal:
    """What ``rm`` would delete; refuses (raises) before anything is deleted."""
    runs = list(dict.fromkeys(Path(os.path.abspath(p)) for p in paths))
    if not runs:
        raise ConfigError("name the run directories to remove, e.g. ginpipe rm experiments/p/run")
    for path in runs:
        check_removable(path)
    if not cache:
        return Removal(runs, [], 0)
    roots = {rundir.root_of(path) for path in runs}
    if len(roots) > 1:
        raise ConfigError("--cache removes runs of one root at a time (their cache is ROOT/.cache)")
    root = roots.pop()
    others = [p for p in run_dirs(root) if Path(os.path.abspath(p)) not in runs]
    busy = [p for p in others if in_use(p) is not None]
    mine = set().union(*(needed_keys(p) for p in runs))
    if busy:
        return Removal(runs, [], len(mine), f"{busy[0]} is running and may need any of them")
    needed = set().union(set(), *(needed_keys(p) for p in others))
    from ginpipe.core.store import CACHE_DIR, ArtifactStore

    store = ArtifactStore(root / CACHE_DIR)
    doomed = [e.key for e in store.entries() if e.key[:KEY_CHARS] in mine - needed]
    shared = len({e.key for e in store.entries() if e.key[:KEY_CHARS] in mine & needed})
    return Removal(runs, doomed, shared)


def remove(paths: Sequence[Path], cache: bool = False, dry_run: bool = False) -> str:
    """``ginpipe rm``: the runs (and with ``cache`` the entries only they used)."""
    removal = plan(paths, cache)
    verb = "would remove" if dry_run else "removed"
    lines = []
    for path in removal.runs:
        if not dry_run:
            _delete_run(path)
        lines.append(f"{verb} {path}")
    if cache:
        if not dry_run and removal.cache_keys:
            from ginpipe.core.store import CACHE_DIR, ArtifactStore

            store = ArtifactStore(rundir.root_of(removal.runs[0]) / CACHE_DIR)
            for key in removal.cache_keys:
                store.delete(key)
        line = f"cache: {verb} {len(removal.cache_keys)} entries only these runs used"
        if removal.kept_reason:
            line = f"cache: kept every entry ({removal.kept_reason})"
        elif removal.kept_shared:
            line += f"; kept {removal.kept_shared} that other runs use"
        lines.append(line)
    return "\n".join(lines)


def _delete_run(path: Path) -> None:
    trash = path.parent / f"{TMP_PREFIX}rm-{path.name}-{uuid.uuid4().hex[:8]}"
    with reported(path, "remove"):
        path.rename(trash)
        (trash / rundir.CONFIG).unlink(missing_ok=True)  # never listed again, even half gone
        shutil.rmtree(trash)
