"""The HTTP floor of the serve benchmark: an endpoint that answers ``POST /predict`` with a
fixed prediction-sized JSON body and runs no model, on uvicorn as the two servers run.

``--app asgi``: a plain ASGI callable (what ``ginpipe serve``'s prediction route is);
``--app fastapi``: a FastAPI route taking a ``Request`` (what the hand-written endpoint
is). Their requests/s at 64 clients bound what any server on that layer can answer on this
machine with the load client beside it, model or not.

    python benchmarks/baselines/serve_empty.py --app asgi --port 8002
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

ANSWER = json.dumps(
    {"predicted_class": "3", "probabilities": {str(d): 0.1 for d in range(10)}}
).encode()
Message = MutableMapping[str, Any]


async def asgi(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:  # the body, read and dropped
        more = (await receive()).get("more_body", False)
    status = 200 if scope["path"] in ("/predict", "/health") else 404
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": ANSWER})


def fastapi_app() -> Any:
    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        await request.body()
        return Response(ANSWER, media_type="application/json")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", choices=["asgi", "fastapi"], required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = asgi if args.app == "asgi" else fastapi_app()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
