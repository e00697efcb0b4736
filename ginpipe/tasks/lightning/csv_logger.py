"""A CSV logger that a resumed run continues instead of starting over.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when it opens its directory
(and warns "Previous log files ... will be deleted"), so a resumed run would lose the rows
of the epochs before the interruption. This logger keeps the old rows and drops those
logged after the checkpoint a run resumes from (they are logged again when those steps
rerun).

Lightning flushes the log after every logging call. New rows are appended, each flush in one
``write``; the file is rewritten atomically only when the columns change or a resume cut
rows. A kill during an append can leave a torn last line, with no line end: reading drops
it, so the log holds whole rows only, and loses what a kill just before that flush would
have lost.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from lightning_fabric.loggers.logger import rank_zero_experiment
from loguru import logger
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from ginpipe.tasks.engine import atomic_write_text


class DamagedLogError(ValueError):
    """``metrics.csv`` cannot be read back as rows of numbers."""


def read_metrics_rows(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows (empty cells dropped) and columns of a ``metrics.csv`` this logger wrote.

    Every row needs a numeric ``step``: it is what a resume cuts the log at.
    """
    try:
        with open(path, newline="", encoding="utf-8") as file:
            text = file.read()
        reader = csv.DictReader(io.StringIO(whole_lines(text), newline=""))
        rows = [{k: v for k, v in row.items() if v not in ("", None)} for row in reader]
        keys = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as error:
        raise DamagedLogError(f"log {path} is damaged ({error})") from None
    for number, row in enumerate(rows, start=2):
        if None in row or any(not isinstance(k, str) for k in row):
            raise DamagedLogError(f"log {path} is damaged (line {number} has extra cells)")
        try:
            float(row.get("step", 0))
        except (TypeError, ValueError):
            raise DamagedLogError(
                f"log {path} is damaged (line {number}: step {row.get('step')!r} is not a number)"
            ) from None
    return rows, keys


def whole_lines(text: str) -> str:
    """``text`` without a last line that has no line end: an append cut short by a kill."""
    return text[: text.rfind("\n") + 1]


class ContinuingExperimentWriter(ExperimentWriter):
    """Holds every row of ``metrics.csv``, old and new; ``save`` appends the new ones."""

    def _check_log_dir_exists(self) -> None:
        # Called by the base constructor, where Lightning deletes the old metrics file.
        self.rows: list[dict[str, Any]] = []
        # Whether the file holds exactly ``rows`` as whole lines, so that rows can be
        # appended; a log read back is rewritten once (it may end in a torn line).
        self._file_matches_rows = False
        if not os.path.isfile(self.metrics_file_path):
            return
        try:
            self.rows, self.metrics_keys = read_metrics_rows(Path(self.metrics_file_path))
        except DamagedLogError as error:
            # The log is a record, not state training needs: keep the bad file for a look
            # and continue with a fresh log, saying so in one line.
            aside = Path(self.metrics_file_path).with_suffix(".damaged.csv")
            os.replace(self.metrics_file_path, aside)
            logger.warning(f"{error}; moved it to {aside} and started a new log")
            self.rows, self.metrics_keys = [], []

    def forget_rows_from(self, global_step: int) -> None:
        """Drop rows of training steps ``global_step`` and later: a run resuming from a
        checkpoint taken after ``global_step`` steps runs and logs them again. (Lightning
        logs the rows of the n-th step, epoch-end rows included, with ``step = n - 1``.)"""
        self.rows = [row for row in self.rows if float(row.get("step", 0)) < global_step]
        self.metrics = [row for row in self.metrics if float(row.get("step", 0)) < global_step]

    def save(self) -> None:
        """Append the new rows in one write; rewrite the file (atomically, sorted columns)
        when a row brings a new column or the file holds rows a resume dropped."""
        if not self.metrics:
            return
        new_rows, self.metrics = self.metrics, []
        self.rows.extend(new_rows)
        keys = sorted(set(self.metrics_keys).union(*new_rows))
        if keys != self.metrics_keys or not self._file_matches_rows:
            self.metrics_keys = keys
            atomic_write_text(self.metrics_file_path, self._csv_text(self.rows, header=True))
            self._file_matches_rows = True
            return
        with open(self.metrics_file_path, "a", newline="", encoding="utf-8") as file:
            file.write(self._csv_text(new_rows, header=False))

    def _csv_text(self, rows: list[dict[str, Any]], header: bool) -> str:
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=self.metrics_keys)
        if header:
            writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()


class ContinuingCSVLogger(CSVLogger):
    """``CSVLogger`` writing ``<save_dir>/metrics.csv`` directly, continued across resumes.

    A fixed directory (no ``version_N``) is what lets a resumed run find its earlier rows.
    """

    _experiment: ContinuingExperimentWriter | None  # set by ``experiment`` only

    def __init__(self, save_dir: str | Path, flush_logs_every_n_steps: int = 100) -> None:
        super().__init__(
            save_dir, name="", version="", flush_logs_every_n_steps=flush_logs_every_n_steps
        )

    @property
    @rank_zero_experiment
    def experiment(self) -> ContinuingExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ContinuingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
