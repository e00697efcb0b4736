"""``POST /predict`` and ``/runs/NAME/predict`` as a plain ASGI app in front of FastAPI.

A prediction request is the one call a server answers thousands of times a second, and
once the model is batched what is left per request is not the model: an endpoint with no
model answers 2.5-4x fewer requests/s as a FastAPI route than as a plain ASGI app on the
2-core machine of benchmarks/RESULTS.md (the "HTTP floor" of ``benchmarks/serve.py``): its
middleware stack, routing, dependency solving and Response objects cost more than the
batched model's share of a request. So these two paths
are matched here, the body read from ``receive``, the answer written with two ``send``
calls (JSON by orjson); every other path goes to the FastAPI app (``app.py``), whose
answers (health, ready, info, metrics, 404) are unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from ginpipe.serving.errors import RequestError
from ginpipe.serving.metrics import Metrics
from ginpipe.serving.payload import decode_request
from ginpipe.serving.served import ServedRun

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# A features body this small (a few rows of JSON), or a small audio file decoded in
# memory, is handled on the event loop: handing it to a thread costs more than the work.
INLINE_BYTES = 64 * 1024
JSON_HEADERS = [(b"content-type", b"application/json")]


class ClientGone(Exception):
    """The client closed the connection before its body was read."""


class PredictRoute:
    """The prediction paths of ``runs``; anything else goes to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        runs: dict[str, ServedRun],
        metrics: Metrics,
        max_body: int,
        state: Any,
        scratch: Path | None = None,
    ) -> None:
        self.app = app
        self.runs = runs
        self.metrics = metrics
        self.max_body = max_body
        self.state = state  # app.ServerState: draining, in_flight
        self.scratch = scratch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/predict" or (path.startswith("/runs/") and path.endswith("/predict")):
            try:
                run = self._run(path)
                if scope["method"] != "POST":
                    raise RequestError(405, f"{path} takes POST", "method")
            except RequestError as error:
                allow = [(b"allow", b"POST")] if error.status == 405 else []
                await respond(send, error.status, error_body(str(error)), allow)
                return
            await self.answer(run, scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _run(self, path: str) -> ServedRun:
        if path == "/predict":
            if len(self.runs) != 1:
                raise RequestError(
                    404, f"several runs are served; {endpoints(self.runs)}", "not_found"
                )
            return next(iter(self.runs.values()))
        name = path[len("/runs/") : -len("/predict")]
        if name not in self.runs:
            raise RequestError(
                404, f"no run named '{name}' is served; {endpoints(self.runs)}", "not_found"
            )
        return self.runs[name]

    async def answer(self, run: ServedRun, scope: Scope, receive: Receive, send: Send) -> None:
        """One prediction request: read, decode (in a thread if large), batch, answer."""
        start = time.perf_counter()
        state, metrics = self.state, self.metrics
        state.in_flight += 1
        metrics.in_flight.inc()
        batchers = run.batchers
        try:
            for batcher in batchers:  # a batch may wait for this request's inputs
                batcher.expect()
            try:
                headers = dict(scope["headers"])
                body = await read_body(receive, headers.get(b"content-length"), self.max_body)
                content_type = headers.get(b"content-type", b"").decode("latin-1")
                decoded = await self._decode(run, body, content_type)
            finally:
                for batcher in batchers:
                    batcher.arrived()
            queue = run.wave_batcher if decoded.waves else run.batcher
            assert queue is not None  # waves are decoded only where the run has their batcher
            probabilities = await queue.submit(decoded.inputs)
        except RequestError as error:
            metrics.answered(run.name, error.status, time.perf_counter() - start, error.kind)
            await respond(send, error.status, error_body(str(error)))
            return
        except ClientGone:
            metrics.answered(run.name, 499, time.perf_counter() - start, "client_gone")
            return
        except Exception as error:
            logger.opt(exception=error).error(f"serve: {run.name}: prediction failed: {error}")
            metrics.answered(run.name, 500, time.perf_counter() - start, "internal")
            message = f"internal error: {type(error).__name__}: {error}"
            await respond(send, 500, error_body(message))
            return
        finally:
            state.in_flight -= 1
            metrics.in_flight.dec()
        answer = answer_body(run.predictor.classes, probabilities, decoded.single)
        metrics.answered(run.name, 200, time.perf_counter() - start, items=len(probabilities))
        await respond(send, 200, answer)

    async def _decode(self, run: ServedRun, body: bytes, content_type: str) -> Any:
        small = len(body) <= INLINE_BYTES
        if small and (run.predictor.bundle.data_kind != "files" or run.waves is not None):
            return decode_request(run.predictor, body, content_type, self.scratch, run.waves)
        # files written and decoded, large tables parsed: off the event loop
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(
            decode_request, run.predictor, body, content_type, self.scratch, run.waves
        )


async def read_body(receive: Receive, declared: bytes | None, max_body: int) -> bytes:
    """The body, refused (413) past ``max_body`` bytes: by its Content-Length before
    reading, or while reading a body sent without one."""
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise RequestError(413, _too_large(int(declared), max_body), "too_large")
    chunks = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            raise RequestError(413, _too_large(size, max_body, "at least "), "too_large")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(size: int, limit: int, qualifier: str = "") -> str:
    return f"the body is {qualifier}{size} bytes, more than --max-body {limit}"


def answer_body(classes: list[str], probabilities: np.ndarray, single: bool) -> bytes:
    """``{"predicted_class", "probabilities"}`` per item, an object for one item sent alone."""
    import orjson

    best = probabilities.argmax(axis=1).tolist()
    rows = [
        {"predicted_class": classes[index], "probabilities": dict(zip(classes, row, strict=True))}
        for index, row in zip(best, probabilities.tolist(), strict=True)
    ]
    return orjson.dumps(rows[0] if single else rows)


def error_body(message: str) -> bytes:
    """One line of JSON: ``{"error": "..."}``."""
    import orjson

    return orjson.dumps({"error": " ".join(message.split())})


async def respond(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def endpoints(runs: dict[str, ServedRun]) -> str:
    names = ", ".join(runs)
    if len(runs) == 1:
        return f"POST /predict or /runs/{names}/predict; GET /info, /health, /ready, /metrics"
    return f"POST /runs/NAME/predict with NAME one of: {names}; GET /info, /metrics"
