"""``ginpipe graph``, the graph every run directory gets, and the plan shown in text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import graphtasks  # noqa: F401  (registers the tasks the configs name)
import pytest

BRANCHES = """\
import toytasks
import graphtasks
run.tasks = [@make_numbers, @left, @right, @join]
"""
GINPIPE = Path(sys.executable).parent / "ginpipe"


def test_mermaid_of_a_config_names_every_task_and_key(toy_project, cli) -> None:
    toy_project.write("b.gin", BRANCHES)
    result = cli("graph", "b.gin")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "flowchart LR"
    assert '    t1["left"]' in lines and '    t3["join"]' in lines
    assert "    t0 -- numbers --> t1" in lines and "    t0 -- numbers --> t2" in lines
    assert "    t1 -- left --> t3" in lines and "    t2 -- right --> t3" in lines
    assert toy_project.calls() == [] and not toy_project.root.exists()


def test_png_and_svg_files_by_suffix(toy_project, cli) -> None:
    toy_project.write("b.gin", BRANCHES)
    assert cli("graph", "b.gin", "-o", "p.png").output.strip() == "wrote p.png"
    assert (toy_project.path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli("graph", "b.gin", "-o", "p.svg").exit_code == 0
    svg = (toy_project.path / "p.svg").read_text()
    assert "<svg" in svg and "join" in svg
    assert cli("graph", "b.gin", "--format", "mermaid", "-o", "p.md").exit_code == 0
    assert (toy_project.path / "p.md").read_text().startswith("flowchart LR\n")


def test_format_mistakes_are_one_line_exit_2(toy_project, cli) -> None:
    toy_project.write("b.gin", BRANCHES)
    result = cli("graph", "b.gin", "-o", "p.txt")
    assert result.exit_code == 2
    assert result.output.startswith("error: p.txt: cannot tell the format from '.txt'")
    result = cli("graph", "b.gin", "--format", "png")
    assert result.exit_code == 2 and "add -o pipeline.png" in result.output
    result = cli("graph", "b.gin", "--format", "dot", "-o", "p.dot")
    assert result.exit_code == 2 and "choose one of png, svg, mermaid" in result.output
    assert not any(toy_project.path.glob("p.*"))


def test_every_run_directory_gets_its_graph_with_status(toy_project, cli) -> None:
    toy_project.write("b.gin", BRANCHES)
    assert cli("run", "b.gin", "--name", "first").exit_code == 0
    assert cli("run", "b.gin", "--name", "again").exit_code == 0
    first = json.loads((toy_project.run_dir("first") / "pipeline.json").read_text())["tasks"]
    assert [(t["label"], t["status"]) for t in first] == [
        ("make_numbers", "ran"),
        ("left", "ran"),
        ("right", "ran"),
        ("join", "ran"),
    ]
    assert all(t["seconds"] >= 0 for t in first)
    again = (toy_project.run_dir("again") / "pipeline.mmd").read_text()
    assert '    t1["left<br/>cached"]:::cached' in again
    assert "join<br/>ran " in again and "classDef cached" in again


def test_a_failed_run_shows_the_failure_and_what_never_ran(toy_project, cli) -> None:
    toy_project.write("b.gin", BRANCHES + "right.fail = True\n")
    assert cli("run", "b.gin", "--name", "bad").exit_code == 1
    record = json.loads((toy_project.run_dir("bad") / "pipeline.json").read_text())
    status = {t["label"]: t["status"] for t in record["tasks"]}
    assert status == {"make_numbers": "ran", "left": "ran", "right": "failed", "join": "skipped"}
    result = cli("graph", str(toy_project.run_dir("bad")), "-o", "bad.png")
    assert result.exit_code == 0, result.output
    assert (toy_project.path / "bad.png").stat().st_size > 1000


def test_dry_run_shows_what_each_task_waits_for(toy_project, cli) -> None:
    toy_project.write("b.gin", BRANCHES)
    result = cli("run", "b.gin", "--dry-run")
    assert result.exit_code == 0
    join = next(line for line in result.output.splitlines() if " join " in line)
    assert "after: left, right" in join and "reads: left, right" in join


@pytest.mark.slow
def test_the_console_script_draws_a_shipped_pipeline(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run(
        [str(GINPIPE), "graph", "base", "models/logreg", "-o", "logreg.png"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "wrote logreg.png"
    assert (tmp_path / "logreg.png").read_bytes()[:4] == b"\x89PNG"
    text = subprocess.run(
        [str(GINPIPE), "graph", "base", "models/logreg"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "fit_sklearn" in text and "-- estimator -->" in text


def test_a_run_without_a_graph_record_is_one_line(toy_project, cli) -> None:
    toy_project.write("b.gin", BRANCHES)
    assert cli("run", "b.gin", "--name", "r").exit_code == 0
    (toy_project.run_dir("r") / "pipeline.json").unlink()
    result = cli("graph", str(toy_project.run_dir("r")), "-o", "r.png")
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "no pipeline.json" in result.output
    result = cli("graph", str(toy_project.run_dir("r")), "-m", "left.seconds=1")
    assert result.exit_code == 2 and "-m applies to configs" in result.output
