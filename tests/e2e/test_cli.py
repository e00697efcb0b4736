"""The ``ginpipe`` command line: exit codes of the real console script (success, task
failure, config error, SIGINT, SIGTERM, then resume), light imports, and the ``config``,
``ls``, ``--dry-run`` commands.

The slow part (each ``ginpipe run`` process imports torch and Lightning) is a handful of
processes started together by one module fixture; the rest runs in this process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BASE_GIN, LAUNCHER_VARIABLES, TOY_DIR

NAP_GIN = """\
include 'base.gin'
run.tasks = [@make_numbers, @add_up, @nap, @report]
"""
FAIL_GIN = """\
import toytasks
run.tasks = [@make_numbers, @explode, @add_up]
"""
BAD_GIN = """\
import toytasks
make_numbers.n = 3
add_up.scael = 2.0
run.tasks = [@make_numbers, @add_up]
"""


def ginpipe_command() -> list[str]:
    script = Path(sys.executable).with_name("ginpipe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ginpipe.cli"]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TOY_DIR), env.get("PYTHONPATH")]))
    return env


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*ginpipe_command(), *args],
        cwd=cwd,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    return {"code": proc.returncode, "stdout": out, "stderr": err}


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def wait_until_napping(run_dir: Path, proc: subprocess.Popen, timeout: float = 90) -> None:
    """Until the run is recorded as running and its task before ``nap`` has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = read_json(run_dir / "run.json")
        done = [t["name"] for t in record.get("tasks", [])]
        if record.get("status") == "running" and "add_up" in done:
            time.sleep(0.2)  # well inside nap now
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {finish(proc)}")
        time.sleep(0.05)
    raise AssertionError(f"{run_dir} never started napping")


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Real ``ginpipe`` processes, started together: SIGINT, SIGTERM, a failing task, and
    a resume of the interrupted run once its process has exited."""
    project = tmp_path_factory.mktemp("cli") / "proj"
    project.mkdir()
    for name, text in {
        "base.gin": BASE_GIN,
        "nap.gin": NAP_GIN,
        "fail.gin": FAIL_GIN,
    }.items():
        (project / name).write_text(text)
    for hold in ("hold-int", "hold-term"):
        (project / hold).write_text("")
    runs = project / "experiments" / "proj"
    procs = {
        "int": start(["run", "nap.gin", "--name", "int", "--mod", "nap.hold='hold-int'"], project),
        "term": start(
            ["run", "nap.gin", "--name", "term", "--mod", "nap.hold='hold-term'"], project
        ),
        "fail": start(["run", "fail.gin", "--name", "fail"], project),
    }
    results: dict[str, Any] = {"project": project, "runs": runs}
    try:
        wait_until_napping(runs / "int", procs["int"])
        procs["int"].send_signal(signal.SIGINT)
        wait_until_napping(runs / "term", procs["term"])
        procs["term"].send_signal(signal.SIGTERM)
        results["int"] = finish(procs["int"])
        results["int_record"] = read_json(runs / "int" / "run.json")
        (project / "hold-int").unlink()
        procs["resume"] = start(["resume", str(runs / "int")], project)
        for name in ("term", "fail", "resume"):
            results[name] = finish(procs[name])
        yield results
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_failing_task_exits_1(processes) -> None:
    result = processes["fail"]
    assert result["code"] == 1, result["stderr"]
    assert "task 'explode' failed" in result["stderr"]
    assert "Traceback" not in result["stderr"]
    record = read_json(processes["runs"] / "fail" / "run.json")
    assert record["status"] == "failed"
    assert record["error"]["task"] == "explode"


@pytest.mark.slow
def test_sigint_exits_130_and_records_interrupted(processes) -> None:
    assert processes["int"]["code"] == 130, processes["int"]["stderr"]
    record = processes["int_record"]
    assert record["status"] == "interrupted"
    assert record["exit_code"] == 130
    assert "ginpipe resume" in processes["int"]["stderr"]


@pytest.mark.slow
def test_sigterm_exits_143_and_records_interrupted(processes) -> None:
    assert processes["term"]["code"] == 143, processes["term"]["stderr"]
    record = read_json(processes["runs"] / "term" / "run.json")
    assert record["status"] == "interrupted"
    assert record["exit_code"] == 143


@pytest.mark.slow
def test_resume_completes_an_interrupted_run_and_exits_0(processes) -> None:
    result = processes["resume"]
    assert result["code"] == 0, result["stderr"]
    assert "Traceback" not in result["stderr"]
    record = read_json(processes["runs"] / "int" / "run.json")
    assert record["status"] == "completed"
    assert record["exit_code"] == 0
    assert record["attempts"] == 2
    assert [h["status"] for h in record["history"]] == ["interrupted", "completed"]
    statuses = {t["name"]: t["status"] for t in record["tasks"]}
    assert statuses == {
        "make_numbers": "cached",
        "add_up": "cached",
        "nap": "completed",
        "report": "completed",
    }
    assert record["metrics"]["accuracy"] == 0.1


# -- light processes -------------------------------------------------------------------------


def run_light(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=60
    )


def test_help_and_a_light_import(tmp_path: Path) -> None:
    result = run_light([*ginpipe_command(), "--help"], tmp_path)
    assert result.returncode == 0
    for command in ("run", "resume", "config", "ls", "runs", "diff", "cache"):
        assert command in result.stdout
    check = (
        "import ginpipe.cli, sys; "
        "assert 'torch' not in sys.modules and 'pytorch_lightning' not in sys.modules"
    )
    assert run_light([sys.executable, "-c", check], tmp_path).returncode == 0


def test_config_error_one_line_and_traceback_with_verbose(tmp_path: Path) -> None:
    (tmp_path / "base.gin").write_text(BASE_GIN)
    quiet = run_light([*ginpipe_command(), "run", "bsae.gin"], tmp_path)
    assert quiet.returncode == 2
    assert quiet.stderr.strip().splitlines() == [
        "error: config file not found: bsae.gin (did you mean 'base.gin'?)"
    ]
    loud = run_light([*ginpipe_command(), "run", "bsae.gin", "-v"], tmp_path)
    assert loud.returncode == 2
    assert "Traceback" in loud.stderr
    assert "did you mean 'base.gin'" in loud.stderr


def test_history_commands_do_not_import_torch(toy_project, cli) -> None:
    assert cli("run", "base.gin", "--name", "a").exit_code == 0
    assert cli("run", "base.gin", "--name", "b", "--mod", "add_up.scale=2.0").exit_code == 0
    script = textwrap.dedent(
        """
        import sys
        from ginpipe.cli import main
        for argv in (["runs"], ["runs", "--where", "add_up.scale=2.0"],
                     ["diff", "experiments/proj/a", "experiments/proj/b"], ["cache", "ls"]):
            try:
                main(argv)
            except SystemExit as e:
                assert not e.code, (argv, e.code)
        heavy = [m for m in ("torch", "pytorch_lightning") if m in sys.modules]
        assert not heavy, heavy
        print("light")
        """
    )
    result = run_light([sys.executable, "-c", script], toy_project.path)
    assert result.returncode == 0, result.stderr
    assert "accuracy=0.2000" in result.stdout
    assert "add_up.scale: 1.0 -> 2.0" in result.stdout
    assert result.stdout.strip().endswith("light")


# -- in-process commands ---------------------------------------------------------------------


def test_config_prints_bindings_and_runs_nothing(toy_project, cli) -> None:
    result = cli("config", "base.gin", "--mod", "add_up.scale=2.0")
    assert result.exit_code == 0
    assert "add_up.scale = 2.0" in result.output
    assert "make_numbers.n = 4" in result.output
    assert "# tasks: make_numbers -> add_up -> report" in result.output
    assert toy_project.calls() == []
    assert not toy_project.root.exists()


def test_config_with_a_bad_mod_exits_2_and_runs_nothing(toy_project, cli) -> None:
    result = cli("config", "base.gin", "--mod", "add_up.scale")
    assert result.exit_code == 2
    assert "malformed --mod" in result.output
    assert toy_project.calls() == []
    assert not toy_project.root.exists()


def test_config_error_is_one_line_and_verbose_adds_the_traceback(toy_project, cli) -> None:
    toy_project.write("bad.gin", BAD_GIN)
    result = cli("run", "bad.gin")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "bad.gin:3" in lines[0] and "did you mean 'scale'" in lines[0]
    loud = cli("run", "bad.gin", "-v")
    assert loud.exit_code == 2
    assert "Traceback" in loud.stderr
    assert toy_project.calls() == []
    assert not toy_project.root.exists()


def test_ls_shows_a_task_with_reads_writes_and_parameters(toy_project, cli) -> None:
    result = cli("ls", "add_up", "--module", "toytasks")
    assert result.exit_code == 0
    out = result.output
    assert "add_up(scale=1.0)" in out
    assert "reads ['numbers'] -> writes ['total']" in out
    assert "Sum the numbers" in out
    assert "make_numbers" not in out
    assert "factor=REQUIRED" in cli("ls", "scale_by", "--module", "toytasks").output


def test_ls_with_an_unknown_module(toy_project, cli) -> None:
    result = cli("ls", "--module", "no_such_module_here")
    assert result.exit_code == 2
    assert "no_such_module_here" in result.output


def test_dry_run_shows_the_plan_and_creates_nothing(toy_project, cli) -> None:
    first = cli("run", "base.gin", "--dry-run")
    assert first.exit_code == 0
    assert not toy_project.root.exists()
    lines = [line for line in first.output.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")]
    assert len(lines) == 3
    assert all(" run " in line for line in lines)

    assert cli("run", "base.gin", "--name", "a").exit_code == 0
    calls = toy_project.calls()
    result = cli("run", "base.gin", "--dry-run", "--mod", "add_up.scale=2.0")
    assert result.exit_code == 0
    plan = {
        line.split()[1]: line.split()[2]
        for line in result.output.splitlines()
        if line.strip()[:2] in ("1.", "2.", "3.")
    }
    assert plan == {"make_numbers": "cached", "add_up": "run", "report": "run"}
    assert "run directory:" in result.output
    assert toy_project.run_dirs() == ["a"]
    assert toy_project.calls() == calls
