"""``ginpipe predict``: stream a run's predictions for some input into a CSV file.

Memory stays flat: items are decoded per batch and each batch's rows are appended to a
temp file beside the output, which replaces the output only when every item is done, so a
bad input leaves nothing written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ginpipe.base.atomic import atomic_path
from ginpipe.base.errors import ConfigError
from ginpipe.inference.inputs import Items, read_items
from ginpipe.inference.outputs import check_output
from ginpipe.inference.predictor import Predictor, check_batching, progress
from ginpipe.inference.run_split import split_items


def items_for(predictor: Predictor, source: Any = None, split: str | None = None) -> Items:
    """What to predict: ``source`` (see ``read_items``) or one split of the run's data."""
    if (source is None) == (split is None):
        raise ConfigError("give either an INPUT to predict or --split NAME, not both or neither")
    if split is not None:
        return split_items(predictor.bundle, split)
    return read_items(predictor.bundle, source)


def predict_frame(
    predictor: Predictor, items: Items, batch_size: int = 256, num_workers: int = 0
) -> pd.DataFrame:
    """All predictions in one DataFrame (for notebooks; the CLI streams instead)."""
    frames = [
        predictor.frame(identifiers, probabilities)
        for identifiers, probabilities in predictor.batches(items, batch_size, num_workers)
    ]
    if not frames:
        return predictor.frame(items.identifiers[:0], np.zeros((0, len(predictor.classes))))
    return pd.concat(frames, ignore_index=True)


def predict_to_csv(
    run_dir: Path,
    output: Path,
    source: Any = None,
    split: str | None = None,
    batch_size: int = 256,
    num_workers: int = 0,
    show_progress: bool | None = None,
) -> str:
    """Write the predictions to ``output``; returns the line the CLI prints."""
    check_output(output, run_dir, inputs=[source])
    check_batching(batch_size, num_workers)
    predictor = Predictor(run_dir)
    items = items_for(predictor, source, split)
    with (
        atomic_path(output) as tmp,
        open(tmp, "w", newline="") as file,
        progress(len(items), show_progress) as bar,
    ):
        header = True
        for identifiers, probabilities in predictor.batches(items, batch_size, num_workers):
            predictor.frame(identifiers, probabilities).to_csv(file, header=header, index=False)
            header = False
            bar.update(len(identifiers))
        if header:  # no items: the header alone
            predictor.frame(items.identifiers[:0], np.zeros((0, len(predictor.classes)))).to_csv(
                file, index=False
            )
        file.flush()
    return f"wrote {len(items)} predictions to {output}"
