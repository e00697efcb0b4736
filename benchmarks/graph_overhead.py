"""Graph scheduling on a linear pipeline: what ordering by reads/writes and each run's graph
records (``pipeline.json``, ``pipeline.mmd``) add to a run of the default pipeline.

In a fresh process the default pipeline is composed (``base models/resnet``), then the
graph work is timed on its steps: ordering (``ginpipe/core/graph.py``: a list already in
data order is checked without networkx) and the run's graph records written through
``GraphRecorder`` (atomic, fsync'd writes). Their sum is set against the wall time of the
same ``ginpipe run`` as ``benchmarks/overhead.py`` measures it (a fresh root). Target: <= 1%.

    python -m benchmarks.graph_overhead [--rounds 3]
"""

from __future__ import annotations

import argparse
import json

from benchmarks.common import (
    BASE_CONFIGS,
    PYTHON,
    find_run_dir,
    fresh_dir,
    ginpipe_cmd,
    log,
    run_measured,
    summarize,
)

LIMIT = 0.01
REPEAT = 200

CHILD = f"""
import json, sys, tempfile, time
from pathlib import Path
from ginpipe.config.compose import compose
from ginpipe.config.settings import run_settings
from ginpipe.core.steps import in_graph_order, task_steps
from ginpipe.runs import rundir
from ginpipe.runs.graphs import GraphRecorder
from ginpipe.core.events import TaskEvent, TaskState

compose({list(BASE_CONFIGS)!r}, [])
steps = task_steps(run_settings().tasks)
t0 = time.perf_counter()
for _ in range({REPEAT}):
    ordered = in_graph_order(steps)
order_s = (time.perf_counter() - t0) / {REPEAT}
networkx = "networkx" in sys.modules
with tempfile.TemporaryDirectory(dir=".") as folder:
    run = rundir.RunDir(Path(folder))
    t0 = time.perf_counter()
    for _ in range(20):
        recorder = GraphRecorder(run, ordered)
        for step in ordered:
            recorder.on_task_end(TaskEvent(step.name, step.index, len(ordered),
                                           status=TaskState.COMPLETED, seconds=1.0))
        recorder.on_run_end({{"status": "completed"}})
    record_s = (time.perf_counter() - t0) / 20
print(json.dumps({{"order_s": order_s, "record_s": record_s, "networkx": networkx,
                  "order": [s.name for s in ordered]}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    graph_s, walls, networkx = [], [], False
    for index in range(args.rounds):
        log(f"  graph work ({index + 1}/{args.rounds})")
        with fresh_dir("graph-overhead-") as folder:
            found = run_measured([PYTHON, "-c", CHILD], cwd=folder).check("graph work")
        result = found.last_json_line()
        graph_s.append(result["order_s"] + result["record_s"])
        networkx = networkx or result["networkx"]
        log(f"  ginpipe run ({index + 1}/{args.rounds})")
        with fresh_dir("graph-run-") as root:
            cmd = ginpipe_cmd("run", *BASE_CONFIGS, "--root", str(root), "--name", "b")
            measured = run_measured(cmd).check("ginpipe run")
            assert (find_run_dir(root, "b") / "pipeline.json").is_file()
        walls.append(measured.wall)
    share = summarize([g / w for g, w in zip(graph_s, walls, strict=True)])
    print(f"tasks in order: {' -> '.join(result['order'])}; networkx imported: {networkx}")
    print(
        f"ordering per plan: {result['order_s'] * 1e6:.0f} us; run graph records: "
        f"{result['record_s'] * 1e3:.1f} ms"
    )
    print(
        json.dumps(
            {
                "graph_ms": summarize([g * 1e3 for g in graph_s]).fmt(2),
                "run_wall_s": summarize(walls).fmt(2),
            }
        )
    )
    verdict = "met" if share.median <= LIMIT else "**missed**"
    print(
        f"graph work / run wall: {share.median:.5f} ({share.low:.5f}-{share.high:.5f}, "
        f"n={share.n}); target <= {LIMIT} ({verdict})"
    )


if __name__ == "__main__":
    main()
