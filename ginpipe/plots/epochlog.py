"""Lightning's CSV log (``RUN/logs/metrics.csv``) as per-epoch numbers, read with the csv
module: comparing runs or plotting one never needs pandas or torch.

Lightning writes one row per logging call, train and val metrics on separate rows of the
same epoch; a metric's value for an epoch is the mean of its non-empty cells in that epoch.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

TRAINING_LOG = Path("logs") / "metrics.csv"
# Panels of a learning-curve figure: the title, the y label and the series drawn in it.
PANELS = {"loss": ("train_loss", "val_loss"), "accuracy": ("train_acc", "val_acc")}


@dataclass
class EpochLog:
    """``series[name][epoch] = value``; empty when the run did not train."""

    series: dict[str, dict[int, float]] = field(default_factory=dict)

    def epochs(self) -> list[int]:
        return sorted({e for values in self.series.values() for e in values})

    def points(self, name: str) -> tuple[list[int], list[float]]:
        values = self.series.get(name, {})
        epochs = sorted(values)
        return epochs, [values[e] for e in epochs]

    def best(self, monitor: str, mode: str) -> tuple[int, float] | None:
        """The epoch where ``monitor`` was best (``mode`` min or max), and its value."""
        values = self.series.get(monitor)
        if not values:
            return None
        pick = min if mode == "min" else max
        epoch = pick(sorted(values), key=lambda e: values[e])
        return epoch, values[epoch]


def read_epoch_log(path: Path) -> EpochLog:
    """Per-epoch means of every numeric column; an empty log for a missing file."""
    if not path.is_file():
        return EpochLog()
    sums: dict[str, dict[int, list[float]]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            epoch = _number(row.get("epoch"))
            if epoch is None:
                continue
            for name, cell in row.items():
                value = _number(cell)
                if name in ("epoch", "step") or name is None or value is None:
                    continue
                sums.setdefault(name, {}).setdefault(int(epoch), []).append(value)
    return EpochLog(
        {
            name: {epoch: sum(cells) / len(cells) for epoch, cells in by_epoch.items()}
            for name, by_epoch in sums.items()
        }
    )


def _number(cell: str | None) -> float | None:
    if cell is None or not cell.strip():
        return None
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
