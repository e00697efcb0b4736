"""``ginpipe serve``: check, bind, load each run once, serve until SIGTERM, drain.

Order matters for the user: options, run folders and the address are checked (and the
port bound) before any model is loaded, so a mistake is one line at once; the URL is
printed only when the server accepts requests. SIGTERM (or Ctrl-C) stops accepting, turns
``/ready`` to 503, answers every request already accepted (up to ``DRAIN_S``), then the
process ends with SIGTERM's exit code, as every ginpipe command does.
"""

from __future__ import annotations

import gc
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ginpipe.serving.checks import bind, check_options, named_runs, require_serving_libraries

DRAIN_S = 25  # under the 30 s a container engine waits between SIGTERM and SIGKILL
DEFAULT_PORT = 8000
DEFAULT_MAX_BATCH = 64
DEFAULT_BATCH_TIMEOUT_MS = 5.0
DEFAULT_MAX_BODY = 16 * 2**20


def serve(
    run_dirs: list[Path],
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    workers: int = 1,
    max_batch_size: int = DEFAULT_MAX_BATCH,
    batch_timeout_ms: float = DEFAULT_BATCH_TIMEOUT_MS,
    max_body: int = DEFAULT_MAX_BODY,
    say: Callable[[str], None] = print,
) -> None:
    """Serve ``run_dirs`` on ``host:port`` until a signal ends the process."""
    started = time.perf_counter()
    check_options(workers, max_batch_size, batch_timeout_ms, max_body)
    named = named_runs(run_dirs)
    require_serving_libraries()
    sock = bind(host, port)
    try:
        _serve_on(
            sock, named, host, workers, max_batch_size, batch_timeout_ms, max_body, say, started
        )
    finally:
        sock.close()


def _serve_on(
    sock: socket.socket,
    named: dict[str, Path],
    host: str,
    workers: int,
    max_batch_size: int,
    batch_timeout_ms: float,
    max_body: int,
    say: Callable[[str], None],
    started: float,
) -> None:
    import uvicorn

    from ginpipe.serving.app import ServerState, build_app
    from ginpipe.serving.listener import Listener
    from ginpipe.serving.metrics import Metrics
    from ginpipe.serving.served import load_served

    metrics = Metrics()
    runs = {
        name: load_served(name, run_dir, metrics, max_batch_size, batch_timeout_ms / 1000, workers)
        for name, run_dir in named.items()
    }
    # What is loaded now lives as long as the server: out of the collector's sight, a full
    # collection no longer walks torch's ~285,000 objects (130 ms measured) while requests wait.
    gc.freeze()
    state = ServerState()
    scratch = tempfile.TemporaryDirectory(prefix="ginpipe-serve-")  # files sent, to decode
    app = build_app(runs, metrics, max_body, state, Path(scratch.name))
    port = sock.getsockname()[1]
    url = f"http://{_url_host(host)}:{port}/"
    route = "POST /predict" if len(runs) == 1 else "POST /runs/NAME/predict"
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=DRAIN_S,
        lifespan="on",
    )

    def ready() -> None:
        seconds = time.perf_counter() - started
        say(f"serving {', '.join(runs)} at {url} ({route}; ready in {seconds:.1f}s; "
            "Ctrl-C or SIGTERM stops it)")  # fmt: skip

    def stopping(signum: int) -> None:
        state.draining = True
        say(f"stopping: answering {state.in_flight} request(s) in flight, accepting no more")

    try:
        Listener(config, ready, stopping).run(sockets=[sock])
    finally:
        scratch.cleanup()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
