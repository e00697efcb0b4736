"""The hostile re-run: each case once gave a traceback, a wrong answer or a silent loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harden_helpers import assert_one_line_error, tmpfs_fixture  # noqa: F401


def test_a_config_without_a_task_list_is_one_line(toy_project, cli) -> None:
    toy_project.write("only_model.gin", "import toytasks\nmake_numbers.n = 3\n")
    for command in ("config", "run"):
        result = cli(command, "only_model.gin")
        assert result.exit_code == 2, result.output
        assert_one_line_error(result.output, "no task list: these configs set no run.tasks")
    assert not toy_project.root.exists()


@pytest.mark.parametrize("name", ["two\nlines", " padded", "bell\a"])
def test_a_run_name_that_breaks_listings_is_refused(toy_project, cli, name: str) -> None:
    result = cli("run", "base.gin", "--name", name)
    assert result.exit_code == 2
    assert_one_line_error(result.output, "--name must be printable")
    assert not toy_project.root.exists()


@pytest.mark.parametrize(
    ("storage", "reason"),
    [
        ("sqlite:////nonexistent/folder/x.db", "unable to open database file"),
        ("bogus://x", "Can't load plugin"),
    ],
)
def test_a_sweep_storage_that_cannot_hold_a_study_is_one_line(
    toy_project, cli, storage: str, reason: str
) -> None:
    pytest.importorskip("optuna")
    result = cli("sweep", "base.gin", "-m", "make_numbers.n=2,3", "--storage", storage)
    assert result.exit_code == 2, result.output
    assert_one_line_error(result.output, f"--storage {storage}: cannot open a study there")
    assert reason in result.output
    assert not toy_project.runs.exists() or not list(toy_project.runs.glob("sweep-*"))


def test_a_sweep_metric_no_trial_reports_stops_at_the_first_trial(toy_project, cli) -> None:
    pytest.importorskip("optuna")
    result = cli("sweep", "base.gin", "-m", "make_numbers.n=2,3,4", "--metric", "totl")
    assert result.exit_code == 2, result.output
    assert "--metric totl: trial-0000 completed without it (did you mean 'total'?)" in (
        result.output
    )
    assert toy_project.calls("report") == 1  # not once per trial
    [sweep] = toy_project.runs.glob("sweep-*")
    results = json.loads((sweep / "sweep.json").read_text()).get("results") or {}
    assert [t["state"] for t in results.get("trials", [])] == ["failed"]


def test_a_symlinked_project_folder_is_never_followed(toy_project, cli, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    toy_project.root.mkdir(parents=True)
    (toy_project.root / "linked").symlink_to(outside)
    result = cli("run", "base.gin", "--project", "linked", "--name", "x")
    assert result.exit_code == 2
    assert_one_line_error(result.output, "linked is a symbolic link")
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("project", ["../../elsewhere", "linked"])
def test_a_sweep_stays_inside_its_root(toy_project, cli, tmp_path, project: str) -> None:
    pytest.importorskip("optuna")
    outside = tmp_path / "outside"
    outside.mkdir()
    toy_project.root.mkdir(parents=True)
    (toy_project.root / "linked").symlink_to(outside)
    result = cli("sweep", "base.gin", "-m", "make_numbers.n=2,3", "--project", project)
    assert result.exit_code == 2, result.output
    assert list(outside.iterdir()) == []
    assert not (toy_project.path.parent / "elsewhere").exists()
    assert not (toy_project.path / "elsewhere").exists()


def test_cp_never_writes_through_a_symbolic_link(toy_project, cli, tmp_path) -> None:
    target = tmp_path / "outside.gin"
    (toy_project.path / "mine.gin").symlink_to(target)  # dangling
    result = cli("cp", "models/resnet.gin", "mine.gin", "--force")
    assert result.exit_code == 2
    assert_one_line_error(result.output, "mine.gin is a symbolic link")
    assert not target.exists()


@pytest.mark.parametrize("damage", ["", '{"op_code": 0, "worker_id": "x"\n', "garbage\n"])
def test_a_damaged_study_journal_is_never_silently_started_over(
    toy_project, cli, damage: str
) -> None:
    pytest.importorskip("optuna")
    assert cli("sweep", "base.gin", "-m", "make_numbers.n=2,3").exit_code == 0
    [sweep] = toy_project.runs.glob("sweep-*")
    results = (sweep / "sweep.json").read_text()
    (sweep / "study.journal").write_text(damage)
    resumed = cli("sweep", "--resume", str(sweep))
    assert resumed.exit_code == 2, resumed.output
    assert "study" in resumed.output and len(resumed.output.strip().splitlines()) == 1
    assert toy_project.calls("report") == 2  # no trial ran again
    assert (sweep / "sweep.json").read_text() == results


@pytest.mark.parametrize(
    ("configs", "mod"),
    [
        (("base", "data/audio", "models/audio_cnn"), "log_mel.n_mels=0"),
        (("base", "data/audio", "models/audio_cnn"), "log_mel.hop_length=-1"),
        (("base", "models/resnet"), "ResNet.width=-3"),
    ],
)
def test_a_size_that_cannot_be_is_refused_before_work(project_folder, cli, configs, mod) -> None:
    """These once failed deep inside torch after the data steps had run."""
    result = cli("config", *configs, "-m", mod)
    assert result.exit_code == 2, result.output
    assert_one_line_error(result.output, f"{mod}: must be > 0")


def test_a_failed_run_asked_for_predictions_says_to_resume_it(toy_project, tmp_path) -> None:
    from ginpipe.base.errors import ConfigError
    from ginpipe.tasks.bundle import read_bundle

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"status": "failed"}))
    with pytest.raises(ConfigError) as info:
        read_bundle(run)
    assert str(info.value) == f"{run} has no model: the run is failed; continue it with: " + (
        f"ginpipe resume {run}"
    )
    assert "--rerun" not in str(info.value)


@pytest.fixture
def project_folder(tmp_path, monkeypatch):
    """An empty folder of the user's: `base` and the other configs are the shipped ones."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_demo_port_out_of_range_or_in_use_is_one_line(cli, tmp_path) -> None:
    import socket

    result = cli("demo", str(tmp_path), "--port", "99999")
    assert result.exit_code == 2
    assert_one_line_error(result.output, "--port must be in 1..65535, got 99999")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("demo", str(tmp_path), "--port", str(port))
    assert result.exit_code == 2
    assert_one_line_error(result.output, f"cannot listen on 127.0.0.1:{port}: in use")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    """A small trained run (the shipped debug/fast pipeline) to predict and export from."""
    import os
    import subprocess

    folder = tmp_path_factory.mktemp("digits")
    env = {k: v for k, v in os.environ.items() if k != "GINPIPE_RUN_DIR"}
    done = subprocess.run(
        ["ginpipe", "run", "base", "models/resnet", "debug/fast", "--name", "d"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return folder / "experiments" / folder.name / "d"


@pytest.mark.slow
@pytest.mark.parametrize("command", ["export-onnx", "export-torchscript", "predict"])
def test_a_full_disk_under_an_output_is_exit_4_naming_it(digits_run, cli, tmpfs, command):
    """torch's own writers once aborted the process from C++ (exit 134) and left a temp."""
    if command == "export-onnx":
        pytest.importorskip("onnxruntime")
    full = tmpfs("16k")
    if command == "predict":
        import numpy as np

        rows = full.parent / "rows.npy"
        np.save(rows, np.random.default_rng(0).random((3000, 64), dtype=np.float32))
        out = full / "p.csv"
        result = cli("predict", str(digits_run), str(rows), "-o", str(out))
    else:
        out = full / ("m.onnx" if command.endswith("onnx") else "m.pt")
        result = cli("export", str(digits_run), "-f", command.split("-")[1], "-o", str(out))
    assert result.exit_code == 4, result.output
    assert_one_line_error(result.output, f"cannot use {out}: no space left")
    assert list(full.iterdir()) == []  # neither the output nor a temp file


@pytest.mark.slow
def test_sigterm_to_predict_leaves_no_temp_file(digits_run, tmp_path) -> None:
    import os
    import signal
    import subprocess
    import time

    import numpy as np

    rows = tmp_path / "rows.npy"
    np.save(rows, np.random.default_rng(0).random((400_000, 64), dtype=np.float32))
    process = subprocess.Popen(
        ["ginpipe", "predict", str(digits_run), str(rows), "-o", str(tmp_path / "p.csv")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the output is being written
    assert list(tmp_path.glob(".tmp-*")), "predict never started writing"
    os.kill(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "Traceback" not in err
    assert list(tmp_path.glob(".tmp-*")) == [] and not (tmp_path / "p.csv").exists()


def test_a_slurm_sweep_without_sbatch_leaves_no_folder(toy_project, cli, monkeypatch) -> None:
    pytest.importorskip("submitit")
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    result = cli("sweep", "base.gin", "-m", "make_numbers.n=2,3", "--launcher", "slurm")
    assert result.exit_code == 2
    assert_one_line_error(result.output, "sbatch")
    assert not toy_project.runs.exists() or not list(toy_project.runs.glob("sweep-*"))


def test_a_full_disk_under_the_feature_store_is_exit_4(tmp_path, monkeypatch, cli, tmpfs):
    """A worker of extract_features' pool hit the full disk: once exit 1, a task failure."""
    import sys

    scripts = Path(__file__).resolve().parents[2] / "scripts"
    sys.path.insert(0, str(scripts))
    try:
        from make_audio_dataset import write_audio_events
    finally:
        sys.path.remove(str(scripts))
    monkeypatch.chdir(tmp_path)
    write_audio_events(tmp_path / "data", 40, 8000, duration=0.25, groups=8)
    full = tmpfs("64k")
    (tmp_path / "feat.gin").write_text(
        "run.tasks = [@seed_everything, @load_table, @split_dataset, @extract_features]\n"
        "load_table.path = 'data/labels.csv'\nload_table.extra_columns = ['group']\n"
        "load_table.decoder = @audio_decoder()\naudio_decoder.sample_rate = 8000\n"
        "audio_decoder.duration = 0.25\nsplit_dataset.method = 'group'\n"
        "extract_features.function = @log_mel()\nlog_mel.sample_rate = 8000\n"
        f"extract_features.store = '{full}'\nextract_features.workers = 2\n"
        "extract_features.shard_size = 4\n"
    )
    result = cli("run", "base", "feat.gin", "--name", "f")
    assert result.exit_code == 4, result.output
    assert_one_line_error(result.output, "no space left")


def test_a_full_disk_under_an_array_cache_entry_is_exit_4(tmp_path, tmpfs) -> None:
    """numpy says a full device as "N requested and M written", with no errno: once exit 6."""
    import numpy as np

    from ginpipe.base.errors import NoSpaceError
    from ginpipe.core.store import ArtifactStore

    store = ArtifactStore(tmpfs("64k") / "cache")
    with pytest.raises(NoSpaceError) as info:
        store.save("ab" * 20, {"array": np.zeros(200_000)}, task="t")
    assert info.value.exit_code == 4 and "no space left" in str(info.value)
