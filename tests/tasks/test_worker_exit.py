"""A process whose loader workers are still alive at exit ends, instead of hanging."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from ginpipe.tasks.lightning.workers import stop_signals_blocked

PROBE = textwrap.dedent(
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    from ginpipe.tasks.lightning.workers import ignore_stop_signals, worker_context

    data = TensorDataset(torch.arange(64.0))
    loader = DataLoader(
        data, batch_size=4, num_workers=2, persistent_workers=True,
        multiprocessing_context=worker_context("fork"), worker_init_fn=ignore_stop_signals,
    )
    iterator = iter(loader)  # kept alive, as an interrupted fit's loop keeps its own
    next(iterator)
    print("workers started", flush=True)
    """
)


def test_workers_that_ignore_sigterm_do_not_hold_the_exit() -> None:
    """multiprocessing's exit hook terminates daemonic children (SIGTERM, which these
    workers ignore) and joins them: after an interrupted fit the process never ended."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "workers started" in result.stdout


def test_a_signal_whose_handler_runs_while_a_worker_starts_waits_until_it_has_started() -> None:
    """A signal that arrived just before the block has its Python handler still to run; run
    in the middle of starting a spawned worker it left the worker reading half its start-up
    data (an EOFError traceback). Now it runs once the start is over."""
    with pytest.raises(KeyboardInterrupt), stop_signals_blocked():
        pending = signal.getsignal(signal.SIGINT)
        assert callable(pending)
        pending(signal.SIGINT, None)  # what the interpreter does for a tripped signal
        signal.raise_signal(signal.SIGINT)  # and one that comes now: blocked
        started = True  # the start goes on to its end
    assert started
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
