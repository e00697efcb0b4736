"""Lightning's ``ddp`` on two CPU processes (gloo), started as ``ginpipe run ... ddp.gin``.

Rank 0 runs the pipeline; when ``fit`` starts, Lightning re-runs the same command line for
rank 1. One run is made (without ``--name``, so the children must not pick a timestamp
name of their own) and every test reads its directory, its logs and the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from launch import (
    CACHED_TASKS,
    DATA_TASKS,
    FAST,
    GENERATED_NAME,
    Finished,
    assert_read_not_recomputed,
    cache_entries,
    cached_task_names,
    finish,
    ginpipe_command,
    read_json,
    run_args,
    run_dirs,
    start,
    task_status,
)

from ginpipe.config.compose import compose_text
from ginpipe.core.store import ArtifactStore
from ginpipe.tasks.data.datasets import make_dataset
from ginpipe.tasks.evaluate import predict_probabilities
from ginpipe.tasks.lightning.checkpoints import read_checkpoint
from ginpipe.tasks.lightning.classifier import network_weights_from_checkpoint
from ginpipe.tasks.models import build_model
from ginpipe.tasks.report import classification_metrics

pytestmark = pytest.mark.slow

RUN_FILES = {
    ".lock",
    "pipeline.json",  # the graph with each task's status and time
    "pipeline.mmd",
    "checkpoints",
    "config.gin",
    "environment.txt",
    "inputs.json",
    "logs",
    "metrics.json",
    "model",
    "operative.gin",
    "overrides.txt",
    "plots",
    "predictions.csv",
    "resolved.gin",
    "run.json",
    "run.log",
    "run.rank1.log",
}
OPTIONAL_RUN_FILES = {"git.diff"}  # only when the working tree has changes


@dataclass
class DdpRun:
    root: Path
    result: Finished

    @property
    def dir(self) -> Path:
        (only,) = run_dirs(self.root)
        return only


@pytest.fixture(scope="module")
def ddp(tmp_path_factory: pytest.TempPathFactory) -> DdpRun:
    root = tmp_path_factory.mktemp("ddp")
    args = run_args(root, configs=(*FAST, "configs/trainer/ddp.gin"))
    result = finish(start([*ginpipe_command(), *args]))
    assert result.code == 0, result.tail()
    return DdpRun(root, result)


def stored(root: Path, task: str, name: str):
    (entry,) = [e for e in cache_entries(root) if e.task == task]
    return ArtifactStore(root / ".cache").load(entry.key, name)


def test_both_ranks_share_one_run_directory(ddp: DdpRun) -> None:
    dirs = run_dirs(ddp.root)
    assert len(dirs) == 1, dirs
    assert GENERATED_NAME.fullmatch(dirs[0].name)
    record = read_json(dirs[0] / "run.json")
    assert record["status"] == "completed"
    assert record["attempts"] == 1
    rank1 = (dirs[0] / "run.rank1.log").read_text()
    assert "fit: done" in rank1  # rank 1 trained, in this directory
    assert "evaluate: skipped" in rank1


def test_pre_fit_tasks_are_computed_once_and_read_by_rank_1(ddp: DdpRun) -> None:
    status = task_status(ddp.dir)
    assert [status[t] for t in DATA_TASKS] == ["completed"] * len(DATA_TASKS)
    assert status["fit"] == "completed"
    assert_read_not_recomputed(ddp.dir)
    # One entry per cached task: rank 1 stored nothing, not even its own fit result.
    assert cached_task_names(ddp.root) == sorted(CACHED_TASKS)
    run = str(ddp.dir.resolve())
    assert {e.meta.get("run") for e in cache_entries(ddp.root)} == {run}


def test_only_rank_0_writes_run_files(ddp: DdpRun) -> None:
    names = {p.name for p in ddp.dir.iterdir()}
    assert names >= RUN_FILES, RUN_FILES - names
    assert names - RUN_FILES <= OPTIONAL_RUN_FILES, names - RUN_FILES
    assert sorted(p.name for p in (ddp.dir / "logs").iterdir()) == ["metrics.csv"]
    checkpoints = sorted(p.name for p in (ddp.dir / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and checkpoints[1] == "last.ckpt", checkpoints
    assert checkpoints[0].startswith("best-") and "-v" not in checkpoints[0]
    plots = sorted(p.name for p in (ddp.dir / "plots").iterdir())
    assert plots == ["confusion_matrix.png", "learning_curves.png"]
    assert read_json(ddp.dir / "metrics.json") == read_json(ddp.dir / "run.json")["metrics"]


def test_run_json_records_the_world_that_trained(ddp: DdpRun) -> None:
    record = read_json(ddp.dir / "run.json")
    assert (record["world_size"], record["launcher"]) == (2, "lightning")


def test_evaluation_equals_a_single_process_evaluation_of_the_best_checkpoint(
    ddp: DdpRun,
) -> None:
    compose_text((ddp.dir / "config.gin").read_text(), str(ddp.dir / "config.gin"))
    model = stored(ddp.root, "fit", "model")
    data = stored(ddp.root, "make_features", "data")
    (best,) = (ddp.dir / "checkpoints").glob("best-*.ckpt")
    weights = network_weights_from_checkpoint(read_checkpoint(best))
    assert weights.keys() == model["weights"].keys()
    for name, tensor in weights.items():
        assert torch.equal(tensor, model["weights"][name]), name
    network = build_model({**model, "weights": weights})

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as rank 0 under ddp: Lightning sets one thread per process
    try:
        labels, probabilities = predict_probabilities(network, make_dataset(data, "test"), 256)
    finally:
        torch.set_num_threads(threads)

    metrics = classification_metrics(labels, probabilities.argmax(axis=1), data["classes"])
    assert metrics == read_json(ddp.dir / "metrics.json")
    predictions = pd.read_csv(ddp.dir / "predictions.csv", float_precision="round_trip")
    np.testing.assert_array_equal(predictions["y_pred"], probabilities.argmax(axis=1))
    columns = [f"prob_{name}" for name in data["classes"]]
    np.testing.assert_array_equal(predictions[columns].to_numpy(), probabilities)


def test_predictions_hold_every_test_sample_exactly_once(ddp: DdpRun) -> None:
    test_set = make_dataset(stored(ddp.root, "make_features", "data"), "test")
    labels = np.array([int(test_set[i][1]) for i in range(len(test_set))])
    predictions = pd.read_csv(ddp.dir / "predictions.csv")
    assert len(predictions) == len(test_set)
    np.testing.assert_array_equal(predictions["index"], np.arange(len(test_set)))
    np.testing.assert_array_equal(predictions["y_true"], labels)
