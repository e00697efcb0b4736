"""The run's handle on the process that talks to MLflow for it
(``python -m ginpipe.tasks.tracking_process``).

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
from typing import Any


class Sidecar:
    """The run's side of the sidecar: send without waiting, read the answers at the end."""

    def __init__(self, log_path: Path) -> None:
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ginpipe.tasks.tracking_process"],
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
