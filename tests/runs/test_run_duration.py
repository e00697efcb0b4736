"""A run's duration is its wall time from the moment it was asked for (composing the config
and importing what it names included), summed over its attempts."""

from __future__ import annotations

import time

from ginpipe.runs import rundir


def test_duration_counts_what_the_config_imports(toy_project, cli, monkeypatch) -> None:
    toy_project.write("slow_import_for_duration.py", "import time\ntime.sleep(0.6)\n")
    base = (toy_project.path / "base.gin").read_text()
    toy_project.write("slow.gin", f"import slow_import_for_duration\n{base}")
    monkeypatch.syspath_prepend(str(toy_project.path))
    assert cli("run", "slow.gin", "--name", "s").exit_code == 0
    record = toy_project.run_json("s")
    tasks = sum(t["seconds"] for t in record["tasks"])
    assert tasks < 0.6 <= record["duration_s"]
    assert record["history"][-1]["duration_s"] == record["duration_s"]


def test_duration_sums_the_attempts(tmp_path) -> None:
    run = rundir.RunDir(tmp_path / "r")
    run.path.mkdir()
    first = rundir.RunRecord(run, {}, started_at=time.monotonic() - 3.0)
    first.on_run_start({})
    first.on_run_end({"status": "interrupted", "exit_code": 130})
    assert 3.0 <= first.data["duration_s"] < 30
    second = rundir.RunRecord(run, {}, started_at=time.monotonic() - 2.0)
    second.on_run_start({})
    second.on_run_end({"status": "completed", "exit_code": 0})
    record = run.read_json()
    assert 2.0 <= record["attempt_duration_s"] < 3.0
    assert record["duration_s"] >= 5.0
    assert [h["status"] for h in record["history"]] == ["interrupted", "completed"]
    assert round(sum(h["duration_s"] for h in record["history"]), 3) == record["duration_s"]
