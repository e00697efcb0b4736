"""Start ``ginpipe run`` as real processes: plainly, under torchrun, or as a faked SLURM job.

Every run trains the small ResNet for one short epoch (``configs/debug/fast.gin``) in its
own ``--root``; the project is fixed (``--project dist``), so nothing depends on the name
of the folder the tests run from.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ginpipe.core.store import ArtifactStore

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PROJECT = "dist"
FAST = ("configs/base.gin", "configs/models/resnet.gin", "configs/debug/fast.gin")
DATA_TASKS = ("load_sklearn", "split_dataset", "make_features")
CACHED_TASKS = (*DATA_TASKS, "fit")
GENERATED_NAME = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}(-\d+)?")

# How launchers tell a process who it is; a child must see only what a test gives it.
LAUNCHER_NAMES = {
    "RANK",
    "LOCAL_RANK",
    "GROUP_RANK",
    "ROLE_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "NODE_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
}
LAUNCHER_PREFIXES = ("SLURM_", "TORCHELASTIC_", "PL_", "GINPIPE_")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without launcher variables, with this folder importable."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in LAUNCHER_NAMES and not k.startswith(LAUNCHER_PREFIXES)
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def ginpipe_command() -> list[str]:
    script = Path(sys.executable).with_name("ginpipe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ginpipe.cli"]


def run_args(root: Path, *more: str, configs: Sequence[str] = FAST) -> list[str]:
    return ["run", *configs, "--root", str(root), "--project", PROJECT, *more]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun_node(node: int, port: int, args: Sequence[str]) -> list[str]:
    """One of two single-process "nodes" on loopback, running ``python -m ginpipe.cli``."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        "--node-rank",
        str(node),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port),
        "-m",
        "ginpipe.cli",
        *args,
    ]


class Started:
    """A process whose output goes to files: nothing blocks on a pipe that an orphaned
    grandchild (torchrun starts its workers in sessions of their own) still holds open."""

    def __init__(self, command: Sequence[str], env: dict[str, str]) -> None:
        # open while the process runs; output() closes them
        self._out = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self._err = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.popen = subprocess.Popen(
            list(command), cwd=REPO, env=env, stdout=self._out, stderr=self._err, text=True
        )
        self.pid = self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def output(self) -> tuple[str, str]:
        texts = []
        for file in (self._out, self._err):
            file.seek(0)
            texts.append(file.read())
            file.close()
        return texts[0], texts[1]


def start(command: Sequence[str], env: dict[str, str] | None = None) -> Started:
    """Start in the repository, where the config paths resolve."""
    return Started(command, env if env is not None else clean_env())


@dataclass
class Finished:
    code: int | None  # None: still running at the deadline, then killed
    stdout: str
    stderr: str

    def tail(self, lines: int = 40) -> str:
        return "\n".join((self.stdout + self.stderr).splitlines()[-lines:])


def finish(proc: Started, timeout: float = 420) -> Finished:
    """Wait for ``proc``; one still running at the deadline is killed with its descendants."""
    try:
        code: int | None = proc.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in [*descendants(proc.pid), proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.popen.wait()
        code = None
    return Finished(code, *proc.output())


def descendants(pid: int) -> list[int]:
    """Children, grandchildren... of ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def run_dirs(root: Path) -> list[Path]:
    project = root / PROJECT
    return sorted(p for p in project.iterdir() if p.is_dir()) if project.is_dir() else []


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def task_status(run_dir: Path) -> dict[str, str]:
    return {t["name"]: t["status"] for t in read_json(run_dir / "run.json")["tasks"]}


def cache_entries(root: Path) -> list[Any]:
    return ArtifactStore(root / ".cache").entries()


def cached_task_names(root: Path) -> list[str]:
    return sorted(entry.task for entry in cache_entries(root))


def rank_log_lines(run_dir: Path, task: str, rank: int = 1) -> list[str]:
    """The lines of ``run.rank<N>.log`` about ``task``."""
    text = (run_dir / f"run.rank{rank}.log").read_text()
    return [line for line in text.splitlines() if f" {task}: " in line]


def assert_read_not_recomputed(run_dir: Path, rank: int = 1) -> None:
    """Rank ``rank`` took every data task from rank 0's committed entries."""
    for task in DATA_TASKS:
        lines = rank_log_lines(run_dir, task, rank)
        assert any("reused from cache" in line for line in lines), (task, lines)
        assert not any("running" in line for line in lines), (task, lines)
