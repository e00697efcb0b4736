"""The run directory: layout and run.json, names, continuing vs refusing a name, the lock
(held, and left by a killed process), DDP children, and ``ginpipe resume``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ginpipe.base.errors import RunLockedError
from ginpipe.runs import rundir

RUN_FILES = ("config.gin", "resolved.gin", "overrides.txt", "operative.gin", "run.json", "run.log")

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ginpipe.runs.rundir import RunDir, RunLock

    RunLock(RunDir(Path(sys.argv[1]))).acquire()
    print("locked", flush=True)
    sys.stdin.read()
    """
)


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file of a run directory but the lock, by content."""
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != rundir.LOCK
    }


@pytest.fixture
def lock_holder() -> Iterator:
    """Start a process that holds a run directory's lock until told to stop."""
    procs: list[subprocess.Popen] = []

    def start(path: Path) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


# -- layout ----------------------------------------------------------------------------------


def test_layout_and_run_json(toy_project, cli) -> None:
    result = cli("run", "base.gin", "--name", "first", "--mod", "make_numbers.n=5")
    assert result.exit_code == 0, result.output
    path = toy_project.root / "proj" / "first"
    for name in RUN_FILES:
        assert (path / name).is_file(), name
    assert (path / "config.gin").read_text().count("make_numbers.n=5") == 1
    assert "make_numbers.n = 5" in (path / "resolved.gin").read_text()
    assert (path / "overrides.txt").read_text() == "make_numbers.n=5\n"
    assert "make_numbers.n = 5" in (path / "operative.gin").read_text()
    record = toy_project.run_json("first")
    assert record["status"] == "completed" and record["exit_code"] == 0
    assert record["name"] == "first" and record["project"] == "proj"
    assert Path(record["dir"]) == path.resolve()
    assert isinstance(record["argv"], list) and record["argv"]
    assert "git" in record
    assert {"torch", "ginpipe", "python"} <= set(record["versions"])
    assert record["attempts"] == 1
    assert record["overrides"] == ["make_numbers.n=5"]
    assert [t["name"] for t in record["tasks"]] == ["make_numbers", "add_up", "report"]
    assert all(isinstance(t["seconds"], float) for t in record["tasks"])
    assert record["metrics"] == {"accuracy": 0.15, "total": 15.0}
    log = (path / "run.log").read_text()
    assert "make_numbers" in log and "run completed" in log


def test_generated_name_is_date_time_and_config_hash(toy_project, cli) -> None:
    assert cli("run", "base.gin").exit_code == 0
    (name,) = toy_project.run_dirs()
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", name)
    digest = toy_project.run_json(name)["config_digest"]
    assert name.endswith(digest[:6])


def test_generated_names_never_collide(toy_project, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two runs started in the same second with the same config.
    monkeypatch.setattr(rundir, "generated_name", lambda digest: f"20250101-000000-{digest[:6]}")
    assert cli("run", "base.gin").exit_code == 0
    assert cli("run", "base.gin").exit_code == 0
    first, second = toy_project.run_dirs()
    assert second == f"{first}-2"
    assert toy_project.run_json(first)["attempts"] == 1
    assert toy_project.run_json(second)["attempts"] == 1


def test_create_unique_makes_a_fresh_directory_each_time(tmp_path: Path) -> None:
    made = {rundir.create_unique(tmp_path / "p", "same") for _ in range(3)}
    assert sorted(p.name for p in made) == ["same", "same-2", "same-3"]


def test_name_must_be_a_plain_directory_name(toy_project, cli) -> None:
    result = cli("run", "base.gin", "--name", "a/b")
    assert result.exit_code == 2
    assert "--name" in result.output
    assert not toy_project.runs.exists()


# -- same name -------------------------------------------------------------------------------


def test_same_name_same_config_continues(toy_project, cli) -> None:
    assert cli("run", "base.gin", "--name", "again").exit_code == 0
    first = toy_project.run_json("again")
    assert cli("run", "base.gin", "--name", "again").exit_code == 0
    second = toy_project.run_json("again")
    assert second["attempts"] == 2
    assert second["first_started"] == first["first_started"]
    assert [h["attempt"] for h in second["history"]] == [1, 2]
    assert toy_project.run_dirs() == ["again"]


def test_same_name_other_config_is_refused_and_touches_nothing(toy_project, cli) -> None:
    assert cli("run", "base.gin", "--name", "fixed").exit_code == 0
    before = snapshot(toy_project.run_dir("fixed"))
    calls = toy_project.calls()
    result = cli("run", "base.gin", "--name", "fixed", "--mod", "add_up.scale=2.0")
    assert result.exit_code == 2
    assert "add_up.scale = 2.0" in result.output
    assert "add_up.scale = 1.0" in result.output
    assert "ginpipe resume" in result.output
    assert snapshot(toy_project.run_dir("fixed")) == before
    assert toy_project.calls() == calls


def test_same_name_other_config_is_refused_even_without_run_json(toy_project, cli) -> None:
    # A run killed before its first run.json write still has its config files.
    assert cli("run", "base.gin", "--name", "early").exit_code == 0
    (toy_project.run_dir("early") / "run.json").unlink()
    before = snapshot(toy_project.run_dir("early"))
    result = cli("run", "base.gin", "--name", "early", "--mod", "add_up.scale=2.0")
    assert result.exit_code == 2
    assert snapshot(toy_project.run_dir("early")) == before


# -- lock ------------------------------------------------------------------------------------


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    run = rundir.RunDir(tmp_path)
    with rundir.RunLock(run), pytest.raises(RunLockedError, match="in use by pid"):
        rundir.RunLock(run).acquire()
    with rundir.RunLock(run):
        pass


def test_run_held_by_another_process_exits_3(toy_project, cli, lock_holder) -> None:
    assert cli("run", "base.gin", "--name", "busy").exit_code == 0
    before = snapshot(toy_project.run_dir("busy"))
    calls = toy_project.calls()
    holder = lock_holder(toy_project.run_dir("busy"))
    result = cli("run", "base.gin", "--name", "busy")
    assert result.exit_code == 3
    assert f"pid {holder.pid}" in result.output
    assert snapshot(toy_project.run_dir("busy")) == before
    assert toy_project.calls() == calls


def test_lock_of_a_killed_process_is_recovered(toy_project, cli, lock_holder) -> None:
    assert cli("run", "base.gin", "--name", "stale").exit_code == 0
    holder = lock_holder(toy_project.run_dir("stale"))
    holder.kill()  # SIGKILL: no cleanup at all
    holder.wait(timeout=10)
    assert cli("run", "base.gin", "--name", "stale").exit_code == 0
    assert toy_project.run_json("stale")["attempts"] == 2


# -- processes of one run --------------------------------------------------------------------


def test_ddp_child_joins_the_run_without_writing_run_files(toy_project, cli) -> None:
    assert cli("run", "base.gin", "--name", "ddp").exit_code == 0
    path = toy_project.run_dir("ddp").resolve()
    before = {name: (path / name).read_bytes() for name in RUN_FILES}
    # Rank 0 is still running: it holds the lock.
    with rundir.RunLock(rundir.RunDir(path)):
        result = cli("run", "base.gin", env={"GINPIPE_RUN_DIR": str(path), "LOCAL_RANK": "1"})
    assert result.exit_code == 0, result.output
    assert {name: (path / name).read_bytes() for name in RUN_FILES} == before
    assert (path / "run.rank1.log").is_file()
    assert toy_project.run_dirs() == ["ddp"]


def test_a_stale_run_dir_variable_never_redirects_a_fresh_run(toy_project, cli) -> None:
    """Only ranks launched for a run read GINPIPE_RUN_DIR; a value left in the shell (or
    by an earlier run in the same process) is ignored by a plain invocation."""
    assert cli("run", "base.gin", "--name", "parent").exit_code == 0
    path = toy_project.run_dir("parent").resolve()
    result = cli("run", "base.gin", "--name", "mine", env={"GINPIPE_RUN_DIR": str(path)})
    assert result.exit_code == 0
    assert toy_project.run_dirs() == ["mine", "parent"]
    assert toy_project.run_json("parent")["attempts"] == 1


# -- resume ----------------------------------------------------------------------------------


def test_resume_needs_no_config_files(
    toy_project, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("run", "base.gin", "--name", "r", "--mod", "make_numbers.n=5").exit_code == 0
    path = toy_project.run_dir("r").resolve()
    (toy_project.path / "base.gin").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # (A completed run resumed with its own config is left alone: change a binding.)
    result = cli("resume", path, "--mod", "add_up.scale=2.0")
    assert result.exit_code == 0, result.output
    record = rundir.read_run_json(path)
    assert record["attempts"] == 2 and record["status"] == "completed"
    assert record["metrics"]["total"] == 30.0
    statuses = {t["name"]: t["status"] for t in record["tasks"]}
    assert statuses["make_numbers"] == "cached" and statuses["add_up"] == "completed"
    assert not (elsewhere / "experiments").exists()


def test_resume_with_mods_appends_to_overrides(toy_project, cli) -> None:
    assert cli("run", "base.gin", "--name", "r", "--mod", "make_numbers.n=5").exit_code == 0
    path = toy_project.run_dir("r")
    assert cli("resume", path, "--mod", "add_up.scale=2.0").exit_code == 0
    assert (path / "overrides.txt").read_text() == "make_numbers.n=5\nadd_up.scale=2.0\n"
    assert "add_up.scale = 2.0" in (path / "resolved.gin").read_text()
    assert toy_project.run_json("r")["metrics"]["total"] == 30.0
    # The new binding is part of the run from now on: resuming again finds it complete
    # with that config and leaves it as it is.
    assert cli("resume", path).exit_code == 0
    assert (path / "overrides.txt").read_text() == "make_numbers.n=5\nadd_up.scale=2.0\n"
    assert toy_project.run_json("r")["metrics"]["total"] == 30.0
    assert toy_project.run_json("r")["attempts"] == 2


def test_resume_of_something_that_is_not_a_run(toy_project, cli) -> None:
    result = cli("resume", toy_project.path)
    assert result.exit_code == 2
    assert "not a run directory" in result.output


def test_leftover_temp_files_of_killed_writers_are_removed(tmp_path):
    """A writer killed between its temp file and os.replace leaves .tmp-* behind."""
    from ginpipe.runs.rundir import RunDir, remove_leftovers

    run = RunDir(tmp_path / "run")
    (run.path / "checkpoints").mkdir(parents=True)
    leftover = run.path / "checkpoints" / ".tmp-abc.ckpt"
    leftover.write_bytes(b"half")
    kept = run.path / "checkpoints" / "last.ckpt"
    kept.write_bytes(b"whole")
    assert remove_leftovers(run) == [leftover]
    assert not leftover.exists() and kept.read_bytes() == b"whole"
