"""The process that talks to MLflow for a run: ``python -m ginpipe.tasks.tracking_process``.

Started for ``Sidecar`` (``ginpipe/tasks/tracking_sidecar.py``, which says why it is a process
of its own and why it starts before the run imports torch); imports mlflow straight away,
then reads the run's JSON lines on stdin and answers on stdout. A module apart from
the handle, so that the tracker imports the handle and this process imports the tracker,
not each other.
"""

from __future__ import annotations

import json
import os
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

    _import_mlflow()
    tracked: TrackedRun | None = None
    place = None
    for line in lines:
        message = json.loads(line)
        op = message.get("op")
        try:
            if op == "log":
                _stderr_to(Path(message["path"]))
            elif op == "open":
                place = place_of(Path(message["run_dir"]))
                tracked = open_run(message["tracking_uri"], message["experiment"], place)
                _answer(out, {"opened": vars(tracked)})
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


def _import_mlflow() -> None:
    """What every tracked run needs, imported before the run asks for anything: the client,
    the SQLite store (the default, unless the environment names a server) and the pyfunc
    flavor the run's model is logged with. Also MLflow's map of installed packages, which
    saving a pyfunc model reads to check its requirements (a walk over every installed
    package's files, once per process): built now, it is not waited for when the run ends."""
    import mlflow.pyfunc
    import mlflow.tracking

    if not os.environ.get("MLFLOW_TRACKING_URI", "").startswith(("http://", "https://")):
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    from mlflow.utils import requirements_utils

    warm = getattr(requirements_utils, "_init_packages_to_modules_map", None)
    if callable(warm):  # a private function: absent in another MLflow, the save builds it
        warm()


def _stderr_to(path: Path) -> None:
    """Send what this process writes to stderr (MLflow's warnings, a traceback) to ``path``."""
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 2)
    os.close(fd)


def _log_metrics(tracking_uri: str, run_id: str, message: dict[str, Any]) -> None:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    time_ms, step = int(message["time_ms"]), int(message["step"])
    entries = [Metric(k, float(v), time_ms, step) for k, v in message["metrics"].items()]
    MlflowClient(tracking_uri).log_batch(run_id, metrics=entries)


if __name__ == "__main__":
    # Every call of this process returns once stored (the run never waits for them anyway),
    # so that nothing is left in a queue when it exits.
    os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
    serve(sys.stdin, sys.stdout)
    # Everything is stored and answered: skip the interpreter's teardown, which with mlflow's
    # thousands of modules loaded takes ~0.7 s that the run would wait for
    # (benchmarks/tracking.py).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
