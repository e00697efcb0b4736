"""DataLoader workers that leave Ctrl-C and SIGTERM to the main process, and their errors
as one line.

A terminal's Ctrl-C and a scheduler's SIGTERM reach the whole process group, workers
included. A worker that takes SIGINT prints a KeyboardInterrupt traceback; one killed by
SIGTERM makes the main process fail with "DataLoader worker exited unexpectedly" instead
of recording an interruption. Workers therefore ignore both signals, and the main process
(which saves a checkpoint and records "interrupted") stops them when it shuts down.

A spawned worker needs seconds to import torch before ``worker_init_fn`` runs, so the two
signals are blocked while a worker starts: the child inherits the blocked mask through
fork and exec and drops anything pending once it ignores them; the parent receives its
own copy as soon as the start returns.
"""

from __future__ import annotations

import atexit
import multiprocessing
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import context as mpc
from multiprocessing.context import BaseContext
from typing import Any

from ginpipe import Interrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_WORKER_ERROR = re.compile(r"^Caught (\w+) in DataLoader worker process \d+\.")


def ignore_stop_signals(worker_id: int = 0) -> None:
    """``worker_init_fn``: this worker ignores SIGINT/SIGTERM, then unblocks them (a signal
    that arrived while it was starting is dropped: the main process got its own)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back (not lost: delivered when the block ends).

    Blocking them is not enough on its own: a signal that reached the process just before
    the block has its Python handler still to run, at any point of the start; raised
    between starting a spawned worker and writing its start-up data to it, it leaves that
    worker printing an EOFError traceback. So, in the main thread, the handlers only note
    what came until the start is over, and it is raised again then."""
    noted: list[int] = []

    def note(signum: int, frame: Any) -> None:
        noted.append(signum)

    handlers: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {signum: signal.signal(signum, note) for signum in STOP_SIGNALS}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(noted):
            signal.raise_signal(signum)  # pending until the mask below is lifted
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _BlockedStart:
    """Mixin: ``start`` with SIGINT/SIGTERM blocked (see the module docstring)."""

    def start(self) -> None:
        with stop_signals_blocked():
            super().start()  # type: ignore[misc]


# Module-level classes: a spawned process object is pickled into the child by reference.
class QuietSpawnProcess(_BlockedStart, mpc.SpawnProcess):
    pass


class QuietForkProcess(_BlockedStart, mpc.ForkProcess):
    pass


class QuietForkServerProcess(_BlockedStart, mpc.ForkServerProcess):
    pass


class QuietSpawnContext(mpc.SpawnContext):
    Process = QuietSpawnProcess


class QuietForkContext(mpc.ForkContext):
    Process = QuietForkProcess


class QuietForkServerContext(mpc.ForkServerContext):
    Process = QuietForkServerProcess


_CONTEXTS: dict[str, type[BaseContext]] = {
    "spawn": QuietSpawnContext,
    "fork": QuietForkContext,
    "forkserver": QuietForkServerContext,
}


def worker_context(method: str | None) -> BaseContext:
    """A multiprocessing context whose processes start with SIGINT/SIGTERM blocked
    (``None``: the platform's default start method)."""
    name = method or multiprocessing.get_start_method(allow_none=True)
    name = name or multiprocessing.get_context().get_start_method()
    _end_leftover_workers_at_exit()
    return _CONTEXTS[name]()


_exit_hook_registered = False


def _end_leftover_workers_at_exit() -> None:
    """Registered after multiprocessing's own exit hook, so it runs first (atexit is LIFO).

    That hook terminates daemonic children, then joins them. Workers here ignore SIGTERM,
    and a fit stopped by Ctrl-C can leave its loaders' iterators (and so their workers)
    alive until the interpreter exits: the join then waited forever after "interrupted"
    was printed. Workers hold nothing to save; they are killed.
    """
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_kill_daemonic_children)
        _exit_hook_registered = True


def _kill_daemonic_children() -> None:
    # torch's SIGCHLD handler would raise "DataLoader worker killed" into the joins below
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    children = [child for child in multiprocessing.active_children() if child.daemon]
    for child in children:
        child.kill()
    for child in children:
        child.join(timeout=5)


def _interrupt_behind(error: BaseException) -> BaseException | None:
    """An ``Interrupted``/``KeyboardInterrupt`` that ``error`` was raised while handling."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, (Interrupted, KeyboardInterrupt)):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def worker_error_message(error: BaseException) -> str | None:
    """The original one-line message of an error re-raised from a DataLoader worker.

    torch re-raises it as ``type(message)`` where the message is "Caught X in DataLoader
    worker process N." followed by the worker's whole traceback; its last line is
    ``module.X: the original message``.
    """
    text = str(error)
    match = _WORKER_ERROR.match(text)
    if match is None:
        return None
    name = match.group(1)
    for line in reversed(text.splitlines()):
        head, sep, message = line.partition(": ")
        if sep and head.split(".")[-1] == name:
            return message.strip()
    return None


def _plain(error: BaseException, message: str) -> BaseException | None:
    try:
        plain = type(error)(message)
    except Exception:
        return None
    return plain


@contextmanager
def training_errors() -> Iterator[Any]:
    """Around ``trainer.fit``: an interruption wins over errors raised while Lightning
    tears down after it (e.g. "Please call `iter(combined_loader)` first." when the signal
    came before the first batch), and a worker's error is its own one line."""
    try:
        yield
    except (Interrupted, KeyboardInterrupt):
        raise
    except BaseException as error:
        interrupt = _interrupt_behind(error)
        if interrupt is not None:
            raise interrupt from None
        message = worker_error_message(error)
        plain = _plain(error, message) if message is not None else None
        if plain is not None:
            raise plain from None
        raise
