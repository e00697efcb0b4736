"""fit's TensorBoard logger: a run named after the ginpipe run, its bindings as hparams.

Files go to ``RUN/logs/tensorboard/<run name>/``, so ``tensorboard --logdir RUN/logs/tensorboard``
(or ``--logdir ROOT/PROJECT`` for all runs) names each run after its directory; a resumed run
writes into the same folder. The hparams are the run's resolved bindings (``hparams.yaml``
holds them too); the run's tracker (``ginpipe/tasks/tracking_tensorboard.py``) adds the test
metrics and the hparams tab's records, with the main metric, when the run ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gin
from pytorch_lightning.loggers import TensorBoardLogger

from ginpipe import requires
from ginpipe.tasks.tracking_tensorboard import TENSORBOARD_DIR, hparam_values


class RunTensorBoardLogger(TensorBoardLogger):
    """Lightning's TensorBoardLogger with the run's bindings as its hparams (``hparams.yaml``);
    Lightning's own call with the LightningModule's ``hparams`` (empty for fit's classifier)
    is ignored. The hparams tab's records are written once the test metrics exist."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(
            save_dir=str(run_dir / "logs"),
            name=TENSORBOARD_DIR,
            version=run_dir.name,
            default_hp_metric=False,
        )
        self.hparams.update(hparam_values(run_dir))

    def log_hyperparams(self, params: Any, metrics: Any = None, step: int | None = None) -> None:
        return None


@gin.configurable
def tensorboard_training_logger(save_dir: str) -> TensorBoardLogger:
    """fit's TensorBoard logger (``fit.loggers += [@tensorboard_training_logger]``, as
    ``configs/loggers/tensorboard.gin`` does); ``save_dir`` (``RUN/logs/...``) names the run."""
    return RunTensorBoardLogger(Path(save_dir).absolute().parent.parent)


requires(tensorboard_training_logger, "tensorboard")
