"""Dynamic batching: the model inputs of concurrent requests, run through the model together.

A request's inputs wait in a queue; a batch takes what is waiting, up to ``max_items``
items. When fewer are waiting but other requests are still being read or decoded
(``expecting``), it waits for them up to ``timeout_s`` after its first item; when nothing
else is on its way it runs at once, so a lone client pays no batching delay. ``workers``
batches run at a time, each in a thread of its own (torch releases the GIL), so the event
loop keeps accepting and decoding requests meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

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
        self._changed: asyncio.Event | None = None
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=f"batch-{name}")
        self._loop_task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Begin taking batches (on the running event loop)."""
        self._changed = asyncio.Event()
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
        self.expecting += 1
        try:
            yield
        finally:
            self.expecting -= 1
            self._notify()

    async def submit(self, inputs: np.ndarray) -> np.ndarray:
        """The model's rows for ``inputs``, computed in some batch."""
        if len(inputs) == 0:
            return self.model(inputs)
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._queue.append(_Entry(inputs, future))
        self._notify()
        return await future

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def _take_batches(self) -> None:
        assert self._changed is not None
        free = asyncio.Semaphore(self.workers)
        while True:
            while not self._queue:
                self._changed.clear()
                await self._changed.wait()
            await free.acquire()
            batch = await self._collect()
            task = asyncio.get_running_loop().create_task(self._run(batch, free))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _collect(self) -> list[_Entry]:
        """Entries up to ``max_items`` items (a first entry larger than that goes alone)."""
        assert self._changed is not None
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
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                break
        return batch

    async def _run(self, batch: list[_Entry], free: asyncio.Semaphore) -> None:
        try:
            inputs = np.concatenate([entry.inputs for entry in batch])
            loop = asyncio.get_running_loop()
            rows = await loop.run_in_executor(self._executor, self._compute, inputs)
        except Exception as error:  # every request of the batch gets the model's error
            for entry in batch:
                if not entry.result.done():
                    entry.result.set_exception(error)
            return
        finally:
            free.release()
        start = 0
        for entry in batch:
            stop = start + len(entry.inputs)
            if not entry.result.done():  # its client may have gone
                entry.result.set_result(rows[start:stop])
            start = stop

    def _compute(self, inputs: np.ndarray) -> np.ndarray:
        """The model on ``inputs``, in slices of at most ``max_items`` (one large request)."""
        parts = []
        for start in range(0, len(inputs), self.max_items):
            part = inputs[start : start + self.max_items]
            if self.observe is not None:
                self.observe(len(part))
            parts.append(self.model(part))
        return np.concatenate(parts)
