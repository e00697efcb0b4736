"""The ``Processes`` executor: a forked process per step that declares CPU or GPU work.

Under ``ginpipe run --jobs N`` a task that declares work (``@task(resources={"cpus": 1})``,
or its nested pipeline's ``resources``) runs in a process of its own, up to N at once and
within the machine's CPUs and GPUs (each GPU task sees only its own devices through
``CUDA_VISIBLE_DEVICES``). Its process stores cached outputs in the artifact store, as the
main process would, and hands the others back through a pipe (in memory only: nothing
pickled is ever stored). Events, the run record and the log stay in the main process; a
child's log lines start with its task. An interrupt, or a ``kill -9`` of the main process,
stops the children too.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import time
import traceback
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from loguru import logger

from ginpipe.base.errors import GinpipeError, TaskFailed
from ginpipe.config import ginapi
from ginpipe.core.events import TaskEvent, TaskState
from ginpipe.core.executors import Budget, Outcome
from ginpipe.core.pipeline import Pipeline, describe
from ginpipe.core.plan import PlannedStep

_PR_SET_PDEATHSIG = 1


class ChildError(Exception):
    """A task's error as its process described it."""


@dataclass
class Child:
    """A step running in a process of its own."""

    step: PlannedStep
    process: Any
    conn: Connection
    event: TaskEvent
    started: float
    cpus: float
    gpus: tuple[int, ...] = ()


class Processes:
    """Forked processes within a budget of ``--jobs`` slots, CPUs and GPUs."""

    def __init__(self, pipeline: Pipeline, budget: Budget) -> None:
        self.pipeline = pipeline
        self.budget = budget
        self.running: dict[int, Child] = {}

    def fits(self, step: PlannedStep) -> bool:
        return self.budget.fits(*self._wants(step))

    def _wants(self, step: PlannedStep) -> tuple[float, int]:
        wants = step.resources
        cpus = min(float(wants.get("cpus", 0)), float(os.cpu_count() or 1))
        return cpus, int(wants.get("gpus", 0))

    def start(self, step: PlannedStep) -> None:
        """Fork a process running ``step``; the budget it takes is held until it ends."""
        self.pipeline.gather(step)  # a value to recompute is recomputed here, once
        cpus, gpus = self._wants(step)
        budget = self.budget
        devices = tuple(budget.gpus[:gpus])
        del budget.gpus[:gpus]
        budget.cpus -= cpus
        budget.slots -= 1
        event = self.pipeline.started(step)
        logger.info(f"{self.pipeline.position(step)} {step.name}: running in a process")
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        process = context.Process(
            target=_child_main,
            args=(self.pipeline, step, send, devices),
            name=f"ginpipe-{step.name}",
        )
        process.start()
        send.close()
        self.running[step.index] = Child(
            step, process, receive, event, time.perf_counter(), cpus, devices
        )

    def busy(self) -> bool:
        return bool(self.running)

    def wait(self, timeout: float | None) -> list[Outcome]:
        """Wait until at least one child has answered or ended (at most ``timeout``
        seconds); the outcomes of those that have."""
        by_handle: dict[Any, Child] = {}
        for child in self.running.values():
            by_handle[child.conn] = child
            by_handle[child.process.sentinel] = child
        ended = {id(by_handle[r]): by_handle[r] for r in wait(list(by_handle), timeout)}
        outcomes = []
        for child in ended.values():
            del self.running[child.step.index]
            self.budget.slots += 1
            self.budget.cpus += child.cpus
            self.budget.gpus += list(child.gpus)
            outcomes.append(Outcome(child.step, self._collect(child)))
        return outcomes

    def _collect(self, child: Child) -> BaseException | None:
        """Take a finished child's result into the state and the records; its error."""
        step, event = child.step, child.event
        try:
            message = child.conn.recv() if child.conn.poll(5.0) else None
        except (EOFError, OSError):
            message = None
        child.process.join()
        event.seconds = time.perf_counter() - child.started
        if message is not None and message[0] == "ok":
            _, stored, values, unused = message
            self.pipeline.adopt(step, stored, values, unused)
            event.status = TaskState.COMPLETED
            self.pipeline.finished(step, event)
            return None
        if message is None:
            description = f"its process ended with exit code {child.process.exitcode}"
            code, details = 1, description
        else:
            _, description, details, code = message
        self.pipeline.failed(step, event, description)
        logger.debug(f"{step.name} failed in its process:\n{details}")
        if code != 1:
            error = GinpipeError(f"task '{step.name}': {description}")
            error.exit_code = code
            return error
        return TaskFailed(step.name, ChildError(description))

    def stop(self) -> None:
        """Stop children still running (an interrupt, an error in the main process)."""
        children = list(self.running.values())
        for child in children:
            if child.process.is_alive():
                child.process.terminate()
        for child in children:
            child.process.join(10)
            if child.process.is_alive():
                child.process.kill()
                child.process.join()


def _child_main(
    pipeline: Pipeline, step: PlannedStep, conn: Connection, devices: tuple[int, ...]
) -> None:
    """In the forked process: run the task, store what is cached, send back the rest."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process stops its children
    if devices:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in devices)
    _one_torch_thread()
    prefix = f"[{step.name}] "

    def prefixed(record: Any) -> None:
        record["message"] = prefix + record["message"]

    logger.configure(patcher=prefixed)
    try:
        outputs = pipeline.call(step)
        stored = pipeline.store_outputs(step, outputs)
        values = {name: value for name, value in outputs.items() if name not in stored}
        unused = sorted(pipeline.state.unused.get(step.spec.name, set()))
        conn.send(("ok", stored, values, unused))
    except BaseException as raised:
        error = ginapi.unwrap_call_error(raised)
        code = error.exit_code if isinstance(error, GinpipeError) else 1
        try:
            conn.send(("error", describe(error), traceback.format_exc(), code))
        except Exception as unsendable:  # an error that cannot be pickled
            conn.send(("error", describe(error), str(unsendable), code))
    finally:
        conn.close()
        os._exit(0)


def _one_torch_thread() -> None:
    """After torch has run in the main process, a forked child's first parallel operation
    can wait forever on the thread pool it inherited (GNU OpenMP is not fork-safe); with one
    thread it never enters it. DataLoader workers do the same."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _die_with_parent() -> None:
    """A child never outlives the main process (a ``kill -9`` of it): it would hold the run
    directory's lock, inherited through the fork, and keep a resume out."""
    with suppress(OSError, AttributeError):  # not Linux: the child ends with its task
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
