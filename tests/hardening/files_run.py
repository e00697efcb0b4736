"""Real ``ginpipe`` processes on the shipped file-based config (``configs/data/files.gin``:
PNG files decoded in 2 spawned DataLoader workers), for the signal and worker tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = [
    str(REPO / "configs" / name)
    for name in ("base.gin", "data/files.gin", "models/resnet.gin", "debug/fast.gin")
]
SMALL = ["--mod", "ResNet.width=8", "--mod", "make_features.stats_sample=32"]
WAIT_S = 300.0


def make_dataset(folder: Path) -> None:
    """``data/generated/digits_png`` under ``folder``, where files.gin looks for it."""
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_file_dataset.py"), "--limit", "400"],
        cwd=folder,
        check=True,
        capture_output=True,
    )


def start(folder: Path, *args: str) -> subprocess.Popen[str]:
    """``ginpipe ARGS`` in its own process group (as a terminal or scheduler starts it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "ginpipe.cli", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ginpipe.cli", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )


def spawned_workers(pid: int) -> list[int]:
    """Children of ``pid`` started by multiprocessing's spawn (the DataLoader workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def wait_until(process: subprocess.Popen[str], condition: Callable[[], bool]) -> None:
    """Poll ``condition`` while the process lives (no timing is asserted, only a bound)."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode} early:\n{process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the awaited moment never came")
        time.sleep(0.02)


def signal_group(process: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    os.killpg(process.pid, signum)
    output, _ = process.communicate(timeout=WAIT_S)
    return process.returncode, output
