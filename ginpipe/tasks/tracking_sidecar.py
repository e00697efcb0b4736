"""The process that talks to MLflow for a run: ``python -m ginpipe.tasks.tracking_sidecar``.

Importing mlflow and its database layer costs about as much CPU as the data steps of the
default pipeline, all of it holding the interpreter; in a process of its own it runs on the
core training leaves idle while the run starts (benchmarks/tracking.py). The run's tracker
(``ginpipe/tasks/tracking.py``) starts it, sends it JSON lines on its stdin (``open``, then
``metrics`` from fit's logger, then ``close``) and reads its answers when the run ends. It
runs in its own session, so Ctrl-C in the terminal reaches the run, which then closes the
MLflow run as killed; if the run's process dies without a ``close``, end of input does it.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import IO, Any


class Sidecar:
    """The run's side of the sidecar: send without waiting, read the answers at the end."""

    def __init__(self, log_path: Path) -> None:
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ginpipe.tasks.tracking_sidecar"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
            )
        self.broken = False

    def send(self, message: dict[str, Any]) -> None:
        if self.broken or self.proc.stdin is None:
            return
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):  # it ended: its answers say why
            self.broken = True

    def finish(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Send the last message, close its input, and return every answer it gave."""
        self.send(message)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        out = self.proc.stdout.read() if self.proc.stdout is not None else ""
        code = self.proc.wait()
        answers = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        if code != 0 and not any("error" in a for a in answers):
            answers.append({"error": f"the MLflow process ended with exit code {code}"})
        return answers


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
