"""The run's handle on the process that talks to MLflow for it
(``python -m ginpipe.tasks.tracking_process``).

Importing mlflow and its database layer costs about as much CPU as the data steps of the
default pipeline, all of it holding the interpreter; in a process of its own it runs on a
core the run leaves idle (benchmarks/tracking.py). The run starts that process as soon as
its config is read, before importing torch (``ginpipe/base/prestart.py``; the entry point
in pyproject.toml), so the import overlaps the run's own start-up; the tracker
(``ginpipe/tasks/tracking.py``) takes it over from the run's helpers when the run starts (or
starts one, for a run begun otherwise), sends it JSON lines on its stdin (``log``, ``open``,
then ``metrics`` from fit's logger, then ``close``) and reads its answers when the run ends.
It runs in its own session, so Ctrl-C in the terminal reaches the run, which then closes the
MLflow run as killed; if the run's process dies without a ``close``, end of input does it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Protocol

from ginpipe.tasks.engine import prestart

MODULE = "ginpipe.tasks.tracking_process"


class Helpers(Protocol):
    """The run's prestarted helper processes (``ginpipe.base.prestart.Prestarted``)."""

    def take(self, module: str) -> subprocess.Popen[str] | None: ...


class Sidecar:
    """The run's side of the sidecar: send without waiting, read the answers at the end."""

    def __init__(self, log_path: Path, helpers: Helpers | None = None) -> None:
        taken = helpers.take(MODULE) if helpers is not None else None
        self.proc = taken or prestart.spawn(MODULE)
        self.broken = False
        # what it says from now on goes to the run's log file (nothing before: its imports)
        self.send({"op": "log", "path": str(log_path)})

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
        out, err = self.proc.communicate()  # closes its input: it ends after the last message
        code = self.proc.returncode
        answers = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        if code != 0 and not any("error" in a for a in answers):
            said = err.strip().splitlines()[-1:] if err else []
            reason = f": {said[0]}" if said else ""
            answers.append({"error": f"the MLflow process ended with exit code {code}{reason}"})
        return answers
