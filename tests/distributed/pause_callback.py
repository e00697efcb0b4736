"""A Lightning callback that holds training still once, so a test can signal the process at a
known point: before the second batch of epoch 1 (epoch 0 and its checkpoint are done), it
writes the file named by ``$PAUSE_MARKER`` and sleeps until a signal ends the process. A
later process that finds the file trains straight through.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import gin
from pytorch_lightning.callbacks import Callback

MAX_PAUSE_S = 300.0


@gin.configurable
class PauseOnce(Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        marker = Path(os.environ["PAUSE_MARKER"])
        if (trainer.current_epoch, batch_idx) != (1, 1) or marker.exists():
            return
        marker.write_text(str(os.getpid()))
        deadline = time.monotonic() + MAX_PAUSE_S
        while time.monotonic() < deadline:
            time.sleep(0.05)
