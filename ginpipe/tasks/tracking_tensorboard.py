"""Track runs in TensorBoard: the test metrics and the hparams tab, for every kind of run.

``configs/loggers/tensorboard.gin`` lists ``@tensorboard_logger()`` among the run's observers
(ginpipe/core/events.py). When the run ends it writes the final metrics as ``test/<name>``
scalars into ``RUN/logs/tensorboard/<run name>/``, where fit's logger
(``ginpipe/tasks/lightning/tensorboard_logger.py``) wrote the training curves and the
learning rate, and the hparams tab's records: the bindings, with the main metric as its metric.
A run that did not train gets the same, without curves.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import gin

from ginpipe import requires
from ginpipe.tasks.tracking_files import (
    final_metrics,
    read_record,
    resolved_bindings,
    training_history,
)

TENSORBOARD_DIR = "tensorboard"
TEST_PREFIX = "test/"


def log_dir(run_dir: Path) -> Path:
    """``RUN/logs/tensorboard/<run name>``: TensorBoard names a run after its folder."""
    return Path(run_dir) / "logs" / TENSORBOARD_DIR / Path(run_dir).name


def main_metric_tag(run_dir: Path) -> str:
    return TEST_PREFIX + str(read_record(run_dir).get("main_metric") or "accuracy")


def hparam_values(run_dir: Path) -> dict[str, bool | int | float | str]:
    """The run's resolved bindings as TensorBoard hparams: numbers and booleans as such
    (the hparams tab filters and sorts them), anything else as its gin text."""
    values: dict[str, bool | int | float | str] = {}
    for key, text in resolved_bindings(run_dir).items():
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        values[key] = value if isinstance(value, (bool, int, float, str)) else text
    return values


def write_session(writer: Any, values: dict[str, Any], metric_tag: str) -> None:
    """The hparams tab's records (experiment, session start and end) in ``writer``'s run;
    the metric's value is the last ``metric_tag`` scalar of the run."""
    from torch.utils.tensorboard.summary import hparams

    for summary in hparams(values, {metric_tag: 0.0}):
        writer._get_file_writer().add_summary(summary)


class TensorBoardTracker:
    """The observer ``tensorboard_logger()`` returns; see the module docstring."""

    def __init__(self) -> None:
        self.run_dir: Path | None = None

    def on_run_start(self, run: dict[str, Any]) -> None:
        self.run_dir = Path(run["dir"]).absolute()

    def on_run_end(self, outcome: dict[str, Any]) -> None:
        if self.run_dir is None:
            return
        from torch.utils.tensorboard import SummaryWriter

        run_dir, self.run_dir = self.run_dir, None
        folder = log_dir(run_dir)
        step = max((s for s, _ in training_history(run_dir)), default=0)
        writer = SummaryWriter(log_dir=str(folder))
        try:
            write_session(writer, hparam_values(run_dir), main_metric_tag(run_dir))
            for name, value in final_metrics(run_dir, outcome).items():
                writer.add_scalar(TEST_PREFIX + name, value, step)
        finally:
            writer.close()


@gin.configurable
def tensorboard_logger() -> TensorBoardTracker:
    """Track the run in TensorBoard (an observer: ``run.observers += [@tensorboard_logger()]``)."""
    return TensorBoardTracker()


requires(tensorboard_logger, "tensorboard")
