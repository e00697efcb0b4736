"""Dynamic batching: the model inputs of concurrent requests, run through the model together.

A request's inputs wait in a queue; a batch takes what is waiting, up to ``max_items``
items. When fewer are waiting but other requests are still being read or decoded
(``expecting``), it waits for them up to ``timeout_s`` after its first item; when nothing
else is on its way it runs at once, so a lone client pays no batching delay. ``workers``
batches run at a time, each in a thread of its own (torch releases the GIL), so the event
loop keeps accepting and decoding requests meanwhile.

Per request the queue costs one future and, at most, one wake-up of the batch loop (a
plain future, not an ``asyncio.Event`` waited on with ``wait_for``, which makes a task per
wait); per batch, one hand-off to the worker thread and one callback back on the loop. A
request that finds the loop idle, a worker free and no other request on its way goes to the
worker at once, without waking the loop: a lone client's path is as short as a direct call.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from functools import partial

import numpy as np

Model = Callable[[np.ndarray], np.ndarray]
Observer = Callable[[int], None]  # called with the number of items of each batch


@dataclass
class _Entry:
    inputs: np.ndarray
    result: asyncio.Future[np.ndarray] = field(repr=False)


class Batcher:
    """Collects requests' inputs into batches for ``model`` (inputs -> one row per item)."""

    def __init__(
        self,
        model: Model,
        max_items: int,
        timeout_s: float,
        workers: int = 1,
        observe: Observer | None = None,
        name: str = "model",
    ) -> None:
        self.model = model
        self.max_items = max_items
        self.timeout_s = timeout_s
        self.workers = workers
        self.observe = observe
        self.expecting = 0  # requests accepted whose inputs are not queued yet
        self._queue: deque[_Entry] = deque()
        self._free = workers  # workers not running a batch
        self._idle: asyncio.Future[None] | None = None  # the loop, waiting for work
        self._filling: asyncio.Future[None] | None = None  # the loop, filling a batch
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=f"batch-{name}")
        self._loop_task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Future[np.ndarray]] = set()

    def start(self) -> None:
        """Begin taking batches (on the running event loop)."""
        self._loop_task = asyncio.get_running_loop().create_task(self._take_batches())

    async def stop(self) -> None:
        """Answer everything queued, then stop (the server has stopped accepting)."""
        while self._queue or self._running:
            await asyncio.sleep(0.005)
        if self._loop_task is not None:
            self._loop_task.cancel()
            with suppress(asyncio.CancelledError):
                await self._loop_task
        self._executor.shutdown(wait=True)

    @asynccontextmanager
    async def expected(self) -> AsyncIterator[None]:
        """Around reading and decoding a request: a batch may wait for its inputs."""
        self.expect()
        try:
            yield
        finally:
            self.arrived()

    def expect(self) -> None:
        """A request is being read or decoded; ``arrived`` when it is queued or refused."""
        self.expecting += 1

    def arrived(self) -> None:
        self.expecting -= 1
        _wake(self._filling)  # a batch waiting for it may be complete now

    async def submit(self, inputs: np.ndarray) -> np.ndarray:
        """The model's rows for ``inputs``, computed in some batch."""
        if len(inputs) == 0:
            return self.model(inputs)
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        entry = _Entry(inputs, future)
        if self._idle is not None and self._free and not self.expecting and not self._queue:
            self._dispatch([entry])  # nothing to batch it with: no wait, no wake-up
        else:
            self._queue.append(entry)
            _wake(self._idle)
            _wake(self._filling)
        return await future

    async def _wait(self, timeout_s: float | None = None, filling: bool = False) -> None:
        """Until woken (a request queued or arrived, a worker freed) or ``timeout_s``."""
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[None] = loop.create_future()
        if filling:
            self._filling = wake
        else:
            self._idle = wake
        timer = None if timeout_s is None else loop.call_later(timeout_s, _wake, wake)
        try:
            await wake
        finally:
            self._filling = self._idle = None
            if timer is not None:
                timer.cancel()

    async def _take_batches(self) -> None:
        while True:
            while not self._queue or not self._free:
                await self._wait()
            self._dispatch(await self._collect())

    async def _collect(self) -> list[_Entry]:
        """Entries up to ``max_items`` items (a first entry larger than that goes alone)."""
        batch = [self._queue.popleft()]
        size = len(batch[0].inputs)
        deadline = time.monotonic() + self.timeout_s
        while size < self.max_items:
            if self._queue:
                if size + len(self._queue[0].inputs) > self.max_items:
                    break
                entry = self._queue.popleft()
                batch.append(entry)
                size += len(entry.inputs)
                continue
            left = deadline - time.monotonic()
            if self.expecting == 0 or left <= 0:
                break
            await self._wait(left, filling=True)
        return batch

    def _dispatch(self, batch: list[_Entry]) -> None:
        """``batch`` to a free worker; its answers come back in ``_deliver``."""
        self._free -= 1
        loop = asyncio.get_running_loop()
        inputs = [entry.inputs for entry in batch]
        running = loop.run_in_executor(self._executor, self._compute, inputs)
        self._running.add(running)
        running.add_done_callback(partial(self._deliver, batch))

    def _deliver(self, batch: list[_Entry], running: asyncio.Future[np.ndarray]) -> None:
        self._running.discard(running)
        self._free += 1
        _wake(self._idle)
        error = running.exception()
        if error is not None:  # every request of the batch gets the model's error
            for entry in batch:
                if not entry.result.done():
                    entry.result.set_exception(error)
            return
        rows = running.result()
        start = 0
        for entry in batch:
            stop = start + len(entry.inputs)
            if not entry.result.done():  # its client may have gone
                entry.result.set_result(rows[start:stop])
            start = stop

    def _compute(self, requests: list[np.ndarray]) -> np.ndarray:
        """The model on the requests' inputs (joined here, off the event loop), in slices of
        at most ``max_items`` (one large request)."""
        inputs = requests[0] if len(requests) == 1 else np.concatenate(requests)
        parts = []
        for start in range(0, len(inputs), self.max_items):
            part = inputs[start : start + self.max_items]
            if self.observe is not None:
                self.observe(len(part))
            parts.append(self.model(part))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
