"""The HTTP endpoints: predict (per run, ``route``), health, ready, info and metrics.

Every refusal is a 4xx whose body is one line of JSON, ``{"error": "..."}``, and the server
goes on serving; an unexpected failure is a 500 of the same form, logged with its
traceback. ``/ready`` turns 503 once a SIGTERM starts the drain, so a load balancer stops
sending new requests while the accepted ones are answered. The prediction paths are
answered by ``route.PredictRoute`` in front of this FastAPI app, the rest by the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ginpipe.serving.errors import RequestError
from ginpipe.serving.metrics import Metrics
from ginpipe.serving.route import PredictRoute, endpoints, error_body
from ginpipe.serving.served import ServedRun


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
) -> PredictRoute:
    """The app for ``runs`` (already loaded); their batchers run while it is up; files sent
    are written into ``scratch`` to be decoded."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for run in runs.values():
            for batcher in run.batchers:
                batcher.start()
        yield
        for run in runs.values():
            for batcher in run.batchers:
                await batcher.stop()

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
            detail = f"no endpoint {request.url.path}; {endpoints(runs)}"
        return error_response(error.status_code, detail)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: Exception) -> Response:
        return error_response(400, str(error))

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

    return PredictRoute(app, runs, metrics, max_body, state, scratch)


def error_response(status: int, message: str) -> Response:
    """One line of JSON: ``{"error": "..."}``."""
    return Response(error_body(message), status_code=status, media_type="application/json")


def _run(runs: dict[str, ServedRun], name: str) -> ServedRun:
    if name not in runs:
        raise RequestError(404, f"no run named '{name}' is served; {endpoints(runs)}", "not_found")
    return runs[name]
