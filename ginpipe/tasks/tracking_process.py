"""The process that talks to MLflow for a run: ``python -m ginpipe.tasks.tracking_process``.

Started by ``Sidecar`` (``ginpipe/tasks/tracking_sidecar.py``, which says why it is a process
of its own); reads the run's JSON lines on stdin and answers on stdout. A module apart from
the handle, so that the tracker imports the handle and this process imports the tracker,
not each other.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any


def _answer(out: IO[str], message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def serve(lines: IO[str], out: IO[str]) -> None:
    """Handle the run's messages until ``close`` (or end of input: the run died)."""
    from ginpipe.tasks.tracking import TrackedRun, close_run, open_run
    from ginpipe.tasks.tracking_files import place_of

    tracked: TrackedRun | None = None
    place = None
    for line in lines:
        message = json.loads(line)
        op = message.get("op")
        try:
            if op == "open":
                place = place_of(Path(message["run_dir"]))
                tracked = open_run(message["tracking_uri"], message["experiment"], place)
                _answer(out, {"opened": vars(tracked)})
                import mlflow.pyfunc  # noqa: F401  (needed at the end; loaded while it trains)
            elif op == "metrics" and tracked is not None:
                _log_metrics(tracked.tracking_uri, tracked.run_id, message)
            elif op == "close":
                if tracked is not None and place is not None:
                    close_run(tracked, place, message["outcome"], bool(message["log_model"]))
                    _answer(out, {"closed": vars(tracked)})
                return
        except Exception as error:
            _answer(out, {"error": f"{op}: {type(error).__name__}: {error}"})
            if op in ("open", "close"):
                tracked = None
    if tracked is not None and place is not None:  # the run's process died
        close_run(tracked, place, {"status": "stopped"}, log_model=False)


def _log_metrics(tracking_uri: str, run_id: str, message: dict[str, Any]) -> None:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    time_ms, step = int(message["time_ms"]), int(message["step"])
    entries = [Metric(k, float(v), time_ms, step) for k, v in message["metrics"].items()]
    MlflowClient(tracking_uri).log_batch(run_id, metrics=entries)


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
