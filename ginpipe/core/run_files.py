"""Files a task writes into its run directory, kept with its cache entry (``@task(run_files=)``).

``fit``'s outputs are the trained model, but the run that trained it also holds Lightning's
checkpoints and the training log: what ``resume``, fine-tuning and the report's curves read.
A later run that reuses the cached ``fit`` gets those files too, so it is as complete as the
run that computed it. They live in the entry as ``run_files/<path>``; ``link`` files are
hard-linked both ways (their writers replace files and never edit them in place, so a link
is never changed under another run), falling back to a copy across file systems; ``copy``
files (a log appended in place) are copied.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ginpipe.base.atomic import TMP_PREFIX, fsync_dir

FOLDER = "run_files"


def keep(sources: Iterable[tuple[str, Path, str]], entry: Path) -> dict[str, Any]:
    """Put each ``(relative path, source, mode)`` under ``entry/run_files``; the manifest
    record: ``{relative path: {"mode": mode, "files": {file: size}}}``."""
    record: dict[str, Any] = {}
    for relative, source, mode in sources:
        files: dict[str, int] = {}
        for name, path in _files(source):
            target = entry / FOLDER / relative / name
            target.parent.mkdir(parents=True, exist_ok=True)
            _place(path, target, mode)
            files[name] = target.stat().st_size
        if files:
            record[relative] = {"mode": mode, "files": files}
    return record


def restore(entry: Path, record: dict[str, Any], run_dir: Path) -> list[str]:
    """Put the kept files into ``run_dir`` where it has nothing at their path yet; the
    relative paths restored. A file that is missing or changed in the entry is skipped: the
    outputs are what the run needs, these files complete it."""
    restored = []
    for relative, kept in record.items():
        destination = run_dir / relative
        if os.path.lexists(destination) or not _inside(run_dir, destination):
            continue
        placed = 0
        for name, size in kept["files"].items():
            source = entry / FOLDER / relative / name
            target = destination / name if name else destination
            with contextlib.suppress(OSError):
                if source.stat().st_size != size:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                _place(source, target, kept["mode"])
                placed += 1
        if placed:
            restored.append(relative)
    return restored


def size(record: dict[str, Any]) -> int:
    return sum(int(s) for kept in record.values() for s in kept["files"].values())


def _files(source: Path) -> Iterator[tuple[str, Path]]:
    """``(name relative to source, path)`` of a file, or of every file under a folder;
    symlinks are never followed (a run's files stay inside it) and temp files are left."""
    if source.is_symlink():
        return
    if source.is_file():
        yield "", source
        return
    for root, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not (Path(root) / d).is_symlink())
        for name in sorted(names):
            path = Path(root) / name
            if not path.is_symlink() and not name.startswith(TMP_PREFIX) and path.is_file():
                yield str(path.relative_to(source)), path


def _place(source: Path, target: Path, mode: str) -> None:
    """Link or copy ``source`` to ``target`` through a temp name, then rename."""
    tmp = target.with_name(f"{TMP_PREFIX}{target.name}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        if mode == "link":
            try:
                os.link(source, tmp)
            except OSError:  # another file system, or links not allowed
                shutil.copy2(source, tmp)
        else:
            shutil.copy2(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


def _inside(root: Path, path: Path) -> bool:
    """``path`` resolves inside ``root``: no component of it is a link leading out."""
    return path.resolve().is_relative_to(root.resolve())
