"""Shared fixtures: a toy project on disk, a clean gin/logging/env state, an in-process CLI.

The toy task module (``tests/toy/toytasks.py``) is imported once here: gin names must be
unique per process, so configs refer to it with ``import toytasks`` and nothing registers
it a second time.
"""

from __future__ import annotations

import json
import os
import sys

# One OpenMP thread per torch process: the suite runs two workers on two cores, each starting
# console scripts that train, and torch's default of a thread per core oversubscribes the
# machine (two matrix rows side by side: 74 s with the default, 52 s with one thread). Set
# before torch is imported here; the processes the tests start inherit it. A test about
# threads sets its own (tests/sweep/test_launch.py).
os.environ.setdefault("OMP_NUM_THREADS", "1")
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gin
import pytest
from loguru import logger
from typer.testing import CliRunner, Result

TOY_DIR = Path(__file__).resolve().parent / "toy"
if str(TOY_DIR) not in sys.path:
    sys.path.insert(0, str(TOY_DIR))

import toytasks  # noqa: E402  (needs TOY_DIR on sys.path)

from ginpipe.runs.distributed import LAUNCHER_VARIABLES  # noqa: E402

BASE_GIN = """\
# numbers -> total -> metrics
import toytasks

make_numbers.n = 4
add_up.scale = 1.0
run.tasks = [@make_numbers, @add_up, @report]
"""


def gin_parse(text: str) -> None:
    """``gin.parse_config`` after making the names the text uses configurable, as
    composing a config does (nothing is registered up front)."""
    from ginpipe.config import names
    from ginpipe.config.gintext import split_statements

    for stmt in split_statements(text):
        for name in (stmt.configurable, *stmt.references):
            if name:
                names.make_configurable(name)
        gin.parse_config(stmt.text)


def _reset_logging() -> None:
    logger.remove()
    # Resolve sys.stderr at write time: the CLI runner swaps it per invocation.
    logger.add(lambda message: sys.stderr.write(message), level="INFO")


@pytest.fixture(autouse=True)
def clean_globals() -> Iterator[None]:
    """gin bindings, loguru handlers, launcher variables and toy records start empty."""
    saved = {name: os.environ.pop(name) for name in LAUNCHER_VARIABLES if name in os.environ}
    gin.clear_config()
    toytasks.EVENTS.clear()
    toytasks.OFFSET_CALLS.clear()
    yield
    gin.clear_config()
    _reset_logging()
    for name in LAUNCHER_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(saved)


@dataclass
class ToyProject:
    """A folder holding configs; runs land in ``experiments/proj``."""

    path: Path

    @property
    def root(self) -> Path:
        return self.path / "experiments"

    @property
    def runs(self) -> Path:
        return self.root / self.path.name

    @property
    def objects(self) -> Path:
        return self.root / ".cache" / "objects"

    def write(self, name: str, text: str) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def calls(self, name: str | None = None) -> Any:
        return toytasks.calls(name, self.path)

    def run_dir(self, name: str) -> Path:
        return self.runs / name

    def run_json(self, name: str) -> dict[str, Any]:
        return json.loads((self.run_dir(name) / "run.json").read_text())

    def task_status(self, name: str) -> dict[str, str]:
        return {t["name"]: t["status"] for t in self.run_json(name)["tasks"]}

    def run_dirs(self) -> list[str]:
        if not self.runs.is_dir():
            return []
        return sorted(p.name for p in self.runs.iterdir() if p.is_dir())


@pytest.fixture
def toy_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ToyProject:
    """``tmp/proj`` with ``base.gin`` (make_numbers -> add_up -> report), as the cwd."""
    path = tmp_path / "proj"
    path.mkdir()
    project = ToyProject(path)
    project.write("base.gin", BASE_GIN)
    monkeypatch.chdir(path)
    # Durability is not under test here, and fsync dominates a toy run's time on slow disks.
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    return project


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Call the ``ginpipe`` command line in this process; returns typer's ``Result``."""
    from ginpipe.cli import app

    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
        # A run hands its directory down to child processes through the environment;
        # in one process that would steer the next invocation, so it is cleared each time.
        full_env: dict[str, str | None] = {"GINPIPE_RUN_DIR": None, **(env or {})}
        result = runner.invoke(app, [str(a) for a in args], env=full_env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    return invoke


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A ``heavy`` test is ``slow`` too, so ``-m "not slow"`` (the fast lane) leaves it out.
    Files holding heavy tests start first, then those holding slow ones (each file's own
    order kept): xdist hands files to workers in this order, so the longest ones do not
    begin at the end and leave one worker idle."""
    for item in items:
        if item.get_closest_marker("heavy") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
    rank: dict[str, int] = {}
    for item in items:
        weight = (
            0 if item.get_closest_marker("heavy") else 1 if item.get_closest_marker("slow") else 2
        )
        rank[item.path.as_posix()] = min(rank.get(item.path.as_posix(), 2), weight)
    items.sort(key=lambda item: rank[item.path.as_posix()])
