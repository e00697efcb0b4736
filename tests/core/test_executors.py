"""Tasks sent to a job scheduler (``executors.tasks``, ``@task(executor=)``): submitit's local
executor, and a faked SLURM environment as the sweep tests use; the rest of the graph waits
for the job, which works in the run's own directory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import graphtasks  # noqa: F401  (registers the tasks the configs name)
import pytest

from ginpipe.core.shares import Share

pytest.importorskip("submitit")

HERE = Path(__file__).resolve().parent
TOY_DIR = HERE.parent / "toy"
GINPIPE = Path(sys.executable).parent / "ginpipe"
BRANCHES = """\
import toytasks
import graphtasks
make_numbers.n = 4
run.tasks = [@make_numbers, @left, @right, @join]
"""


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "GINPIPE_"))}
    return {**env, "PYTHONPATH": str(TOY_DIR)}  # toytasks and graphtasks


def ginpipe(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GINPIPE), *args], cwd=cwd, env=environment(), capture_output=True, text=True
    )


@pytest.mark.slow
def test_a_task_sent_to_a_job_runs_there_and_the_graph_waits_for_it(toy_project) -> None:
    toy_project.write("b.gin", BRANCHES + "executors.tasks = {'left': 'local'}\n")
    done = ginpipe("run", "b.gin", "--name", "j", cwd=toy_project.path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "left: sent to local as a job" in done.stderr
    record = toy_project.run_json("j")
    assert record["metrics"] == {"total": 10.0}  # join read what the job stored
    left = next(t for t in record["tasks"] if t["name"] == "left")
    assert left["status"] == "completed" and left["executor"] == "local"
    (job,) = left["jobs"]
    jobs = toy_project.run_dir("j") / "slurm"
    assert "[left] doubling" not in done.stderr  # it ran in the job, logged to its own file
    assert "doubling" in (jobs / f"{job}_0_log.err").read_text()
    assert toy_project.calls("left") == 1
    # nothing pickled among the stored artifacts; submitit's own files stay in RUN/slurm
    assert not list((toy_project.root / ".cache").rglob("*.pkl"))
    again = ginpipe("run", "b.gin", "--name", "again", cwd=toy_project.path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert toy_project.task_status("again")["left"] == "cached"
    assert not (toy_project.run_dir("again") / "slurm").exists()  # nothing was submitted


@pytest.mark.slow
def test_a_failed_job_fails_the_run_naming_the_task_and_its_log(toy_project) -> None:
    toy_project.write(
        "b.gin", BRANCHES + "right.fail = True\nexecutors.tasks = {'right': 'local'}\n"
    )
    done = ginpipe("run", "b.gin", "--name", "bad", cwd=toy_project.path)
    assert done.returncode == 1
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert "task 'right' failed: JobError: RuntimeError: right branch failed" in line
    log = Path(re.search(r"\(job \S+, log: (\S+)\)", line).group(1))
    assert log.parent == toy_project.run_dir("bad").resolve() / "slurm"
    assert "Traceback" in log.read_text() and "right branch failed" in log.read_text()
    record = toy_project.run_json("bad")
    assert record["status"] == "failed" and record["error"]["task"] == "right"
    assert toy_project.task_status("bad")["right"] == "failed"


@pytest.mark.parametrize(
    ("binding", "expected"),
    [
        (
            "executors.tasks = {'left': 'slurn'}",
            "unknown executor 'slurn' (did you mean 'slurm'?); executors are slurm, local",
        ),
        (
            "executors.tasks = {'lefft': 'local'}",
            "executors.tasks names 'lefft', which is no task of run.tasks (did you mean 'left'?)",
        ),
        (
            "executors.tasks = {'left': 'local'}\nexecutors.array = {'left': 2}",
            "task 'left' cannot split its work over an array",
        ),
        ("executors.tasks = {'join': 'local'}", "task 'join' cannot run as a job: it is not"),
        ("executors.slurm = {'partiton': 'cpu'}", "(did you mean 'partition'?)"),
        ("executors.tasks = {'left': 'slurm'}", "sent to slurm, which submits with sbatch"),
    ],
)
def test_mistakes_are_one_line_before_any_work(
    toy_project, cli, monkeypatch: pytest.MonkeyPatch, binding: str, expected: str
) -> None:
    monkeypatch.setenv("PATH", str(toy_project.path))  # no sbatch here
    toy_project.write("b.gin", BRANCHES + binding + "\n")
    result = cli("run", "b.gin", "--name", "x")
    assert result.exit_code == 2, result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("error:")]
    assert expected in line
    assert toy_project.run_dirs() == [] and toy_project.calls() == []


def test_the_dry_run_says_where_a_task_runs(toy_project, cli, capsys) -> None:
    toy_project.write("b.gin", BRANCHES + "executors.tasks = {'left': 'local'}\n")
    result = cli("run", "b.gin", "--name", "x", "--dry-run")
    assert result.exit_code == 0, result.output
    plan = {line.split()[1]: line for line in result.output.splitlines() if "after:" in line}
    assert plan["left"].endswith("runs on: local")
    assert "runs on" not in plan["right"]
    assert toy_project.calls() == []


def test_inputs_borrowed_from_another_run_cannot_feed_a_job(toy_project, cli) -> None:
    toy_project.write("b.gin", BRANCHES)
    assert cli("run", "b.gin", "--name", "first").exit_code == 0
    toy_project.write("j.gin", BRANCHES + "executors.tasks = {'left': 'local'}\n")
    earlier = str(toy_project.run_dir("first"))
    result = cli("run", "j.gin", "--name", "x", "--from", "left", "--inputs-from", earlier)
    assert result.exit_code == 2, result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("error:")]
    assert "--inputs-from cannot feed a task sent to a job scheduler (left:" in line
    assert not toy_project.run_dir("x").exists()


def test_under_a_faked_slurm_environment_the_job_runs_as_sbatch_would(
    toy_project, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ginpipe.core import jobs

    # a login node: sbatch on the PATH (never called: submitit's local executor runs the
    # job here), the job sees the variables of an allocation
    bin_dir = toy_project.path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setitem(jobs.CLUSTERS, "slurm", "local")
    for name, value in {"SLURM_JOB_ID": "4243", "SLURM_ARRAY_JOB_ID": "4242"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PYTHONPATH", environment()["PYTHONPATH"])
    toy_project.write(
        "b.gin",
        BRANCHES + "executors.tasks = {'right': 'slurm'}\nexecutors.slurm = {'partition': 'cpu'}\n",
    )
    result = cli("run", "b.gin", "--name", "s", "--jobs", "2")
    assert result.exit_code == 0, result.output
    record = toy_project.run_json("s")
    assert record["metrics"] == {"total": 10.0}
    right = next(t for t in record["tasks"] if t["name"] == "right")
    assert right["executor"] == "slurm" and len(right["jobs"]) == 1
    assert "left: running in a process" in result.output  # --jobs still forks the other branch
    assert sorted(toy_project.calls()) == ["join", "left", "make_numbers", "right"]


def test_a_task_that_declares_its_executor_runs_as_a_job(
    toy_project, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", environment()["PYTHONPATH"])
    toy_project.write(
        "t.gin", "import toytasks\nimport graphtasks\nrun.tasks = [@make_numbers, @tripled]\n"
    )
    result = cli("run", "t.gin", "--name", "t")
    assert result.exit_code == 0, result.output
    (entry,) = [t for t in toy_project.run_json("t")["tasks"] if t["name"] == "tripled"]
    assert entry["executor"] == "local" and entry["status"] == "completed"
    # the config's choice for it is checked like any other
    bad = cli("run", "t.gin", "--name", "u", "-m", "executors.tasks={'tripled': 'locl'}")
    assert bad.exit_code == 2 and "(did you mean 'local'?)" in bad.output


def test_a_job_the_scheduler_refuses_fails_the_run_in_one_line(
    toy_project, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = toy_project.path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(
        "#!/bin/sh\necho 'sbatch: error: invalid partition' >&2\nexit 1\n"
    )
    for tool in ("srun", "sbatch"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    toy_project.write("b.gin", BRANCHES + "executors.tasks = {'right': 'slurm'}\n")
    result = cli("run", "b.gin", "--name", "refused")
    assert result.exit_code == 1
    (line,) = [x for x in result.output.splitlines() if x.startswith("error:")]
    assert "task 'right' failed: JobError: could not submit: " in line
    assert "sbatch: error: invalid partition" in line
    assert toy_project.run_json("refused")["error"]["task"] == "right"
    assert "join" not in toy_project.calls()


def test_the_shares_of_an_array_split_the_shards_between_them(tmp_path: Path) -> None:
    """Each element computes only the shard-sized blocks it owns, whatever the other has
    committed already; together, all of them; the gathering pass then computes nothing."""
    import pandas as pd

    from ginpipe.tasks.data import callables
    from ginpipe.tasks.data.audio_features import LogMel
    from ginpipe.tasks.data.decoders import AudioDecoder
    from ginpipe.tasks.data.extraction import extract, extract_share

    sys.path.insert(0, str(HERE.parents[1] / "scripts"))
    try:
        from make_audio_dataset import write_audio_events
    finally:
        sys.path.pop(0)
    labels = write_audio_events(tmp_path / "data", 20, 8000, duration=0.25, groups=4)
    paths = [str(labels.parent / p) for p in pd.read_csv(labels)["path"]]
    specs = (
        callables.to_spec(AudioDecoder(sample_rate=8000, duration=0.25), "d"),
        callables.to_spec(LogMel(sample_rate=8000, n_fft=256, hop_length=128, n_mels=16), "f"),
    )
    options = {"shard_size": 4, "workers": 0, "progress": False}
    store = tmp_path / "features"
    computed = [extract_share(paths, store, *specs, Share(i, 2), **options) for i in (1, 0)]
    assert computed == [8, 12]  # blocks 1, 3 and 0, 2, 4 of five
    assert extract_share(paths, store, *specs, Share(0, 2), **options) == 0
    gathered = extract(paths, store, *specs, **options)
    assert (gathered.computed, gathered.reused) == (0, 20)
    assert Share(1, 2).owns(3) and not Share(1, 2).owns(2)


ARRAY_GIN = """\
import ginpipe.tasks.load
import ginpipe.tasks.split
import ginpipe.tasks.extract
import slowfeatures

run.tasks = [@load_table, @split_dataset, @extract_features]
load_table.path = 'data/labels.csv'
load_table.extra_columns = ['group']
load_table.decoder = @audio_decoder()
audio_decoder.sample_rate = 8000
audio_decoder.duration = 0.25
split_dataset.method = 'group'
extract_features.function = @slow_log_mel()
slow_log_mel.delay = 0.05
extract_features.shard_size = 4
extract_features.workers = 1
executors.tasks = {'extract_features': 'local'}
executors.array = {'extract_features': 2}
"""
ITEMS, SHARD = 24, 4


@pytest.mark.slow
def test_an_array_over_shards_survives_kill_9_of_the_run(tmp_path: Path) -> None:
    """Two array jobs extract their shares; the run is killed with SIGKILL meanwhile; the
    jobs finish on their own (as on a cluster) and the resume redoes no shard."""
    sys.path.insert(0, str(HERE.parents[1] / "scripts"))
    try:
        from make_audio_dataset import write_audio_events
    finally:
        sys.path.pop(0)
    write_audio_events(tmp_path / "data", ITEMS, 8000, duration=0.25, groups=8)
    (tmp_path / "a.gin").write_text(ARRAY_GIN)
    features = tmp_path / "experiments" / ".cache" / "features"
    proc = subprocess.Popen(
        [str(GINPIPE), "run", "a.gin", "--name", "arr"],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while len(list(features.glob("*/shard-*.json"))) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "no shard was committed"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    while _session_alive(proc.pid):  # the jobs go on without the run, and end
        assert time.monotonic() < deadline, "the array jobs did not end"
        time.sleep(0.05)
    shards = {p: p.stat().st_mtime_ns for p in features.glob("*/shard-*")}
    assert len([p for p in shards if p.suffix == ".json"]) == ITEMS // SHARD

    run = tmp_path / "experiments" / tmp_path.name / "arr"
    resumed = ginpipe("resume", str(run), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"0 items computed, {ITEMS} reused" in resumed.stderr  # the gathering pass
    assert {p: p.stat().st_mtime_ns for p in features.glob("*/shard-*")} == shards
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["attempts"] == 2
    task = next(t for t in record["tasks"] if t["name"] == "extract_features")
    assert task["executor"] == "local" and len(task["jobs"]) == 2
    logs = [(run / "slurm" / f"{job}_0_log.err").read_text() for job in task["jobs"]]
    assert all("0 items computed by this share" in log for log in logs)


def _session_alive(session: int) -> bool:
    found = subprocess.run(["pgrep", "-s", str(session)], capture_output=True, text=True)
    for pid in found.stdout.split():
        status = Path(f"/proc/{pid}/status")
        if status.exists() and "State:\tZ" not in status.read_text():
            return True
    return False
