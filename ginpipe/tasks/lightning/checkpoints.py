"""Checkpoint files of a run: atomic writes, finding the one to resume from, checking it.

Lightning writes a checkpoint through a temp file in ``$TMPDIR`` and a move, which is not
atomic across filesystems and never fsynced; a kill during the write can leave a partial
``last.ckpt``. ``AtomicCheckpointIO`` writes beside the target instead, and
``BackgroundCheckpointIO`` leaves that disk work to a worker thread while training goes on.
"""

from __future__ import annotations

import functools
import io
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO
from torch import nn

from ginpipe import CheckpointError, ConfigError, did_you_mean
from ginpipe.tasks.engine import atomic_path, path_error

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
        write_atomically(path, functools.partial(torch.save, checkpoint))

    def load_checkpoint(
        self,
        path: str | Path,
        map_location: Callable[..., Any] | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        return super().load_checkpoint(path, map_location, weights_only is not False)


class BackgroundCheckpointIO(AtomicCheckpointIO):
    """``AtomicCheckpointIO`` that writes and fsyncs on one worker thread.

    The checkpoint is serialized at once, on the training thread, so the file holds the
    state of the moment Lightning asked for it; only the disk work (write, fsync, rename,
    which release the interpreter) is left to the worker. Serializing on the worker was
    measured slower than not using one at all: pickling holds the interpreter, and the
    training thread then waits for it between its own kernels. Saves and removals run in
    the order Lightning asks for them, so a removed file is never written afterwards. At
    most ``MAX_PENDING`` serialized checkpoints are held: a further save waits for the
    oldest write. Lightning calls ``teardown`` when ``fit`` ends or fails, which waits for
    every write; a failed write raises there or at the next save.

    Under DDP it writes at once, like ``AtomicCheckpointIO``: see ``_ranks_read_checkpoints``.

    Lightning's ``AsyncCheckpointIO`` is not used: it keeps its copies on the training
    device (GPU memory for each pending checkpoint) and removes files at once, before a
    queued write of the same file.
    """

    MAX_PENDING = 2

    def __init__(self) -> None:
        super().__init__()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()
        self._failure: BaseException | None = None

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        self._raise_failure()
        if _ranks_read_checkpoints():
            self.wait()
            super().save_checkpoint(checkpoint, path)
            return
        while len(self._pending) >= self.MAX_PENDING:
            self._pending.popleft().result()
        self._submit(write_atomically, path, functools.partial(write_all, serialized(checkpoint)))

    def remove_checkpoint(self, path: str | Path) -> None:
        if _ranks_read_checkpoints():
            self.wait()
            super().remove_checkpoint(path)
            return
        self._submit(super().remove_checkpoint, path)

    def wait(self) -> None:
        """Block until every queued write and removal is done; raise the first failure."""
        while self._pending:
            self._pending.popleft().result()
        self._raise_failure()

    def teardown(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def _submit(self, job: Callable[..., None], *args: Any) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ginpipe-ckpt")
        self._pending.append(self._pool.submit(self._run, job, *args))

    def _run(self, job: Callable[..., None], *args: Any) -> None:
        if self._failure is not None:
            return  # the first failure is the one reported; later jobs would repeat it
        try:
            job(*args)
        except BaseException as error:  # re-raised on the training thread
            self._failure = error

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure


def _ranks_read_checkpoints() -> bool:
    """Under DDP the other ranks read rank 0's files once Lightning's barrier after a save
    passes (``fit`` reads the best weights on every rank), so rank 0 writes before that."""
    distributed = torch.distributed
    return (
        distributed.is_available()
        and distributed.is_initialized()
        and distributed.get_world_size() > 1
    )


def write_atomically(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, then fsync and rename it; a
    failure of the disk is one line naming the checkpoint."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as file:
            # Through our own file object: on a failed write it is closed (and its
            # space freed) right away, and the OSError stays in the chain.
            write(file)
    except Exception as error:
        cause = _os_error_in(error)
        if cause is None:
            raise
        raise path_error(cause, path, "write checkpoint") from error


def serialized(checkpoint: dict[str, Any]) -> memoryview:
    """The bytes ``torch.save`` writes for ``checkpoint`` (tensors copied off any device)."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getbuffer()


def write_all(data: memoryview, file: BinaryIO) -> None:
    file.write(data)


def _os_error_in(error: BaseException) -> OSError | None:
    """The ``OSError`` behind ``error`` (torch reports a failed write as a RuntimeError)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def contained(path: str | Path | None, directory: Path) -> Path | None:
    """``path`` if it lies inside ``directory`` (after resolving), else None."""
    if not path:
        return None
    resolved = Path(path).resolve()
    return resolved if resolved.is_relative_to(directory.resolve()) else None


def find_resume_checkpoint(directory: Path) -> Path | None:
    """The newest of ``last.ckpt`` and ``on_exception.ckpt`` in ``directory``, if any."""
    candidates = [directory / name for name in RESUMABLE_FILES if (directory / name).is_file()]
    return max(candidates, key=lambda path: path.stat().st_mtime_ns, default=None)


class RelocatableModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose saved state names its files relative to its folder.

    Lightning stores absolute paths (``best_model_path``, ``best_k_models``...) in every
    checkpoint and, when the folder differs on resume, drops the ranking and keeps the old
    absolute ``best_model_path``: a moved run dir loses its best-k state, and a copied one
    points back into the original. Here the state holds file names only, and loading maps
    them into this callback's own folder, wherever the run directory now is.
    """

    PATH_FIELDS = ("best_model_path", "kth_best_model_path", "last_model_path")

    def _save_topk_checkpoint(self, trainer: Any, monitor_candidates: dict[str, Any]) -> None:
        """A monitored metric the model never logged is one line naming what it does log.

        Where Lightning itself would refuse it (validation has run): its message suggests
        calling ``log``, which misleads when the name is a typo. The metrics of a
        LightningModule are known only now, so fit cannot check them before training."""
        missing = self.monitor is not None and self.monitor not in monitor_candidates
        if missing and self.save_top_k != 0 and trainer.fit_loop.epoch_loop.val_loop._has_run:
            logged = sorted(monitor_candidates)
            raise ConfigError(
                f"fit.monitor={self.monitor!r} is not a metric the model logs; it logs "
                f"{', '.join(logged) or 'nothing'}{did_you_mean(self.monitor, logged)}"
            )
        super()._save_topk_checkpoint(trainer, monitor_candidates)

    def _generate_state_key(self, **kwargs: Any) -> str:
        # The key Lightning's own class has: checkpoints written before keep their state.
        return f"ModelCheckpoint{kwargs!r}"

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        for name in self.PATH_FIELDS:
            state[name] = file_name(state.get(name))
        state["best_k_models"] = {file_name(p): v for p, v in state["best_k_models"].items()}
        state["dirpath"] = "."
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        here = Path(self.dirpath) if self.dirpath else None
        if here is None:
            super().load_state_dict(state_dict)
            return
        state = dict(state_dict)
        for name in self.PATH_FIELDS:
            state[name] = in_folder(here, state.get(name))
        state["best_k_models"] = {
            in_folder(here, p): v for p, v in (state.get("best_k_models") or {}).items()
        }
        state["dirpath"] = self.dirpath
        super().load_state_dict(state)


def file_name(path: str | None) -> str:
    """The file name of a path Lightning recorded ("" stays "")."""
    return Path(path).name if path else ""


def in_folder(folder: Path, path: str | None) -> str:
    """A recorded checkpoint path (absolute, from anywhere, or a bare name) as the file of
    that name in ``folder``: a run reads only its own checkpoints."""
    return str(folder / Path(path).name) if path else ""


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely (tensors and plain values only) on CPU."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({_load_failure(error)}); "
            "move it aside to start training over"
        ) from error
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise CheckpointError(f"{path} is not a Lightning checkpoint (it has no state_dict)")
    return checkpoint


def _load_failure(error: Exception) -> str:
    """A short reason. torch's own text for a file that is not a safe checkpoint suggests
    ``weights_only=False``, which would run whatever code the file holds: never repeat it."""
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    text = (str(error).strip().splitlines() or [""])[0]
    if not text or "weights_only" in str(error) or "pickle" in text.lower():
        return type(error).__name__
    return text.split(". ")[0][:120]  # torch appends paragraphs of advice


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
