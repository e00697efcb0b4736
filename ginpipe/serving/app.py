"""The HTTP endpoints, on FastAPI: predict (per run), health, ready, info and metrics.

Every refusal is a 4xx whose body is one line of JSON, ``{"error": "..."}``, and the server
goes on serving; an unexpected failure is a 500 of the same form, logged with its
traceback. ``/ready`` turns 503 once a SIGTERM starts the drain, so a load balancer stops
sending new requests while the accepted ones are answered.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from loguru import logger
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ginpipe.serving.errors import RequestError
from ginpipe.serving.metrics import Metrics
from ginpipe.serving.payload import decode_request
from ginpipe.serving.served import ServedRun

# A features body this small (a few rows of JSON) is parsed on the event loop: handing it
# to a thread costs more than the parsing.
INLINE_BYTES = 64 * 1024


@dataclass
class ServerState:
    """What the endpoints and the process share: draining, and requests in flight."""

    draining: bool = False
    in_flight: int = 0


def build_app(
    runs: dict[str, ServedRun],
    metrics: Metrics,
    max_body: int,
    state: ServerState,
    scratch: Path | None = None,
) -> FastAPI:
    """The app for ``runs`` (already loaded); their batchers run while it is up; files sent
    are written into ``scratch`` to be decoded."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for run in runs.values():
            run.batcher.start()
        yield
        for run in runs.values():
            await run.batcher.stop()

    app = FastAPI(
        title="ginpipe serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )

    @app.exception_handler(RequestError)
    async def refused(_: Request, error: Exception) -> Response:
        assert isinstance(error, RequestError)
        return error_response(error.status, str(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        detail = str(error.detail)
        if error.status_code == 404:
            detail = f"no endpoint {request.url.path}; {_endpoints(runs)}"
        return error_response(error.status_code, detail)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: Exception) -> Response:
        return error_response(400, str(error))

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        if len(runs) != 1:
            raise RequestError(404, f"several runs are served; {_endpoints(runs)}", "not_found")
        only = next(iter(runs.values()))
        return await answer(only, request, metrics, max_body, state, scratch)

    @app.post("/runs/{name}/predict")
    async def predict_run(name: str, request: Request) -> Response:
        return await answer(_run(runs, name), request, metrics, max_body, state, scratch)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> Response:
        if state.draining:
            return error_response(503, "draining: answering the requests already accepted")
        return JSONResponse({"ready": True, "runs": list(runs)})

    @app.get("/info")
    async def info() -> Any:
        if len(runs) == 1:
            return next(iter(runs.values())).info
        return {"runs": [run.info for run in runs.values()]}

    @app.get("/runs/{name}/info")
    async def run_info(name: str) -> Any:
        return _run(runs, name).info

    @app.get("/metrics")
    async def exposition() -> Response:
        text, content_type = metrics.text()
        return Response(text, media_type=content_type)

    return app


async def answer(
    run: ServedRun,
    request: Request,
    metrics: Metrics,
    max_body: int,
    state: ServerState,
    scratch: Path | None = None,
) -> Response:
    """One prediction request: read, decode (in a thread), batch, answer."""
    start = time.perf_counter()
    state.in_flight += 1
    metrics.in_flight.inc()
    try:
        async with run.batcher.expected():
            body = await read_body(request, max_body)
            content_type = request.headers.get("content-type", "")
            if run.predictor.bundle.data_kind != "files" and len(body) <= INLINE_BYTES:
                decoded = decode_request(run.predictor, body, content_type, scratch)
            else:  # files are written and decoded, large tables parsed, off the event loop
                decoded = await run_in_threadpool(
                    decode_request, run.predictor, body, content_type, scratch
                )
        probabilities = await run.batcher.submit(decoded.inputs)
    except RequestError as error:
        metrics.answered(run.name, error.status, time.perf_counter() - start, error.kind)
        return error_response(error.status, str(error))
    except Exception as error:
        logger.opt(exception=error).error(f"serve: {run.name}: prediction failed: {error}")
        metrics.answered(run.name, 500, time.perf_counter() - start, "internal")
        return error_response(500, f"internal error: {type(error).__name__}: {error}")
    finally:
        state.in_flight -= 1
        metrics.in_flight.dec()
    classes = run.predictor.classes
    rows = [
        {
            "predicted_class": classes[int(row.argmax())],
            "probabilities": {name: float(p) for name, p in zip(classes, row, strict=True)},
        }
        for row in probabilities
    ]
    metrics.items.labels(run=run.name).observe(len(rows))
    metrics.answered(run.name, 200, time.perf_counter() - start)
    payload = rows[0] if decoded.single else rows
    return Response(json.dumps(payload), media_type="application/json")


async def read_body(request: Request, max_body: int) -> bytes:
    """The body, refused (413) past ``max_body`` bytes: by its Content-Length before
    reading, or while reading a body sent without one."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise RequestError(413, _too_large(int(declared), max_body), "too_large")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise RequestError(413, _too_large(size, max_body, "at least "), "too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int, qualifier: str = "") -> str:
    return f"the body is {qualifier}{size} bytes, more than --max-body {limit}"


def error_response(status: int, message: str) -> Response:
    """One line of JSON: ``{"error": "..."}``."""
    return Response(
        json.dumps({"error": " ".join(message.split())}),
        status_code=status,
        media_type="application/json",
    )


def _run(runs: dict[str, ServedRun], name: str) -> ServedRun:
    if name not in runs:
        raise RequestError(404, f"no run named '{name}' is served; {_endpoints(runs)}", "not_found")
    return runs[name]


def _endpoints(runs: dict[str, ServedRun]) -> str:
    names = ", ".join(runs)
    if len(runs) == 1:
        return f"POST /predict or /runs/{names}/predict; GET /info, /health, /ready, /metrics"
    return f"POST /runs/NAME/predict with NAME one of: {names}; GET /info, /metrics"
