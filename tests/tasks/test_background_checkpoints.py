"""Checkpoints written on a worker thread: what the file holds, in what order files come and
go, how a failed write is reported, and when fit writes in the background at all."""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from pytorch_lightning.loggers import CSVLogger, Logger

from ginpipe.base.errors import NoSpaceError
from ginpipe.tasks.lightning import checkpoints
from ginpipe.tasks.lightning.checkpoints import AtomicCheckpointIO, BackgroundCheckpointIO
from ginpipe.tasks.lightning.trainer import build_trainer, reads_saved_checkpoints


@pytest.fixture
def write_gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Checkpoint writes wait until the test sets this event."""
    gate, write = threading.Event(), checkpoints.write_atomically

    def held_write(target: Any, write_file: Any) -> None:
        gate.wait(timeout=10)
        write(target, write_file)

    monkeypatch.setattr(checkpoints, "write_atomically", held_write)
    yield gate
    gate.set()  # never leave a worker thread waiting


def test_the_file_holds_the_state_of_the_save_not_of_later_training(tmp_path, write_gate):
    io, path = BackgroundCheckpointIO(), tmp_path / "last.ckpt"
    weights = torch.zeros(4)
    io.save_checkpoint({"state_dict": {"w": weights}, "nested": [weights]}, path)
    weights += 1  # training goes on while the write waits
    write_gate.set()
    io.teardown()

    saved = io.load_checkpoint(path)
    assert saved["state_dict"]["w"].tolist() == [0.0] * 4
    assert saved["nested"][0].tolist() == [0.0] * 4


def test_saves_and_removals_happen_in_the_order_asked(tmp_path):
    io = BackgroundCheckpointIO()
    best, newer = tmp_path / "best-0.ckpt", tmp_path / "best-1.ckpt"
    for _ in range(3):  # a removal queued behind a write of the same file never precedes it
        io.save_checkpoint({"step": torch.tensor(0)}, best)
        io.save_checkpoint({"step": torch.tensor(1)}, newer)
        io.remove_checkpoint(best)
        io.wait()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["best-1.ckpt"]
    io.teardown()


def test_at_most_two_copies_wait_to_be_written(tmp_path, write_gate):
    io = BackgroundCheckpointIO()
    io.save_checkpoint({"step": torch.tensor(1)}, tmp_path / "a.ckpt")
    io.save_checkpoint({"step": torch.tensor(2)}, tmp_path / "b.ckpt")
    third = threading.Thread(
        target=io.save_checkpoint, args=({"step": torch.tensor(3)}, tmp_path / "c.ckpt")
    )
    third.start()
    third.join(timeout=0.5)
    assert third.is_alive(), "a third save went ahead while two copies were waiting"
    write_gate.set()
    third.join(timeout=10)
    io.teardown()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ckpt", "b.ckpt", "c.ckpt"]


def test_a_failed_write_is_raised_at_teardown_and_leaves_no_partial_file(tmp_path, monkeypatch):
    io, path = BackgroundCheckpointIO(), tmp_path / "last.ckpt"

    def write_half_then_fail(data: Any, file: Any) -> None:
        file.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "write_all", write_half_then_fail)
    io.save_checkpoint({"step": torch.tensor(1)}, path)
    with pytest.raises(NoSpaceError, match=f"cannot write checkpoint {path}: no space left"):
        io.teardown()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_is_raised_by_the_next_save(tmp_path, monkeypatch):
    io = BackgroundCheckpointIO()
    monkeypatch.setattr(checkpoints, "write_all", _fail_with_no_space)
    io.save_checkpoint({"step": torch.tensor(1)}, tmp_path / "a.ckpt")
    io._pending[0].result()  # the write has failed on the worker thread
    with pytest.raises(NoSpaceError):
        io.save_checkpoint({"step": torch.tensor(2)}, tmp_path / "b.ckpt")
    io.teardown()


def test_under_ddp_the_write_is_done_before_save_returns(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "_ranks_read_checkpoints", lambda: True)
    io, path = BackgroundCheckpointIO(), tmp_path / "best.ckpt"
    io.save_checkpoint({"step": torch.tensor(1)}, path)
    assert path.is_file() and not io._pending
    io.remove_checkpoint(path)
    assert not path.exists()


def _fail_with_no_space(data: Any, file: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


class UploadsCheckpoints(Logger):
    """A user's logger that reads each checkpoint file when it is saved."""

    name = "uploads"
    version = 0

    def log_metrics(self, metrics: dict, step: int | None = None) -> None: ...

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None: ...

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None: ...


class LogsModelsWhenAsked(UploadsCheckpoints):
    def __init__(self, log_model: bool) -> None:
        super().__init__()
        self._log_model = log_model


def test_loggers_that_read_saved_checkpoints_are_recognised(tmp_path):
    assert not reads_saved_checkpoints(CSVLogger(tmp_path))
    assert reads_saved_checkpoints(UploadsCheckpoints())
    assert reads_saved_checkpoints(LogsModelsWhenAsked(log_model=True))
    assert not reads_saved_checkpoints(LogsModelsWhenAsked(log_model=False))


@pytest.mark.parametrize(
    ("loggers", "expected"),
    [([], BackgroundCheckpointIO), ([UploadsCheckpoints()], AtomicCheckpointIO)],
)
def test_fit_writes_in_the_background_unless_a_logger_reads_the_files(
    tmp_path: Path, loggers: list[Logger], expected: type
) -> None:
    trainer = build_trainer(tmp_path, callbacks=[], loggers=[CSVLogger(tmp_path), *loggers])
    assert type(trainer.strategy.checkpoint_io) is expected
