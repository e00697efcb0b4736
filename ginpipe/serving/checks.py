"""What ``ginpipe serve`` checks before it loads any model: its options, each run's folder
and model bundle, the run names (the routes), and the address, which it binds and keeps.

Each mistake is one line and exit 2, in a fraction of a second instead of after the
models load.
"""

from __future__ import annotations

import errno
import importlib.util
import socket
from pathlib import Path

from ginpipe.base.errors import ConfigError
from ginpipe.base.install import install_line
from ginpipe.runs import rundir

SERVING_MODULES = ("fastapi", "uvicorn", "prometheus_client", "orjson")


def require_serving_libraries() -> None:
    missing = [name for name in SERVING_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"serving needs {', '.join(missing)}: {install_line('serve')}")


def check_options(
    workers: int, max_batch_size: int, batch_timeout_ms: float, max_body: int
) -> None:
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if max_batch_size < 1:
        raise ConfigError(f"--max-batch-size must be at least 1, got {max_batch_size}")
    if batch_timeout_ms < 0:
        raise ConfigError(f"--batch-timeout must be 0 or more milliseconds, got {batch_timeout_ms}")
    if max_body < 1:
        raise ConfigError(f"--max-body must be at least 1 byte, got {max_body}")


def named_runs(run_dirs: list[Path]) -> dict[str, Path]:
    """``{name: run_dir}``: each a run directory with a model; names (the folder names,
    routed as ``/runs/NAME/predict``) unique."""
    from ginpipe.tasks.bundle import read_bundle

    if not run_dirs:
        raise ConfigError("name at least one run directory to serve")
    found: dict[str, Path] = {}
    for run_dir in run_dirs:
        if not run_dir.is_dir():
            raise ConfigError(f"run directory '{run_dir}' does not exist")
        if not (run_dir / rundir.CONFIG).is_file():
            raise ConfigError(f"not a run directory (no {rundir.CONFIG}): {run_dir}")
        read_bundle(run_dir)  # the model's files are there and match model.json
        name = run_dir.resolve().name
        if name in found:
            raise ConfigError(
                f"two runs are named '{name}' ({found[name]} and {run_dir}): each is routed by "
                "its folder name, so serve runs with different names"
            )
        found[name] = run_dir
    return found


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, held from now on, so the port cannot be taken
    while the models load."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise ConfigError(f"--host '{host}' is not an address here: {error.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        reason = "in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
        raise ConfigError(
            f"cannot listen on {host}:{port}: {reason}; choose another with --port"
        ) from None
    sock.set_inheritable(True)
    return sock
