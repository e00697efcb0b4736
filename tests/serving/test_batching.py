"""The dynamic-batching queue on its own: batches up to the limit, each request gets its own
rows back, a lone request never waits for the timeout, a model error reaches every request
of its batch, a request larger than a batch is run in slices."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from ginpipe.serving.batching import Batcher

NEVER_S = 600.0  # a batch timeout no test may wait for


def doubled(sizes: list[int]) -> Callable[[np.ndarray], np.ndarray]:
    """A model that doubles its input and records the size of each call."""

    def model(rows: np.ndarray) -> np.ndarray:
        sizes.append(len(rows))
        return rows * 2

    return model


async def _with(batcher: Batcher, body: Awaitable[Any]) -> Any:
    batcher.start()
    try:
        return await body
    finally:
        await batcher.stop()


def test_concurrent_requests_share_batches_up_to_the_limit() -> None:
    sizes: list[int] = []
    seen: list[int] = []
    batcher = Batcher(doubled(sizes), max_items=4, timeout_s=NEVER_S, observe=seen.append)

    async def requests() -> list[np.ndarray]:
        async def one(value: float) -> np.ndarray:
            async with batcher.expected():  # being read: the batch may wait for it
                await asyncio.sleep(0)
            return await batcher.submit(np.full((1, 3), value, dtype=np.float32))

        return await asyncio.gather(*(one(float(v)) for v in range(10)))

    answers = asyncio.run(_with(batcher, requests()))
    assert [float(a[0, 0]) for a in answers] == [2.0 * v for v in range(10)]
    assert sum(sizes) == 10 and max(sizes) <= 4 and len(sizes) < 10
    assert seen == sizes


def test_a_lone_request_does_not_wait_for_the_timeout() -> None:
    sizes: list[int] = []
    batcher = Batcher(doubled(sizes), max_items=64, timeout_s=NEVER_S)

    async def lone() -> np.ndarray:
        request = batcher.submit(np.ones((2, 3), dtype=np.float32))
        return await asyncio.wait_for(request, timeout=NEVER_S / 10)

    answer = asyncio.run(_with(batcher, lone()))
    assert np.array_equal(answer, np.full((2, 3), 2.0))
    assert sizes == [2]


def test_a_model_error_reaches_every_request_of_its_batch() -> None:
    def broken(rows: np.ndarray) -> np.ndarray:
        raise RuntimeError("model broke")

    batcher = Batcher(broken, max_items=8, timeout_s=0.05)

    async def requests() -> list[Any]:
        async def one() -> np.ndarray:
            async with batcher.expected():
                await asyncio.sleep(0)
            return await batcher.submit(np.zeros((1, 2), dtype=np.float32))

        return await asyncio.gather(*(one() for _ in range(3)), return_exceptions=True)

    results = asyncio.run(_with(batcher, requests()))
    assert [str(r) for r in results] == ["model broke"] * 3


def test_a_request_larger_than_a_batch_runs_in_slices() -> None:
    sizes: list[int] = []
    batcher = Batcher(doubled(sizes), max_items=4, timeout_s=0.0)
    rows = np.arange(30, dtype=np.float32).reshape(10, 3)
    answer = asyncio.run(_with(batcher, batcher.submit(rows)))
    assert np.array_equal(answer, rows * 2)
    assert sizes == [4, 4, 2]


@pytest.mark.parametrize("workers", [1, 3])
def test_answers_match_their_requests_with_several_workers(workers: int) -> None:
    batcher = Batcher(doubled([]), max_items=5, timeout_s=0.001, workers=workers)

    async def requests() -> list[np.ndarray]:
        return await asyncio.gather(
            *(batcher.submit(np.full((1 + v % 3, 2), v, dtype=np.float32)) for v in range(40))
        )

    answers = asyncio.run(_with(batcher, requests()))
    for value, answer in enumerate(answers):
        assert answer.shape == (1 + value % 3, 2) and np.all(answer == 2 * value)


def test_requests_queued_while_a_batch_runs_share_the_next() -> None:
    sizes: list[int] = []
    running = threading.Event()
    release = threading.Event()

    def slow_first(rows: np.ndarray) -> np.ndarray:
        sizes.append(len(rows))
        if len(sizes) == 1:
            running.set()
            release.wait(NEVER_S / 10)
        return rows * 2

    batcher = Batcher(slow_first, max_items=8, timeout_s=0.0)

    async def requests() -> list[np.ndarray]:
        await asyncio.sleep(0)  # the batch loop is waiting for work
        first = asyncio.ensure_future(batcher.submit(np.zeros((1, 2), dtype=np.float32)))
        while not running.is_set():  # alone, at once: nothing else was on its way
            await asyncio.sleep(0.001)
        rest = [
            asyncio.ensure_future(batcher.submit(np.full((1, 2), v, dtype=np.float32)))
            for v in range(1, 6)
        ]
        await asyncio.sleep(0.02)  # queued behind the busy worker
        release.set()
        return await asyncio.gather(first, *rest)

    answers = asyncio.run(_with(batcher, requests()))
    assert [float(a[0, 0]) for a in answers] == [2.0 * v for v in range(6)]
    assert sizes == [1, 5]
