"""Start real ``ginpipe`` processes with faults armed (see ``killer.py``) and read what
they leave behind.

Each process is forked from a multiprocessing fork server that imported torch, Lightning
and the tasks once; it then runs ``ginpipe.cli.main`` like the console script does, in its
own process, so SIGKILL, SIGINT and SIGTERM hit a real CLI process. Processes are waited
for through their exit (no sleeping, no timing).
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import killer

REPO = Path(__file__).resolve().parents[2]
CONFIGS = [str(REPO / "configs" / "base.gin"), str(REPO / "configs" / "models" / "resnet.gin")]
PROJECT = "faults"
EPOCHS = 3
BATCHES = 5  # training steps per epoch: global steps 5e .. 5e+4 belong to epoch e
# Small and fast, still a real ResNet trained with AdamW + OneCycleLR, deterministic on CPU.
SMALL = (
    f"Trainer.max_epochs={EPOCHS}",
    "ResNet.width=8",
    f"Trainer.limit_train_batches={BATCHES}",
    "Trainer.limit_val_batches=1",
    "fit.batch_size=32",
    "Trainer.enable_model_summary=False",
    "Trainer.num_sanity_val_steps=0",
    "OneCycleLR.max_lr=0.05",
)
PRELOAD = [
    "killer",
    "torch",
    "pytorch_lightning",
    "ginpipe.cli",
    "ginpipe.runs.runner",
    "ginpipe.tasks.seeding",
    "ginpipe.tasks.load",
    "ginpipe.tasks.split",
    "ginpipe.tasks.features",
    "ginpipe.tasks.fit",
    "ginpipe.tasks.evaluate",
    "ginpipe.tasks.report",
    "ginpipe.tasks.models.resnet",
]
from ginpipe.runs.distributed import LAUNCHER_VARIABLES  # noqa: E402

TIMEOUT_S = 300.0


def mods(*extra: str) -> list[str]:
    return [arg for mod in (*SMALL, *extra) for arg in ("--mod", mod)]


def run_args(root: Path, name: str, *extra_mods: str) -> list[str]:
    return [
        "run",
        *CONFIGS,
        "--root",
        str(root),
        "--project",
        PROJECT,
        "--name",
        name,
        *mods(*extra_mods),
    ]


_context: Any = None


def context() -> Any:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


@dataclass
class Launch:
    """One CLI process: its arguments, fault, output files and (once ended) exit code."""

    label: str
    argv: list[str]
    folder: Path
    at: str | None = None
    cwd: Path | None = None  # default: ``folder``
    process: Any = None
    code: int | None = None

    @property
    def stdout_path(self) -> Path:
        return self.folder / f"{self.label}.out"

    @property
    def stderr_path(self) -> Path:
        return self.folder / f"{self.label}.err"

    @property
    def trace_path(self) -> Path:
        return self.folder / f"{self.label}.trace.jsonl"

    def start(self) -> Launch:
        self.folder.mkdir(parents=True, exist_ok=True)
        cwd = self.cwd or self.folder
        self.process = context().Process(
            target=killer.child_main,
            args=(
                self.argv,
                self.at,
                str(self.trace_path),
                str(cwd),
                str(self.stdout_path),
                str(self.stderr_path),
                LAUNCHER_VARIABLES,
            ),
            name=f"ginpipe-{self.label}",
        )
        self.process.start()
        return self

    def wait(self, timeout: float = TIMEOUT_S) -> int:
        if self.code is None:
            self.process.join(timeout)
            if self.process.exitcode is None:
                self.process.kill()
                self.process.join()
                raise AssertionError(f"{self.label}: still running after {timeout} s\n{self}")
            self.code = self.process.exitcode
        return self.code

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    @property
    def trace(self) -> list[dict[str, Any]]:
        if not self.trace_path.exists():
            return []
        return [json.loads(line) for line in self.trace_path.read_text().splitlines() if line]

    @property
    def steps(self) -> list[int]:
        return [entry["step"] for entry in self.trace if "step" in entry]

    @property
    def fired(self) -> list[str]:
        return [entry["fired"] for entry in self.trace if "fired" in entry]

    def __str__(self) -> str:
        tail = "\n".join(self.stderr.splitlines()[-25:])
        return f"[{self.label} exit {self.code} fault {self.at}]\n{tail}"


def run_all(launches: list[Launch], timeout: float = TIMEOUT_S) -> None:
    """Start every launch, then wait for each to end."""
    for launch in launches:
        launch.start()
    for launch in launches:
        launch.wait(timeout)


# -- reading a run directory -----------------------------------------------------------------


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def temp_leftovers(root: Path) -> set[str]:
    """Every ``.tmp-*`` file or folder under ``root``, relative to it."""
    return {str(p.relative_to(root)) for p in root.rglob(".tmp-*")}


def copy_root(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


def snapshot(folder: Path) -> dict[str, bytes]:
    """Bytes of every file under ``folder`` (relative paths)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
