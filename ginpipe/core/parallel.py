"""``ginpipe run --jobs N``: independent tasks at the same time.

The plan and its cache keys are those of a sequential run; only the timing changes. A task
starts once every task it reads from has finished (``ginpipe/core/graph.py``); a task that
writes nothing (seeding, a side effect) keeps its place in the list: it waits for the tasks
before it and the tasks after it wait for it.

A task that declares CPU or GPU work (``@task(resources={"cpus": 1})``, or its nested
pipeline's ``resources``) runs in a forked process of its own, up to N at once and within
the machine's CPUs and GPUs (each GPU task sees only its own devices through
``CUDA_VISIBLE_DEVICES``). Its process stores cached outputs in the artifact store, as the
main process would, and hands the others back through a pipe (in memory only: nothing
pickled is ever stored). Every other task runs in the main process meanwhile. Events, the
run record and the log stay in the main process; a child's log lines start with its task.

A task sent to a job scheduler (``executors.tasks``, ``@task(executor=)``) is submitted
through ``ginpipe/core/submission.py`` once its inputs are done, takes no local slot, and is
polled while the rest of the graph goes on; the tasks that read its outputs wait for it.
Without ``--jobs`` such a run still goes through here, with no forked processes.

A failing task lets the ones already running finish (their results are cached), starts no
other, and fails the run; an interrupt stops the children too.
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
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from loguru import logger

from ginpipe.base.errors import ConfigError, GinpipeError, TaskFailed
from ginpipe.config import ginapi
from ginpipe.core import submission
from ginpipe.core.events import TaskEvent, TaskState
from ginpipe.core.graph import dependencies
from ginpipe.core.pipeline import Pipeline, Step, _describe
from ginpipe.core.state import State

_PR_SET_PDEATHSIG = 1
NVIDIA_GPUS = "/proc/driver/nvidia/gpus"


class ChildError(Exception):
    """A task's error as its process described it."""


@dataclass
class Child:
    """A task running in a process of its own."""

    step: Step
    process: Any
    conn: Connection
    event: TaskEvent
    started: float
    cpus: float
    gpus: tuple[int, ...] = ()


@dataclass
class Budget:
    """What is free: task slots (``--jobs``), CPUs and GPU devices."""

    slots: int
    cpus: float
    gpus: list[int] = field(default_factory=list)

    def fits(self, cpus: float, gpus: int) -> bool:
        return self.slots > 0 and cpus <= self.cpus and gpus <= len(self.gpus)


def execute(pipeline: Pipeline, jobs: int) -> State:
    """Run the plan with up to ``jobs`` tasks at once."""
    steps = pipeline.steps
    needs = dependencies(steps)
    remote_at = submission.placements(steps)
    fork = jobs > 1
    budget = Budget(jobs, float(os.cpu_count() or 1), check_fits(steps, jobs) if fork else [])
    done: set[int] = set()
    pending = list(steps)
    running: dict[int, Child] = {}
    remote: dict[int, submission.Submitted] = {}
    failure: BaseException | None = None

    def forked(step: Step) -> bool:
        return fork and _in_process(step)

    try:
        while pending or running or remote:
            ready = [s for s in pending if needs[s.index] <= done] if failure is None else []
            for step in ready:
                if step.index in remote_at and step.action == TaskState.RUN:
                    pending.remove(step)
                    try:
                        sent = submission.submit(pipeline, step, remote_at[step.index])
                    except TaskFailed as error:  # let what runs finish, start nothing else
                        failure = error
                        break
                    remote[step.index] = sent
                elif forked(step) and budget.fits(*_wants(step, budget)):
                    pending.remove(step)
                    running[step.index] = _launch(pipeline, step, budget)
            inline = next((s for s in ready if s in pending and not forked(s)), None)
            if inline is not None and budget.slots > 0 and failure is None:
                pending.remove(inline)
                try:
                    pipeline.execute_step(inline)
                except (TaskFailed, GinpipeError) as error:  # let running children finish
                    failure = error
                    continue
                done.add(inline.index)
                continue
            if not running and not remote:
                if failure is not None:
                    break
                if pending:  # unreachable: the graph is acyclic and every step is planned
                    raise RuntimeError(f"no task can start: {[s.name for s in pending]}")
                continue
            for sent in submission.finished(remote.values()):
                del remote[sent.step.index]
                outcome = submission.collect(pipeline, sent)
                if outcome is None:
                    done.add(sent.step.index)
                elif failure is None:
                    failure = outcome
            if not running:
                if remote:
                    time.sleep(submission.POLL_S)
                continue
            for child in _finished(running, submission.POLL_S if remote else None):
                del running[child.step.index]
                _release(budget, child)
                outcome = _collect(pipeline, child)
                if outcome is None:
                    done.add(child.step.index)
                elif failure is None:
                    failure = outcome
    finally:
        _stop(running.values())
        submission.cancel(remote.values())
    if failure is not None:
        raise failure
    return pipeline.state


def _in_process(step: Step) -> bool:
    """Whether the step runs in a process of its own: it runs, and declares work."""
    wants = step.resources
    return step.action == TaskState.RUN and (wants.get("cpus", 0) > 0 or wants.get("gpus", 0) > 0)


def _wants(step: Step, budget: Budget) -> tuple[float, int]:
    wants = step.resources
    return min(float(wants.get("cpus", 0)), float(os.cpu_count() or 1)), int(wants.get("gpus", 0))


def _gpu_ids(steps: list[Step]) -> list[int]:
    """The GPU devices to share out, when a task that runs asks for one."""
    if not any(_in_process(s) and s.resources.get("gpus", 0) > 0 for s in steps):
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [int(d) for d in visible.split(",") if d.strip().isdigit()]
    # The driver lists one folder per GPU; asking torch would import it here, in the main
    # process, before the children that train are forked.
    found = Path(NVIDIA_GPUS)
    return list(range(len(list(found.iterdir())))) if found.is_dir() else []


def check_fits(steps: list[Step], jobs: int) -> list[int]:
    """Refuse, before any work, ``--jobs`` below 1 and a task asking for more GPUs than the
    machine has; the GPU devices to share out."""
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: give 1 or more tasks at once")
    devices = _gpu_ids(steps)
    for step in steps:
        gpus = int(step.resources.get("gpus", 0))
        if _in_process(step) and gpus > len(devices):
            raise ConfigError(
                f"task '{step.name}' needs {gpus} GPU(s); this machine has {len(devices)}"
            )
    return devices


def _launch(pipeline: Pipeline, step: Step, budget: Budget) -> Child:
    """Fork a process running ``step``; the main process keeps the budget it takes."""
    cpus, gpus = _wants(step, budget)
    devices = tuple(budget.gpus[:gpus])
    del budget.gpus[:gpus]
    budget.cpus -= cpus
    budget.slots -= 1
    pipeline._materialize_inputs(step)  # a value to recompute is recomputed here, once
    event = pipeline.start_event(step)
    logger.info(f"[{step.index + 1}/{len(pipeline.steps)}] {step.name}: running in a process")
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(
        target=_child_main, args=(pipeline, step, send, devices), name=f"ginpipe-{step.name}"
    )
    process.start()
    send.close()
    return Child(step, process, receive, event, time.perf_counter(), cpus, devices)


def _child_main(pipeline: Pipeline, step: Step, conn: Connection, devices: tuple[int, ...]) -> None:
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
        stored = pipeline.save(step, outputs)
        values = {name: value for name, value in outputs.items() if name not in stored}
        unused = sorted(pipeline.state.unused.get(step.spec.name, set()))
        conn.send(("ok", stored, values, unused))
    except BaseException as raised:
        error = ginapi.unwrap_call_error(raised)
        code = error.exit_code if isinstance(error, GinpipeError) else 1
        try:
            conn.send(("error", _describe(error), traceback.format_exc(), code))
        except Exception as unsendable:  # an error that cannot be pickled
            conn.send(("error", _describe(error), str(unsendable), code))
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


def _finished(running: dict[int, Child], timeout: float | None = None) -> list[Child]:
    """Wait until at least one child has answered or ended (at most ``timeout`` seconds
    while jobs are polled too); those that have."""
    by_handle: dict[Any, Child] = {}
    for child in running.values():
        by_handle[child.conn] = child
        by_handle[child.process.sentinel] = child
    found = {id(by_handle[r]): by_handle[r] for r in wait(list(by_handle), timeout)}
    return list(found.values())


def _collect(pipeline: Pipeline, child: Child) -> BaseException | None:
    """Take a finished child's result into the state and the records; its error, if any."""
    step, event = child.step, child.event
    try:
        message = child.conn.recv() if child.conn.poll(5.0) else None
    except (EOFError, OSError):
        message = None
    child.process.join()
    event.seconds = time.perf_counter() - child.started
    if message is not None and message[0] == "ok":
        _, stored, values, unused = message
        for name in stored:
            pipeline.expose_stored_output(step, name)
        for name, value in values.items():
            pipeline.state.set(step.state_key(name), value)
        if unused:
            pipeline.state.unused.setdefault(step.spec.name, set()).update(unused)
        step.transient = tuple(values)
        event.status = TaskState.COMPLETED
        pipeline.end_event(step, event)
        return None
    if message is None:
        description = f"its process ended with exit code {child.process.exitcode}"
        code, details = 1, description
    else:
        _, description, details, code = message
    event.status, event.error = TaskState.FAILED, description
    pipeline.events.emit("on_task_failed", event)
    logger.debug(f"{step.name} failed in its process:\n{details}")
    if code != 1:
        error = GinpipeError(f"task '{step.name}': {description}")
        error.exit_code = code
        return error
    return TaskFailed(step.name, ChildError(description))


def _release(budget: Budget, child: Child) -> None:
    budget.slots += 1
    budget.cpus += child.cpus
    budget.gpus += list(child.gpus)


def _stop(children: Any) -> None:
    """Stop children still running (an interrupt, an error in the main process)."""
    for child in children:
        if child.process.is_alive():
            child.process.terminate()
    for child in children:
        child.process.join(10)
        if child.process.is_alive():
            child.process.kill()
            child.process.join()
