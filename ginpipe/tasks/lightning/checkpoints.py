"""Checkpoint files of a run: atomic writes, finding the one to resume from, checking it.

Lightning writes a checkpoint through a temp file in ``$TMPDIR`` and a move, which is not
atomic across filesystems and never fsynced; a kill during the write can leave a partial
``last.ckpt``. ``AtomicCheckpointIO`` writes beside the target instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO
from torch import nn

from ginpipe import CheckpointError, atomic_path

LAST_NAME = "last"
ON_EXCEPTION_NAME = "on_exception"
RESUMABLE_FILES = (f"{LAST_NAME}.ckpt", f"{ON_EXCEPTION_NAME}.ckpt")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save to a temp file in the checkpoint's own directory, fsync, then ``os.replace``.

    A reader sees the previous checkpoint or the new one, never half of one, even if the
    process dies mid-write. Loading defaults to ``weights_only=True``: our checkpoints hold
    only tensors and plain values.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(
        self,
        path: str | Path,
        map_location: Callable[..., Any] | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        return super().load_checkpoint(path, map_location, weights_only is not False)


def find_resume_checkpoint(directory: Path) -> Path | None:
    """The newest of ``last.ckpt`` and ``on_exception.ckpt`` in ``directory``, if any."""
    candidates = [directory / name for name in RESUMABLE_FILES if (directory / name).is_file()]
    return max(candidates, key=lambda path: path.stat().st_mtime_ns, default=None)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely (tensors and plain values only) on CPU."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({reason}); delete it to start over"
        ) from error
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise CheckpointError(f"{path} is not a Lightning checkpoint (it has no state_dict)")
    return checkpoint


def check_checkpoint_fits(path: Path, module: nn.Module) -> dict[str, Any]:
    """Read ``path`` and check that its weights fit ``module`` key by key and shape by shape.

    Lightning would fail later with a multi-line error; this names the file and the first
    key that differs, e.g. after the model's width was changed in the config.
    """
    checkpoint = read_checkpoint(path)
    saved: dict[str, torch.Tensor] = checkpoint["state_dict"]
    expected = module.state_dict()
    for key, tensor in expected.items():
        if key not in saved:
            problem = f"'{key}' is missing from the checkpoint"
        elif tuple(saved[key].shape) != tuple(tensor.shape):
            problem = (
                f"'{key}' has shape {list(saved[key].shape)} in the checkpoint "
                f"but {list(tensor.shape)} in the model"
            )
        else:
            continue
        raise CheckpointError(f"checkpoint {path} does not fit the configured model: {problem}")
    unexpected = [key for key in saved if key not in expected]
    if unexpected:
        raise CheckpointError(
            f"checkpoint {path} does not fit the configured model: "
            f"'{unexpected[0]}' is not in the model"
        )
    return checkpoint
