"""Sweeps of the toy tasks, in this process: grids and searches whose trials are ordinary
runs, the shared cache, the results, and every refusal before any trial starts."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from ginpipe.sweep.study import reading_storage

pytestmark = pytest.mark.usefixtures("toy_project")


def sweep_dirs(project) -> list[Path]:
    return sorted(project.runs.glob("sweep-*")) if project.runs.is_dir() else []


def study_states(sweep_dir: Path) -> dict[int, str]:
    from ginpipe.sweep import definition

    sweep = definition.load(sweep_dir)
    study = optuna.load_study(study_name=sweep.study_name, storage=reading_storage(sweep))
    return {t.number: t.state.name for t in study.get_trials()}


def run_json(path: Path) -> dict:
    return json.loads((path / "run.json").read_text())


def test_a_grid_runs_each_point_once_as_a_run_sharing_the_cache(toy_project, cli) -> None:
    result = cli("sweep", "base.gin", "-m", "add_up.scale=1.0,2.0", "-m", "make_numbers.start=1,2")
    assert result.exit_code == 0, result.output
    [sweep] = sweep_dirs(toy_project)
    trials = sorted(p.name for p in sweep.glob("trial-*"))
    assert trials == ["trial-0000", "trial-0001", "trial-0002", "trial-0003"]
    points = set()
    for name in trials:
        record = run_json(sweep / name)
        assert record["status"] == "completed"
        assert record["dir"] == str((sweep / name).resolve())
        overrides = record["overrides"]
        points.add(tuple(sorted(overrides)))
    assert len(points) == 4  # every point of the grid, none twice
    # make_numbers depends only on start: computed once per start value, then read from the
    # root's cache by the trials that share it
    assert toy_project.calls("make_numbers") == 2
    assert toy_project.calls("add_up") == 4
    assert toy_project.calls("report") == 4
    assert (toy_project.root / ".cache" / "objects").is_dir()
    statuses = [
        {t["name"]: t["status"] for t in run_json(sweep / n)["tasks"]}["make_numbers"]
        for n in trials
    ]
    assert sorted(statuses) == ["cached", "cached", "completed", "completed"]

    data = json.loads((sweep / "sweep.json").read_text())
    assert data["trials"] == 4 and data["sampler"]["name"] == "grid"
    best = data["results"]["best"]
    assert best["params"] == {"add_up.scale": "2.0", "make_numbers.start": "2"}
    assert best["value"] == pytest.approx((2 + 3 + 4 + 5) * 2.0 / 100)
    assert [t["state"] for t in data["results"]["trials"]] == ["complete"] * 4
    assert (sweep / "optimization_history.png").stat().st_size > 1000
    assert (sweep / "add_up.scale.png").is_file()
    assert (sweep / "compare.png").is_file()  # the best trials side by side

    table = cli("runs", "--sweep", str(sweep)).output.splitlines()
    assert table[0].split() == [
        "TRIAL", "STATE", "add_up.scale", "make_numbers.start", "ACCURACY", "DURATION"
    ]  # fmt: skip
    assert table[1].split()[1:5] == ["complete", "2.0", "2", "0.2800"]
    values = [float(line.split()[4]) for line in table[1:5]]
    assert values == sorted(values, reverse=True)
    assert "4 of 4 trials (4 complete)" in table[5]

    listing = cli("runs").output
    command = f"ginpipe runs --sweep experiments/proj/{sweep.name}"
    assert f"sweep proj/{sweep.name}: 4 trials ({command})" in listing

    diff = cli("diff", str(sweep / "trial-0000"), str(sweep / "trial-0001"))
    assert diff.exit_code == 0 and "metrics:" in diff.output
    # everything the sweep wrote is inside the root: the sweep folder and the cache
    assert sorted(p.name for p in toy_project.path.iterdir()) == [
        "base.gin", "calls.log", "experiments"
    ]  # fmt: skip
    assert sorted(p.name for p in toy_project.root.iterdir()) == [".cache", "proj"]
    assert [p.name for p in toy_project.runs.iterdir()] == [sweep.name]


def test_seeds_swept_give_mean_and_std_per_configuration(toy_project, cli) -> None:
    toy_project.write("seeded.gin", "SEED = 1\nmake_numbers.start = %SEED\n")
    result = cli("sweep", "base.gin", "seeded.gin", "-m", "SEED=1,2,3", "-m", "add_up.scale=1,2")
    assert result.exit_code == 0, result.output
    [sweep] = sweep_dirs(toy_project)
    table = cli("runs", "--sweep", str(sweep)).output
    assert "per configuration, over SEED:" in table
    rows = table.split("per configuration, over SEED:")[1].strip().splitlines()
    assert rows[0].split() == ["add_up.scale", "ACCURACY", "MEAN", "STD", "N", "(SEED)"]
    # scale 2: totals 2*(10, 14, 18) / 100 -> mean 0.28, std 0.08
    assert rows[1].split() == ["2", "0.2800", "0.0800", "3"]
    assert rows[2].split() == ["1", "0.1400", "0.0400", "3"]


def test_a_search_samples_the_distributions_of_a_sweep_file(toy_project, cli) -> None:
    toy_project.write(
        "search.gin",
        "# the search space\nadd_up.scale = @uniform(0.5, 2.0)\nmake_numbers.n = @int(2, 5)\n",
    )
    result = cli("sweep", "base.gin", "search.gin", "--trials", "5", "--sampler", "random")
    assert result.exit_code == 0, result.output
    [sweep] = sweep_dirs(toy_project)
    data = json.loads((sweep / "sweep.json").read_text())
    assert [p["kind"] for p in data["params"]] == ["uniform", "int"]
    assert len(data["results"]["trials"]) == 5
    for trial in data["results"]["trials"]:
        assert 0.5 <= float(trial["params"]["add_up.scale"]) <= 2.0
        assert 2 <= int(trial["params"]["make_numbers.n"]) <= 5
        config = (sweep / trial["dir"] / "config.gin").read_text()
        assert f"add_up.scale={trial['params']['add_up.scale']}" in config
        assert "configs/1-search.gin" in config  # the sweep file without its distributions
    copy = (sweep / "configs" / "1-search.gin").read_text()
    assert "# swept: add_up.scale = @uniform(0.5, 2.0)" in copy
    assert set(study_states(sweep).values()) == {"COMPLETE"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "add_up.scal=1.0,2.0"], "did you mean 'scale'"),
        (["-m", "LRR=1,2"], "macro LRR is used by no binding"),
        (["-m", "add_up.scale=1.0,2.0", "-m", "add_up.scale=3.0,4.0"], "swept twice"),
        (["-m", "add_up.scale=1.0,,2.0"], "empty value"),
        (["-m", "add_up.scale=1.0,(2.0"], "nothing to sweep"),
        (["-m", "add_up.scale=1.0"], "nothing to sweep"),
        (["-m", "add_up.scale=1.0,2.0", "--trials", "3"], "the grid has 2 points"),
        (["-m", "add_up.scale=1.0,2.0", "--sampler", "cmaes"], "unknown sampler"),
        (["-m", "add_up.scale=1.0,2.0", "--pruner", "median:patience=2"], "no option"),
        (["-m", "add_up.scale=1.0,2.0", "--jobs", "0"], "--jobs must be at least 1"),
        (["-m", "add_up.scale=1.0,@nothing"], "unknown configurable"),
        (["bad.gin"], "two numbers"),
        (["search.gin"], "a search needs a budget: --trials N"),
    ],
)
def test_a_malformed_sweep_is_refused_before_any_trial(toy_project, cli, args, message) -> None:
    toy_project.write("bad.gin", "add_up.scale = @loguniform(1e-4)\n")
    toy_project.write("search.gin", "add_up.scale = @uniform(0.5, 2.0)\n")
    result = cli("sweep", "base.gin", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.count("error:") == 1
    assert sweep_dirs(toy_project) == []
    assert toy_project.calls() == []


def test_run_given_a_comma_list_points_to_sweep(toy_project, cli) -> None:
    result = cli("run", "base.gin", "-m", "add_up.scale=1.0,2.0")
    assert result.exit_code == 2
    assert "a comma list is a sweep axis: use `ginpipe sweep`" in result.output
    assert toy_project.run_dirs() == []
    assert cli("run", "base.gin", "-m", "make_numbers.n=4").exit_code == 0


def test_failing_trials_stop_the_sweep_only_past_the_failure_limit(toy_project, cli) -> None:
    toy_project.write(
        "failing.gin",
        "run.tasks = [@make_numbers, @add_up, @explode, @report]\nexplode.message = 'x'\n",
    )
    messages = "explode.message='a','b','c','d','e'"
    result = cli("sweep", "base.gin", "failing.gin", "-m", messages, "--max-failure-rate", "0.5")
    assert result.exit_code == 1
    assert "3 of 5 trials failed" in result.output
    [sweep] = sweep_dirs(toy_project)
    assert study_states(sweep) == {0: "FAIL", 1: "FAIL", 2: "FAIL"}
    table = cli("runs", "--sweep", str(sweep)).output
    assert table.count(" failed ") == 3
    assert run_json(sweep / "trial-0002")["error"]["task"] == "explode"


def test_resume_needs_no_other_argument_and_finishes_nothing_twice(toy_project, cli) -> None:
    assert cli("sweep", "base.gin", "-m", "add_up.scale=1.0,2.0,3.0").exit_code == 0
    [sweep] = sweep_dirs(toy_project)
    before = {p.name: (p / "run.json").stat().st_mtime_ns for p in sweep.glob("trial-*")}
    result = cli("sweep", "--resume", str(sweep))
    assert result.exit_code == 0, result.output
    after = {p.name: (p / "run.json").stat().st_mtime_ns for p in sweep.glob("trial-*")}
    assert before == after
    assert toy_project.calls("report") == 3
    refused = cli("sweep", "base.gin", "--resume", str(sweep))
    assert refused.exit_code == 2 and "give no configs" in refused.output
    missing = cli("sweep", "--resume", str(toy_project.path))
    assert missing.exit_code == 2 and "not a sweep directory" in missing.output


def test_sweeps_can_share_one_database(toy_project, cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    optuna.create_study(study_name="someone else's", storage=url)
    result = cli("sweep", "base.gin", "-m", "add_up.scale=1,2", "--storage", url)
    assert result.exit_code == 0, result.output
    [sweep] = sweep_dirs(toy_project)
    assert study_states(sweep) == {0: "COMPLETE", 1: "COMPLETE"}
    assert not (sweep / "study.journal").exists()
    names = optuna.get_all_study_names(storage=url)
    assert sorted(names) == sorted([f"proj/{sweep.name}", "someone else's"])
