"""``ginpipe rm``: a run in use is refused (its lock, or a live process its lock record
names), a refusal deletes nothing, and ``--cache`` deletes only cache entries no other run
names."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from ginpipe.base.errors import EXIT_LOCKED
from ginpipe.core.store import ArtifactStore
from ginpipe.records.removal import in_use, needed_keys
from ginpipe.runs import rundir


@pytest.fixture
def two_runs(toy_project, cli):
    """``a`` and ``b`` share make_numbers' entry; each has its own add_up entry."""
    assert cli("run", "base.gin", "--name", "a").exit_code == 0
    assert cli("run", "base.gin", "--name", "b", "--mod", "add_up.scale=2.0").exit_code == 0
    return toy_project


def store_tasks(project) -> list[str]:
    return sorted(e.task for e in ArtifactStore(project.root / ".cache").entries())


def test_rm_deletes_the_run_and_keeps_the_cache_by_default(two_runs, cli) -> None:
    result = cli("rm", two_runs.run_dir("a"))
    assert result.exit_code == 0, result.output
    assert f"removed {two_runs.run_dir('a')}" in result.output
    assert two_runs.run_dirs() == ["b"]
    assert store_tasks(two_runs) == ["add_up", "add_up", "make_numbers"]
    assert [line.split()[0] for line in cli("runs").output.splitlines()[1:]] == ["proj/b"]


def test_rm_cache_keeps_entries_another_run_needs(two_runs, cli) -> None:
    dry = cli("rm", "--cache", "--dry-run", two_runs.run_dir("a"))
    assert dry.exit_code == 0
    assert "would remove 1 entries only these runs used; kept 1 that other runs use" in dry.output
    assert two_runs.run_dirs() == ["a", "b"] and len(store_tasks(two_runs)) == 3
    result = cli("rm", "--cache", two_runs.run_dir("a"))
    assert result.exit_code == 0
    # a's add_up is gone; make_numbers stays for b, and b reads it from the cache.
    assert store_tasks(two_runs) == ["add_up", "make_numbers"]
    calls = two_runs.calls("make_numbers")
    assert cli("resume", two_runs.run_dir("b"), "--rerun", "add_up").exit_code == 0
    assert two_runs.calls("make_numbers") == calls
    # The last run's entries go with it.
    assert cli("rm", "--cache", two_runs.run_dir("b")).exit_code == 0
    assert store_tasks(two_runs) == []


def test_rm_refuses_a_locked_run_and_deletes_nothing(two_runs, cli) -> None:
    with rundir.RunLock(rundir.RunDir(two_runs.run_dir("b"))):
        result = cli("rm", two_runs.run_dir("a"), two_runs.run_dir("b"))
        assert result.exit_code == EXIT_LOCKED
        assert f"run directory {two_runs.run_dir('b')} is in use by pid {os.getpid()}" in (
            result.output
        )
        assert two_runs.run_dirs() == ["a", "b"]
        # Another run in use may need any entry: --cache keeps them all.
        kept = cli("rm", "--cache", two_runs.run_dir("a"))
        assert kept.exit_code == 0
        assert "cache: kept every entry" in kept.output and "is running" in kept.output
        assert len(store_tasks(two_runs)) == 3


def test_a_lock_record_of_a_live_process_counts_as_in_use(two_runs) -> None:
    path = two_runs.run_dir("a")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (path / rundir.LOCK).write_text(f"pid {sleeper.pid} on {socket.gethostname()} since x")
        assert in_use(path) is not None
    finally:
        sleeper.kill()
        sleeper.wait()
    assert in_use(path) is None  # its process is gone (killed without releasing)


def test_rm_refuses_what_is_not_a_run(two_runs, cli, tmp_path) -> None:
    result = cli("rm", two_runs.runs)
    assert result.exit_code == 2 and "not a run directory" in result.output
    link = tmp_path / "link"
    link.symlink_to(two_runs.run_dir("a"))
    result = cli("rm", link)
    assert result.exit_code == 2 and "symbolic link" in result.output
    sweep = two_runs.runs / "sweep-1"
    (sweep / "trial-0000").mkdir(parents=True)
    (sweep / rundir.GROUP_FILE).write_text("{}")
    (sweep / "trial-0000" / rundir.CONFIG).write_text("")
    result = cli("rm", sweep / "trial-0000")
    assert result.exit_code == 2 and "remove the whole sweep folder" in result.output
    assert two_runs.run_dirs() == ["a", "b", "sweep-1"]


def test_needed_keys_are_the_recorded_task_and_input_keys(two_runs) -> None:
    keys = needed_keys(two_runs.run_dir("a"))
    recorded = {t["key"] for t in two_runs.run_json("a")["tasks"] if t["key"]}
    assert keys == recorded and all(len(k) == 16 for k in keys)
