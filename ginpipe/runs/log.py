"""Logging: loguru to the console and to the run's log file (one per rank)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from loguru import logger

CONSOLE_FORMAT = "<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> {tag}{message}"
PLAIN_FORMAT = "{time:HH:mm:ss} {level: <7} {tag}{message}"
FILE_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {tag}{message}"


def _formatter(template: str) -> Callable[[Any], str]:
    """A loguru format that reads the rank tag if there is one: a process whose loguru was
    configured by someone else (a notebook) has no ``tag`` in its records' extras."""

    def format_record(record: Any) -> str:
        tag = str(record["extra"].get("tag", "")).replace("{", "{{").replace("}", "}}")
        return template.replace("{tag}", tag) + "\n{exception}"

    return format_record


_default_handler = 0  # loguru's own stderr handler, until ginpipe puts it back elsewhere


@contextlib.contextmanager
def short_console_lines() -> Iterator[None]:
    """While ginpipe runs as a library (a notebook, a script), loguru's own default handler,
    whose lines carry ``module:function:line`` and colour codes, gives way to the console
    script's short ``time level message`` lines (colour only on a terminal). A handler the
    user added themselves is left alone, and loguru's default is back afterwards."""
    global _default_handler
    try:
        logger.remove(_default_handler)
    except ValueError:  # the user configured loguru: their handlers, their format
        yield
        return
    colour = sys.stderr.isatty()

    def to_stderr(message: str) -> None:  # sys.stderr as it is when each line is written
        sys.stderr.write(message)

    short = logger.add(
        to_stderr,
        level="INFO",
        format=_formatter(CONSOLE_FORMAT if colour else PLAIN_FORMAT),
        colorize=colour,
    )
    try:
        yield
    finally:
        logger.remove(short)
        _default_handler = logger.add(sys.stderr)


def setup_console(verbose: bool, rank: int = 0) -> None:
    """Rank 0 logs to the console; other ranks log to their files only (and warnings)."""
    logger.remove()
    logger.configure(extra={"tag": f"[rank {rank}] " if rank else ""})
    level = "DEBUG" if verbose else ("INFO" if rank == 0 else "WARNING")
    logger.add(sys.stderr, level=level, format=_formatter(CONSOLE_FORMAT), colorize=None)


class _LogFile:
    """An append-only log opened without following a symbolic link (a ``run.log`` linked to
    another file must not grow that file); loguru closes it through ``stop``."""

    def __init__(self, path: Path) -> None:
        from ginpipe.runs.rundir import open_nofollow

        fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self._file = os.fdopen(fd, "a", encoding="utf-8")

    def write(self, message: str) -> None:
        with contextlib.suppress(OSError):  # a full disk loses a log line, not the run
            self._file.write(message)
            self._file.flush()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()


def add_run_log(run_dir: Path, rank: int = 0) -> int:
    """Append to ``run.log`` (rank 0) or ``run.rank<N>.log``; returns the sink id."""
    name = "run.log" if rank == 0 else f"run.rank{rank}.log"
    return logger.add(
        _LogFile(run_dir / name), level="DEBUG", format=_formatter(FILE_FORMAT), enqueue=False
    )
