"""Tags and a note on a run (``ginpipe tag``, ``ginpipe note``), kept in ``RUN/labels.json``.

A file of their own, not ``run.json``: the runner rewrites ``run.json`` whole after every
event, so a tag written there while a run is going would be lost; this file the runner never
touches, so a running run may be tagged. Two ``tag`` commands at once take turns on an
``flock`` of the run directory itself (no lock file is created).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ginpipe.base.atomic import atomic_write_json
from ginpipe.base.errors import ConfigError, DamagedRunError
from ginpipe.base.oserrors import reported
from ginpipe.layout import rundir

LABELS = "labels.json"
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/+-]{0,63}")
MAX_NOTE = 2000


@dataclass
class Labels:
    tags: list[str] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"tags": self.tags, "note": self.note}


def read_labels(path: Path) -> Labels:
    """The run's tags and note; empty when it has none. Never writes."""
    file = path / LABELS
    if not file.is_file():
        return Labels()
    try:
        data = json.loads(rundir.read_text_file(file))
    except ValueError as error:
        raise DamagedRunError(f"{file} is damaged (not JSON: {error}); move it aside") from None
    if not isinstance(data, dict):
        raise DamagedRunError(f"{file} is damaged (not a JSON object); move it aside")
    tags = data.get("tags", [])
    note = data.get("note", "")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise DamagedRunError(f"{file} is damaged ('tags' is not a list of words); move it aside")
    return Labels(tags, note if isinstance(note, str) else str(note))


def check_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise ConfigError(
            f"bad tag {tag!r}: a tag is one word of letters, digits and _ . : / + - "
            "(at most 64), starting with a letter or digit"
        )
    return tag


def _run_dir(path: Path) -> rundir.RunDir:
    run = rundir.RunDir(path)
    if not run.exists():
        raise ConfigError(f"not a run directory (no {rundir.CONFIG}): {path}")
    if path.is_symlink():
        raise ConfigError(f"{path} is a symbolic link; name the run directory itself")
    return run


@contextlib.contextmanager
def _turn(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the directory: one labels writer at a time."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(path: Path, labels: Labels) -> None:
    file = path / LABELS
    with reported(file, "write"):
        atomic_write_json(file, labels.to_json())


def tag(path: Path, add: Sequence[str] = (), remove: Sequence[str] = ()) -> str:
    """Add and remove tags; the tags after. Unchanged labels are not rewritten."""
    run = _run_dir(path)
    for name in (*add, *remove):
        check_tag(name)
    with _turn(run.path):
        labels = read_labels(run.path)
        missing = [t for t in remove if t not in labels.tags]
        if missing:
            raise ConfigError(
                f"{run.path} has no tag {missing[0]!r} (its tags: "
                f"{', '.join(labels.tags) or 'none'})"
            )
        tags = [t for t in labels.tags if t not in remove]
        tags += [t for t in dict.fromkeys(add) if t not in tags]
        if tags != labels.tags:
            _write(run.path, Labels(tags, labels.note))
    return f"{run.path}: tags {', '.join(tags) or '(none)'}"


def note(path: Path, text: str | None) -> str:
    """Set the note (``""`` clears it); None only shows it."""
    run = _run_dir(path)
    if text is None:
        shown = read_labels(run.path).note
        return shown or f"{run.path} has no note"
    text = " ".join(text.split())
    if len(text) > MAX_NOTE:
        raise ConfigError(f"the note is {len(text)} characters; at most {MAX_NOTE}")
    with _turn(run.path):
        labels = read_labels(run.path)
        if text != labels.note:
            _write(run.path, Labels(labels.tags, text))
    return f"{run.path}: note {'cleared' if not text else repr(text)}"
