"""``FirstStepClock``: when did the first training batch start? (Lightning only, no gin.)

A Lightning callback that writes ``time.time()`` at the first training batch to the file
named by ``$GINPIPE_BENCH_CLOCK`` and then stops training, so a benchmark can time "process
start to first training step". Without the variable it does nothing: a run configured with
it trains normally until a later attempt (a resume) is started with the variable set.
Plain Lightning, so the hand-written baselines use the very same class as ginpipe's runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

CLOCK_ENV = "GINPIPE_BENCH_CLOCK"


class FirstStepClock(pl.Callback):
    """Record when the first training batch starts, then ask the Trainer to stop.

    Args:
        path: where to write ``time.time()``; default: ``$GINPIPE_BENCH_CLOCK``, read when
            training starts (unset: the callback is inert).
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.recorded = False

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        path = self.path or os.environ.get(CLOCK_ENV)
        if self.recorded or not path:
            return
        now = time.time()
        self.recorded = True
        Path(path).write_text(repr(now))
        trainer.should_stop = True  # the measurement is taken; skip the rest of training
