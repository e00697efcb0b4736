"""The cache under faults: a writer killed mid-entry, and entries left half-written.

A store entry is committed by its manifest and published by one rename; a process killed
before either must leave no entry a reader can see, and the next run (or resume) must
compute that task again. The toy pipeline (make_numbers -> add_up -> report) keeps each
process to about a second; every process is a real CLI process (see ``faultrun.py``).
"""

from __future__ import annotations

import pytest
from faultrun import Launch

from ginpipe.core.store import MANIFEST, ArtifactStore

INSTANTS = {
    # add_up's outputs are encoded in its temp entry; the manifest is not written yet
    "files-written": "cache-files:2",
    # add_up's manifest is written in its temp entry; the rename that publishes it is not done
    "manifest-written": "cache-publish:2",
}


def visible_tasks(store: ArtifactStore) -> list[str]:
    return sorted(entry.task for entry in store.entries())


@pytest.mark.slow
@pytest.mark.parametrize("instant", list(INSTANTS))
def test_a_kill_during_a_cache_write_leaves_no_entry_and_resume_recomputes(
    toy_project, instant
) -> None:
    logs = toy_project.path / "logs"
    run_dir = toy_project.run_dir("a")
    store = ArtifactStore(toy_project.root / ".cache")
    at = INSTANTS[instant]

    killed = Launch("killed", ["run", "base.gin", "--name", "a"], logs, at=at)
    killed.cwd = toy_project.path
    assert killed.start().wait() == -9, str(killed)
    assert killed.fired == [at]
    assert toy_project.calls() == ["make_numbers", "add_up"]
    assert visible_tasks(store) == ["make_numbers"]
    (temp,) = [p for p in store.root.iterdir() if p.name.startswith(".tmp-")]
    assert any(p.name != MANIFEST for p in temp.iterdir())  # outputs were written
    assert (temp / MANIFEST).exists() == (instant == "manifest-written")

    resumed = Launch("resumed", ["resume", str(run_dir)], logs)
    resumed.cwd = toy_project.path
    assert resumed.start().wait() == 0, str(resumed)
    assert toy_project.task_status("a") == {
        "make_numbers": "cached",
        "add_up": "completed",
        "report": "completed",
    }
    assert toy_project.calls() == ["make_numbers", "add_up", "add_up", "report"]
    assert toy_project.run_json("a")["metrics"]["accuracy"] == 0.1
    assert visible_tasks(store) == ["add_up", "make_numbers"]
    assert all(store.verify(entry.key) for entry in store.entries())
    assert toy_project.run_dirs() == ["a"]


def test_an_entry_without_its_manifest_at_its_final_place_is_a_miss_and_is_replaced(
    toy_project, cli
) -> None:
    """A half-written entry where a committed one belongs (e.g. a copy interrupted by a
    full disk) is recomputed and replaced, never read and never a crash."""
    assert cli("run", "base.gin", "--name", "a").exit_code == 0
    store = ArtifactStore(toy_project.root / ".cache")
    (entry,) = [e for e in store.entries() if e.task == "add_up"]
    (entry.path / MANIFEST).unlink()
    assert visible_tasks(store) == ["make_numbers"]

    result = cli("run", "base.gin", "--name", "b")
    assert result.exit_code == 0, result.output
    assert toy_project.task_status("b")["add_up"] == "completed"
    assert toy_project.calls("add_up") == 2
    assert toy_project.run_json("b")["metrics"]["accuracy"] == 0.1
    assert visible_tasks(store) == ["add_up", "make_numbers"]
    assert store.verify(entry.key)


def test_a_committed_entry_with_a_damaged_file_is_recomputed_not_a_crash(toy_project, cli) -> None:
    assert cli("run", "base.gin", "--name", "a").exit_code == 0
    store = ArtifactStore(toy_project.root / ".cache")
    (entry,) = [e for e in store.entries() if e.task == "add_up"]
    (data,) = [p for p in entry.path.iterdir() if p.name != MANIFEST]
    data.write_bytes(data.read_bytes()[:-1] + b"#")

    result = cli("run", "base.gin", "--name", "b")
    assert result.exit_code == 0, result.output
    assert toy_project.calls("add_up") == 2
    assert toy_project.run_json("b")["metrics"]["accuracy"] == 0.1
    assert store.verify(entry.key)
