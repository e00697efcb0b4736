"""A sweep that trains: a tiny ResNet on digits, where a deliberately bad learning rate is
pruned after its first validation epoch, and the data steps are computed once for all
trials."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import pytest

from ginpipe.sweep import definition
from ginpipe.sweep.study import GridSampler, reading_storage

LRS = ["0.03", "1e-7", "2e-7"]  # one good value, two that cannot learn in two epochs
TINY = [
    "-m", "ResNet.width=4", "-m", "ResNet.blocks_per_stage=[1]", "-m", "Trainer.max_epochs=2",
    "-m", "fit.scheduler=None", "-m", "Trainer.enable_model_summary=False",
]  # fmt: skip


def seed_trying_first(value: str, values: list[str] = LRS) -> int:
    """A sampler seed whose grid order starts with ``value``: the pruner then has a good
    trial to compare the bad ones with (which it cannot know before one completes)."""
    for seed in range(50):
        study = optuna.create_study(sampler=GridSampler({"LR": values}, seed=seed))
        if study.ask().suggest_categorical("LR", values) == value:
            return seed
    raise AssertionError("no seed starts with the good value")


def epochs_logged(run_dir: Path) -> int:
    with (run_dir / "logs" / "metrics.csv").open() as f:
        return len({row["epoch"] for row in csv.DictReader(f) if row.get("val_acc")})


@pytest.mark.slow
def test_bad_trials_are_pruned_and_data_steps_run_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    monkeypatch.chdir(tmp_path)  # the shipped base, not a local one
    seed = seed_trying_first("0.03")
    result = cli(
        "sweep", "base", "models/resnet", "-m", f"LR={','.join(LRS)}", *TINY,
        "--pruner", "median:startup=1", "--seed", str(seed),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [sweep] = sorted((tmp_path / "experiments" / tmp_path.name).glob("sweep-*"))
    data = json.loads((sweep / "sweep.json").read_text())
    assert data["prune"] is True
    # chosen on validation (fit.monitor), not on the test split's accuracy
    assert (data["metric"], data["direction"]) == ("val_acc", "maximize")
    states = {t["params"]["LR"]: t["state"] for t in data["results"]["trials"]}
    assert states == {"0.03": "complete", "1e-7": "pruned", "2e-7": "pruned"}
    assert data["results"]["best"]["params"] == {"LR": "0.03"}
    assert data["results"]["best"]["value"] > 0.15
    for trial in data["results"]["trials"]:
        run_dir = sweep / trial["dir"]
        record = json.loads((run_dir / "run.json").read_text())
        if trial["state"] == "pruned":
            # stopped after its first validation, not failed by the sweep: the run says why
            assert epochs_logged(run_dir) == 1
            assert record["status"] == "pruned"
            assert "TrialPruned" in record["error"]["message"]
        else:
            assert epochs_logged(run_dir) == 2
            assert record["status"] == "completed"

    # the data steps ran in the first trial and were read from the root's cache after it
    statuses = {}
    for trial in sorted(sweep.glob("trial-*")):
        record = json.loads((trial / "run.json").read_text())
        statuses[trial.name] = {t["name"]: t["status"] for t in record["tasks"]}
    first, *others = sorted(statuses)
    for step in ("load_sklearn", "split_dataset", "make_features"):
        assert statuses[first][step] == "completed"
        assert all(statuses[other][step] == "cached" for other in others)

    table = cli("runs", "--sweep", str(sweep)).output.splitlines()
    assert table[1].split()[1:3] == ["complete", "0.03"]
    assert sorted(line.split()[1] for line in table[2:4]) == ["pruned", "pruned"]
    assert "1 complete, 2 pruned" in table[4]


@pytest.mark.slow
def test_a_trial_on_two_ranks_is_its_own_process_and_rank_0_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    """DDP: Lightning starts rank 1 by running the trial's command line again, so each
    trial is a process of its own; rank 0 reports to the pruner, both ranks stop together."""
    monkeypatch.chdir(tmp_path)
    values = ["0.03", "1e-7"]
    result = cli(
        "sweep", "base", "models/resnet", "trainer/ddp", "-m", f"LR={','.join(values)}", *TINY,
        "-m", "BATCH_SIZE=16",  # each rank sees half an epoch: enough steps to learn in one
        "--pruner", "median:startup=1", "--seed", str(seed_trying_first("0.03", values)),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [sweep] = sorted((tmp_path / "experiments" / tmp_path.name).glob("sweep-*"))
    data = json.loads((sweep / "sweep.json").read_text())
    assert data["own_process"] is True
    states = {t["params"]["LR"]: t["state"] for t in data["results"]["trials"]}
    assert states == {"0.03": "complete", "1e-7": "pruned"}, data["results"]["trials"]
    study = optuna.load_study(
        study_name=data["study_name"], storage=reading_storage(definition.load(sweep))
    )
    assert all(trial.intermediate_values for trial in study.get_trials())  # rank 0 reported
    for trial in data["results"]["trials"]:
        run_dir = sweep / trial["dir"]
        record = json.loads((run_dir / "run.json").read_text())
        assert record["world_size"] == 2
        assert (run_dir / "run.rank1.log").is_file()
        assert record["status"] == ("pruned" if trial["state"] == "pruned" else "completed")
        assert epochs_logged(run_dir) == (1 if trial["state"] == "pruned" else 2)


@pytest.mark.slow
def test_a_trial_on_several_devices_takes_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli(
        "sweep", "base", "models/resnet", "trainer/ddp", "-m", "LR=0.01,0.03", "--jobs", "2"
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--jobs 1" in result.output
    assert not (tmp_path / "experiments").exists() or not any(
        (tmp_path / "experiments").rglob("sweep-*")
    )


@pytest.mark.slow
def test_a_finished_sweep_run_again_gives_the_same_results_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    """Its trials' fit comes from the cache: still ordinary completed trials whose objective
    is read from the training log kept with the cached fit; --no-cache trains again."""
    monkeypatch.chdir(tmp_path)
    args = ("sweep", "base", "models/resnet", "debug/fast", "-m", "LR=0.003,0.03", *TINY[:4])
    first = cli(*args)
    assert first.exit_code == 0, first.output
    again = cli(*args)
    assert again.exit_code == 0, again.output
    fresh = cli(*args, "--no-cache")
    assert fresh.exit_code == 0, fresh.output
    sweeps = sorted((tmp_path / "experiments" / tmp_path.name).glob("sweep-*"))
    assert len(sweeps) == 3
    results = [json.loads((s / "sweep.json").read_text())["results"] for s in sweeps]
    values = [sorted((t["params"]["LR"], t["value"]) for t in r["trials"]) for r in results]
    assert values[0] == values[1] == values[2]
    assert [r["counts"]["complete"] for r in results] == [2, 2, 2]

    def fit_status(sweep: Path) -> set[str]:
        return {
            task["status"]
            for trial in sweep.glob("trial-*")
            for task in json.loads((trial / "run.json").read_text())["tasks"]
            if task["name"] == "fit"
        }

    assert [fit_status(s) for s in sweeps] == [{"completed"}, {"cached"}, {"completed"}]
    # a trial's operative.gin alone is the config that ran: its fit is the cached one
    trial = sorted(sweeps[0].glob("trial-*"))[-1]
    alone = cli("run", str(trial / "operative.gin"), "--name", "from-trial")
    assert alone.exit_code == 0, alone.output
    run_json = tmp_path / "experiments" / tmp_path.name / "from-trial" / "run.json"
    tasks = json.loads(run_json.read_text())["tasks"]
    assert {t["name"]: t["status"] for t in tasks}["fit"] == "cached"
    table = [cli("runs", "--sweep", str(s)).output.splitlines()[1:] for s in sweeps[:2]]
    assert [line.split()[2:4] for line in table[0]] == [line.split()[2:4] for line in table[1]]
