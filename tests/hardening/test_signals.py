"""Signals as they really arrive: Ctrl-C and a scheduler's SIGTERM reach the whole process
group, DataLoader workers included. With the shipped files config (2 spawned workers),
signalling the group during worker start-up or in steady state exits 130/143, records
"interrupted", leaves a checkpoint, prints no worker traceback, and resumes."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from files_run import (
    CONFIGS,
    SMALL,
    make_dataset,
    run,
    signal_group,
    spawned_workers,
    start,
    wait_until,
)

pytestmark = pytest.mark.slow

NOISE = ("Traceback", "KeyboardInterrupt", "`weights_only` was not set", "exited unexpectedly")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("signals")
    make_dataset(path)
    return path


def interrupt(folder: Path, name: str, signum: int, moment: str) -> tuple[int, str, Path]:
    args = ["run", *CONFIGS, *SMALL, "--root", "exp", "--project", "p", "--name", name]
    process = start(folder, *args, "--mod", "Trainer.max_epochs=500")
    run_dir = folder / "exp" / "p" / name
    if moment == "start-up":  # the workers exist and are still importing torch
        wait_until(process, lambda: bool(spawned_workers(process.pid)))
    else:  # an epoch has ended: the persistent workers are serving batches
        wait_until(process, lambda: (run_dir / "checkpoints" / "last.ckpt").exists())
    code, output = signal_group(process, signum)
    return code, output, run_dir


@pytest.mark.parametrize(
    ("signum", "moment"),
    [
        (signal.SIGTERM, "start-up"),
        (signal.SIGINT, "start-up"),
        (signal.SIGTERM, "steady"),
    ],
)
def test_signal_to_the_process_group(folder: Path, signum: int, moment: str) -> None:
    name = f"{signal.Signals(signum).name}-{moment}"
    code, output, run_dir = interrupt(folder, name, signum, moment)
    assert code == (130 if signum == signal.SIGINT else 143), output
    for noise in NOISE:
        assert noise not in output, output
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted"
    assert record["error"]["message"] == f"interrupted by {signal.Signals(signum).name}"
    assert list((run_dir / "checkpoints").glob("*.ckpt"))
    if moment == "start-up" and signum == signal.SIGTERM:
        done = run(folder, "resume", str(run_dir), "--mod", "Trainer.max_epochs=1")
        assert done.returncode == 0, done.stderr
        assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
