"""Run the ``ginpipe`` command line with one fault armed at an exact instant.

    python tests/faults/killer.py --at checkpoint-write:2 --trace T.jsonl -- run configs/...

``--at WHERE:N[:ACTION]`` fires ACTION at the N-th occurrence of WHERE:

* ``features:N``: inside ``make_features``, at its N-th read of a state key (2 = after it
  got ``dataset``, while it asks for ``splits``).
* ``train-step:N``: in ``Classifier.training_step`` when ``global_step == N``.
* ``checkpoint-write:N``: the N-th write of ``last.ckpt``, after the temp file beside it is
  written and fsynced, before the ``os.replace`` that publishes it.
* ``checkpoint-written:N``: just after the N-th ``os.replace`` onto ``last.ckpt``.
* ``cache-files:N``: the N-th cache entry, after its output files are written into the
  entry's temp dir, before its manifest.
* ``cache-publish:N``: the N-th cache entry, after its manifest is written, before the
  rename that publishes the entry.

ACTION is ``kill`` (SIGKILL, the default), ``int`` (SIGINT), ``term`` (SIGTERM) or
``raise`` (a ``RuntimeError``). Nothing in the project is changed: the faults are
monkeypatches of library and engine internals installed in this process only, and none of
them touches a module that cache keys are computed from.

``--trace FILE`` appends one JSON line per training step (``{"step": .., "epoch": ..}``)
and one when the fault fires (``{"fired": "..."}``), so a test can tell where a process
died and from which step a resumed one started.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

WHERE = (
    "features",
    "train-step",
    "checkpoint-write",
    "checkpoint-written",
    "cache-files",
    "cache-publish",
)
ACTIONS = {"kill": signal.SIGKILL, "int": signal.SIGINT, "term": signal.SIGTERM, "raise": None}


class InjectedFault(RuntimeError):
    """What the ``raise`` action raises."""


class Fault:
    """One armed fault and the trace file it reports to."""

    def __init__(self, spec: str | None, trace: str | None) -> None:
        self.spec = spec
        self.trace = Path(trace) if trace else None
        self.where, self.n, self.action = "", 0, "kill"
        self.count = 0
        if spec:
            parts = spec.split(":")
            if len(parts) not in (2, 3) or parts[0] not in WHERE:
                raise SystemExit(f"killer: bad --at {spec!r}; expected WHERE:N[:ACTION]")
            self.where, self.n = parts[0], int(parts[1])
            self.action = parts[2] if len(parts) == 3 else "kill"
            if self.action not in ACTIONS:
                raise SystemExit(f"killer: unknown action {self.action!r} in --at {spec!r}")

    def record(self, **entry: Any) -> None:
        if self.trace is None:
            return
        with open(self.trace, "a") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def hit(self, where: str) -> None:
        """Count one occurrence of ``where``; fire when it is the armed one."""
        if where != self.where:
            return
        self.count += 1
        if self.count == self.n:
            self.fire()

    def fire(self) -> None:
        self.record(fired=self.spec, pid=os.getpid())
        signum = ACTIONS[self.action]
        if signum is None:
            raise InjectedFault(f"injected fault at {self.spec}")
        os.kill(os.getpid(), signum)
        # SIGKILL never returns; SIGINT/SIGTERM run the Python handler at the next bytecode.


def install(fault: Fault) -> None:
    """Install the patches ``fault`` needs (the step trace is always installed)."""
    import ginpipe.core.state
    import ginpipe.core.store
    from ginpipe.tasks.lightning.classifier import Classifier

    training_step = Classifier.training_step

    def traced_training_step(self: Any, batch: Any, batch_idx: int) -> Any:
        step, epoch = int(self.trainer.global_step), int(self.trainer.current_epoch)
        fault.record(step=step, epoch=epoch, batch=batch_idx)
        if fault.where == "train-step" and step == fault.n and fault.count == 0:
            fault.count = 1
            fault.fire()
        return training_step(self, batch, batch_idx)

    Classifier.training_step = traced_training_step

    if fault.where == "features":
        getitem = ginpipe.core.state.TaskView.__getitem__

        def reading(self: Any, key: str) -> Any:
            if self._task == "make_features":
                fault.hit("features")
            return getitem(self, key)

        ginpipe.core.state.TaskView.__getitem__ = reading

    if fault.where in ("checkpoint-write", "checkpoint-written"):
        replace = os.replace

        def replacing(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            last = Path(dst).name == "last.ckpt"
            if last:
                fault.hit("checkpoint-write")
            replace(src, dst, *args, **kwargs)
            if last:
                fault.hit("checkpoint-written")

        os.replace = replacing

    if fault.where == "cache-files":
        write_json = ginpipe.core.store.atomic_write_json

        def writing(dest: Any, obj: Any) -> None:
            if Path(dest).name == ginpipe.core.store.MANIFEST:
                fault.hit("cache-files")
            write_json(dest, obj)

        ginpipe.core.store.atomic_write_json = writing

    if fault.where == "cache-publish":
        publish: Callable[..., bool] = ginpipe.core.store._publish

        def publishing(tmp: Path, final: Path, final_is_valid: Callable[[], bool]) -> bool:
            fault.hit("cache-publish")
            return publish(tmp, final, final_is_valid)

        ginpipe.core.store._publish = publishing


def run_cli(argv: list[str], at: str | None = None, trace: str | None = None) -> Any:
    """Arm the fault, then hand over to the console entry point with ``argv``."""
    from ginpipe.cli import main

    install(Fault(at, trace))
    sys.argv = ["ginpipe", *argv]
    return main(argv)


def child_main(
    argv: list[str],
    at: str | None,
    trace: str | None,
    cwd: str,
    stdout: str,
    stderr: str,
    clear_env: tuple[str, ...] = (),
) -> None:
    """Entry point of a process forked from a server that has already imported torch,
    Lightning and the tasks: the same ``main`` as the console script, without paying for
    those imports in every process. Output goes to the files ``stdout`` and ``stderr``;
    the exit status is the CLI's (or -9 when the fault is a SIGKILL)."""
    out = open(stdout, "w", buffering=1)  # noqa: SIM115  (kept open until the process ends)
    err = open(stderr, "w", buffering=1)  # noqa: SIM115
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    sys.stdout, sys.stderr = out, err
    for name in clear_env:
        os.environ.pop(name, None)
    os.chdir(cwd)
    import torch

    # Many trials share few cores: one thread each avoids oversubscription. It is the same
    # in every process, so runs stay comparable bit for bit.
    torch.set_num_threads(1)
    try:
        run_cli(argv, at, trace)
    finally:
        out.flush()
        err.flush()


def parse(args: list[str]) -> tuple[argparse.Namespace, list[str]]:
    if "--" not in args:
        raise SystemExit("usage: killer.py [--at WHERE:N[:ACTION]] [--trace FILE] -- ARGS...")
    split = args.index("--")
    parser = argparse.ArgumentParser(prog="killer.py")
    parser.add_argument("--at", default=None)
    parser.add_argument("--trace", default=None)
    return parser.parse_args(args[:split]), args[split + 1 :]


if __name__ == "__main__":
    options, cli_args = parse(sys.argv[1:])
    run_cli(cli_args, options.at, options.trace)
