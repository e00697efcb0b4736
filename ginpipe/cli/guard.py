"""What every command does around its call: console logging set up, a user's error as one
line and an exit code (a traceback with ``-v``), Ctrl-C and SIGTERM through ``finally``."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import TypeVar

import typer

from ginpipe.base.errors import GinpipeError, TaskFailed

T = TypeVar("T")


def guarded(verbose: bool, fn: Callable[[], T]) -> T:
    """Run ``fn``; turn user errors into one line and an exit code (traceback with -v)."""
    try:
        return fn()
    except GinpipeError as e:
        if verbose:
            traceback.print_exc()
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(e.exit_code) from None
    except TaskFailed as e:
        if verbose:
            traceback.print_exception(e.cause)
        typer.echo(f"error: {e} (details in run.json; -v for the traceback)", err=True)
        raise typer.Exit(e.exit_code) from None
    except OSError as e:  # a full disk, a read-only mount...: one line, exit code by kind
        from ginpipe.base.oserrors import path_error

        if verbose:
            traceback.print_exc()
        error = path_error(e)
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(error.exit_code) from None


def interruptible(fn: Callable[[], T]) -> T:
    """Ctrl-C or SIGTERM end ``fn`` through its ``finally`` blocks (temp files removed)."""
    from ginpipe.base.errors import Interrupted
    from ginpipe.base.signals import signals_raise_interrupted

    try:
        with signals_raise_interrupted():
            return fn()
    except Interrupted as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(e.exit_code) from None


def setup_logging(verbose: bool) -> None:
    """Console logging at ``--verbose``'s level; ranks other than 0 log only warnings."""
    from ginpipe.runs import distributed
    from ginpipe.runs.log import setup_console

    setup_console(verbose, distributed.detect().rank)
