"""``--jobs N``: independent branches at once, in processes of their own, with the same
results, cache and records as one after another."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import graphtasks  # noqa: F401  (registers the tasks the configs name)

HERE = Path(__file__).resolve().parent
TOY_DIR = HERE.parent / "toy"
GINPIPE = Path(sys.executable).parent / "ginpipe"
BRANCHES = """\
import toytasks
import graphtasks
make_numbers.n = 4
run.tasks = [@make_numbers, @left, @right, @join]
left.wait_for = 'right.started'
right.mark = 'right.started'
"""


def test_two_branches_run_at_the_same_time(toy_project, cli) -> None:
    toy_project.write("b.gin", BRANCHES)
    result = cli("run", "b.gin", "--name", "par", "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert "left: running in a process" in result.output
    assert toy_project.run_json("par")["metrics"] == {"total": 10.0}  # 2*10 - 10
    status = toy_project.task_status("par")
    assert status == {
        "make_numbers": "completed",
        "left": "completed",
        "right": "completed",
        "join": "completed",
    }
    log = (toy_project.run_dir("par") / "run.log").read_text()
    assert "[left] doubling" in log


def test_what_a_child_computed_is_cached(toy_project, cli) -> None:
    plain = "\n".join(line for line in BRANCHES.splitlines() if "started" not in line)
    toy_project.write("p.gin", plain + "\n")
    assert cli("run", "p.gin", "--name", "first", "--jobs", "2").exit_code == 0
    assert cli("run", "p.gin", "--name", "again", "--jobs", "2").exit_code == 0
    assert toy_project.task_status("again") == {
        "make_numbers": "cached",
        "left": "cached",
        "right": "cached",
        "join": "completed",
    }
    assert toy_project.calls() == ["make_numbers", "left", "right", "join", "join"] or (
        toy_project.calls() == ["make_numbers", "right", "left", "join", "join"]
    )
    assert toy_project.run_json("again")["metrics"] == {"total": 10.0}


def test_one_job_runs_the_branches_one_after_another(toy_project, cli) -> None:
    """The handshake of the test above cannot complete without --jobs."""
    toy_project.write("b.gin", BRANCHES)
    result = cli("run", "b.gin", "--name", "seq", "-m", "left.patience=0.5")
    assert result.exit_code == 1
    assert "never appeared" in toy_project.run_json("seq")["error"]["message"]


def test_a_failing_branch_fails_the_run_after_the_other_finishes(toy_project, cli) -> None:
    toy_project.write("b.gin", BRANCHES + "right.fail = True\n")
    result = cli("run", "b.gin", "--name", "bad", "--jobs", "2")
    assert result.exit_code == 1
    assert "task 'right' failed" in result.output
    record = toy_project.run_json("bad")
    assert record["status"] == "failed" and record["error"]["task"] == "right"
    assert "RuntimeError: right branch failed" in record["error"]["message"]
    assert toy_project.task_status("bad") == {
        "make_numbers": "completed",
        "left": "completed",
        "right": "failed",
    }
    graph = json.loads((toy_project.run_dir("bad") / "pipeline.json").read_text())
    assert {t["label"]: t["status"] for t in graph["tasks"]}["join"] == "skipped"


def test_kill_9_of_the_run_ends_its_children_and_resume_finishes(toy_project) -> None:
    """A child never outlives the main process: the run directory's lock (inherited through
    the fork) is free for the resume, which reuses the branch that had finished."""
    held = BRANCHES.replace("left.wait_for = 'right.started'", "left.wait_for = 'released'")
    toy_project.write("b.gin", held.replace("right.mark = 'right.started'\n", ""))
    env = {**os.environ, "PYTHONPATH": str(TOY_DIR)}  # toytasks and graphtasks
    command = [str(GINPIPE), "run", "b.gin", "--name", "k", "--jobs", "2"]
    proc = subprocess.Popen(command, cwd=toy_project.path, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while "right" not in toy_project.calls() or not _stored(toy_project, "right"):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    children = _children(proc.pid)  # left's process, waiting for 'released'
    assert children, "the run holds no branch process"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in children):
        assert time.monotonic() < deadline, "a child outlived the killed run"
        time.sleep(0.05)
    (toy_project.path / "released").write_text("go")
    done = subprocess.run(
        [str(GINPIPE), "resume", str(toy_project.run_dir("k")), "--jobs", "2"],
        cwd=toy_project.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    record = toy_project.run_json("k")
    assert record["status"] == "completed" and record["metrics"] == {"total": 10.0}
    status = {t["name"]: t["status"] for t in record["tasks"]}
    assert status["right"] == "cached" and status["left"] == "completed"


def _children(pid: int) -> list[int]:
    """The processes ``pid`` forked that are still there."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def _stored(project, task: str) -> bool:
    cache = project.root / ".cache" / "objects"
    return any(
        json.loads(m.read_text()).get("task") == task for m in cache.glob("*/*/manifest.json")
    )


def test_resource_mistakes_are_refused_before_any_work(toy_project, cli) -> None:
    toy_project.write(
        "g.gin",
        "import toytasks\nimport graphtasks\nrun.tasks = [@make_numbers, @g/pipeline()]\n"
        "g/pipeline.tasks = [@add_up]\ng/pipeline.resources = {'gpus': 1}\n",
    )
    result = cli("run", "g.gin", "--jobs", "2", env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.exit_code == 2
    assert result.output == "error: task 'g/add_up' needs 1 GPU(s); this machine has 0\n"
    assert cli("run", "g.gin", "--jobs", "0").output == (
        "error: --jobs 0: give 1 or more tasks at once\n"
    )
    toy_project.write(
        "c.gin",
        "import toytasks\nrun.tasks = [@c/pipeline()]\n"
        "c/pipeline.tasks = [@make_numbers]\nc/pipeline.resources = {'cpu': 1}\n",
    )
    result = cli("run", "c.gin", "--jobs", "2")
    assert result.exit_code == 2 and "unknown resource 'cpu'; known: cpus, gpus" in result.output
    assert toy_project.calls() == [] and toy_project.run_dirs() == []
