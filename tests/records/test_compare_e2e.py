"""The real ``ginpipe`` console script over three small runs in a temporary folder: the runs
table, tags and notes, diff, compare, rm. Two scikit-learn runs (C = 1.0 and 0.1) and one
network run of two short epochs (debug/fast), started together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def ginpipe(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("ginpipe")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "ginpipe.cli"]
    env = {k: v for k, v in os.environ.items() if k != "GINPIPE_RUN_DIR"}
    return subprocess.run(
        [*command, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("e2e") / "proj"
    path.mkdir()
    script = Path(sys.executable).with_name("ginpipe")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "ginpipe.cli"]
    runs = {
        "c1": ["base", "models/logreg"],
        "c01": ["base", "models/logreg", "-m", "LogisticRegression.C=0.1"],
        "net": ["base", "models/mlp", "debug/fast", "-m", "Trainer.max_epochs=2"],
    }
    started = [
        subprocess.Popen(
            [*command, "run", *args, "--name", name],
            cwd=path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, args in runs.items()
    ]
    for process in started:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output
    return path


def rows(output: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in output.splitlines()[1:]}


def test_runs_table_has_the_differing_value_and_durations(project) -> None:
    result = ginpipe("runs", cwd=project)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header[:4] == ["RUN", "STATUS", "STARTED", "DURATION"]
    assert "LogisticRegression.C" in header and header[-1] == "METRIC"
    table = rows(result.stdout)
    column = header.index("LogisticRegression.C") + 1  # STARTED is two words
    assert table["proj/c1"][column] == "1.0" and table["proj/c01"][column] == "0.1"
    assert table["proj/net"][column] == "-"
    for name in ("c1", "c01", "net"):
        record = json.loads((project / "experiments" / "proj" / name / "run.json").read_text())
        tasks = sum(t["seconds"] for t in record["tasks"])
        # the config's imports (torch, scikit-learn) are counted, not only the tasks
        assert record["duration_s"] > tasks


def test_sort_and_json(project) -> None:
    result = ginpipe("runs", "--sort", "accuracy", "--desc", "-f", "json", cwd=project)
    found = json.loads(result.stdout)
    accuracies = [r["metric"] for r in found]
    assert accuracies == sorted(accuracies, reverse=True) and len(found) == 3
    assert {r["run"]: r["config"].get("LogisticRegression.C") for r in found}["proj/c01"] == 0.1


def test_tags_notes_and_where(project) -> None:
    assert ginpipe("tag", "experiments/proj/c01", "best", cwd=project).returncode == 0
    assert ginpipe("note", "experiments/proj/net", "two epochs only", cwd=project).returncode == 0
    out = ginpipe("runs", "--where", "tag=best", cwd=project).stdout
    assert list(rows(out)) == ["proj/c01"] and out.splitlines()[0].split()[-1] == "TAGS"
    assert "two epochs only" in ginpipe("runs", cwd=project).stdout
    assert list(rows(ginpipe("runs", "--where", "note=epochs", cwd=project).stdout)) == ["proj/net"]


def test_diff_prints_only_what_changed(project) -> None:
    result = ginpipe("diff", "experiments/proj/c1", "experiments/proj/c01", cwd=project)
    assert result.returncode == 0
    config = result.stdout.split("config:\n")[1].split("metrics:")[0]
    assert config.strip() == "LogisticRegression.C: 1.0 -> 0.1"
    assert "+0.0000" not in result.stdout and "%" not in result.stdout


def test_compare_draws_a_png_and_refuses_a_run_directory(project) -> None:
    result = ginpipe(
        "compare", "experiments/proj/c1", "experiments/proj/c01", "experiments/proj/net",
        "-o", "out/compare.png", cwd=project,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "3 runs on accuracy" in result.stdout
    assert (project / "out" / "compare.png").read_bytes()[:4] == b"\x89PNG"
    inside = ginpipe(
        "compare", "experiments/proj/c1", "-o", "experiments/proj/c1/x.png", cwd=project
    )
    assert inside.returncode == 2 and "inside the run directory" in inside.stderr
    assert inside.stderr.count("\n") == 1  # one line, no traceback
    plotted = ginpipe("runs", "--where", "tag=best", "--plot", "best.png", cwd=project)
    assert plotted.returncode == 0 and (project / "best.png").is_file()


def test_rm_keeps_what_other_runs_need(project) -> None:
    missing = ginpipe("rm", "experiments/proj/nope", cwd=project)
    assert missing.returncode == 2 and "not a run directory" in missing.stderr
    result = ginpipe("rm", "--cache", "experiments/proj/c1", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "kept" in result.stdout  # the data steps c01 and net share
    assert not (project / "experiments" / "proj" / "c1").exists()
    assert set(rows(ginpipe("runs", cwd=project).stdout)) == {"proj/c01", "proj/net"}
    cache = ginpipe("cache", "ls", cwd=project).stdout
    assert "load_sklearn" in cache and "fit_sklearn" in cache  # c01's own fit stays


def test_looking_back_never_imports_torch(project) -> None:
    script = (
        "import sys\n"
        "from ginpipe.cli import main\n"
        "a, b = 'experiments/proj/c01', 'experiments/proj/net'\n"
        "for argv in (['runs', '-f', 'csv'], ['diff', a, b], ['compare', a, b, '-o', 'l.png']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as e:\n"
        "        assert not e.code, (argv, e.code)\n"
        "heavy = [m for m in ('torch', 'pytorch_lightning', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print('light')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("light")
