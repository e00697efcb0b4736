"""Two "nodes" on loopback: ``torchrun --nnodes 2 --nproc-per-node 1 --node-rank {0,1}``,
both started at once, training together with ``ddp`` on CPU (gloo).

Two launches run side by side, each with its own root and port: without ``--name``
(rank 0 creates the directory and shares it through torchrun's agent store: the harder
case; a given ``--name`` is known to both nodes from their command lines, see
test_rank_detection.py), and with the ``--name`` of an existing run of another config
(rank 0 refuses; node 1 must then stop too instead of waiting for results that never come).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from launch import (
    CACHED_TASKS,
    DATA_TASKS,
    GENERATED_NAME,
    Finished,
    assert_read_not_recomputed,
    cached_task_names,
    finish,
    free_port,
    read_json,
    run_args,
    run_dirs,
    start,
    task_status,
    torchrun_node,
)

pytestmark = [pytest.mark.slow, pytest.mark.heavy]  # two torchrun nodes training together

TWO_NODES = (
    "--mod",
    "Trainer.num_nodes=2",
    "--mod",
    "Trainer.devices=1",
    "--mod",
    "Trainer.strategy='ddp'",
    "--mod",
    "Trainer.accelerator='cpu'",
)
OTHER_CONFIG = "earlier = 1\n"


@dataclass
class Launch:
    root: Path
    nodes: list[Finished]


def existing_run_of_another_config(root: Path, name: str) -> Path:
    run_dir = root / "dist" / name
    run_dir.mkdir(parents=True)
    for file in ("config.gin", "resolved.gin"):
        (run_dir / file).write_text(OTHER_CONFIG)
    (run_dir / "run.json").write_text('{"config_digest": "0123abcd", "status": "completed"}')
    return run_dir


@pytest.fixture(scope="module")
def launches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Launch]:
    roots = {kind: tmp_path_factory.mktemp(kind) for kind in ("generated", "refused")}
    existing_run_of_another_config(roots["refused"], "taken")
    extra = {"generated": (), "refused": ("--name", "taken")}
    procs = {}
    for kind, root in roots.items():
        port = free_port()
        args = run_args(root, *TWO_NODES, *extra[kind])
        procs[kind] = [start(torchrun_node(node, port, args)) for node in (0, 1)]
    results = {}
    results["generated"] = Launch(roots["generated"], [finish(p) for p in procs["generated"]])
    node0 = finish(procs["refused"][0])
    # Once rank 0 has given up, node 1 has nothing to wait for: it must end soon after.
    node1 = finish(procs["refused"][1], timeout=60)
    results["refused"] = Launch(roots["refused"], [node0, node1])
    return results


def check_one_shared_run(launch: Launch) -> Path:
    for node, result in enumerate(launch.nodes):
        assert result.code == 0, f"node {node}:\n{result.tail()}"
    dirs = run_dirs(launch.root)
    assert len(dirs) == 1, dirs
    run_dir = dirs[0]
    record = read_json(run_dir / "run.json")
    assert record["status"] == "completed"
    assert (record["world_size"], record["launcher"]) == (2, "torchrun")
    status = task_status(run_dir)
    assert [status[t] for t in DATA_TASKS] == ["completed"] * len(DATA_TASKS)
    assert_read_not_recomputed(run_dir)
    rank1 = (run_dir / "run.rank1.log").read_text()
    assert "fit: done" in rank1 and "evaluate: skipped" in rank1
    assert sorted(p.name for p in run_dir.glob("run*.log")) == ["run.log", "run.rank1.log"]
    assert cached_task_names(launch.root) == sorted(CACHED_TASKS)
    return run_dir


def test_without_a_name_rank_0_creates_the_directory_and_node_1_joins_it(
    launches: dict[str, Launch],
) -> None:
    run_dir = check_one_shared_run(launches["generated"])
    assert GENERATED_NAME.fullmatch(run_dir.name), run_dir.name


def test_when_rank_0_refuses_the_run_node_1_stops_instead_of_waiting(
    launches: dict[str, Launch],
) -> None:
    launch = launches["refused"]
    node0, node1 = launch.nodes
    assert node0.code != 0 and "different config" in node0.stderr, node0.tail()
    assert node1.code is not None, f"node 1 still waiting for rank 0:\n{node1.tail()}"
    assert node1.code != 0
    run_dir = launch.root / "dist" / "taken"
    assert (run_dir / "config.gin").read_text() == OTHER_CONFIG
    assert read_json(run_dir / "run.json")["status"] == "completed"
    assert cached_task_names(launch.root) == []  # no rank computed anything
