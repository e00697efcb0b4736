"""``ginpipe demo``: a Gradio page that shows a run's class probabilities for one input.

An image file for runs trained on files, a row of comma-separated feature values for runs
trained on features; both go through ``predict``'s code, so the page shows what
``ginpipe predict`` would write. The same function is the app's HTTP API (``/predict``).
Gradio is an optional extra: ``pip install "ginpipe[demo]"``.
"""

from __future__ import annotations

import errno
import importlib.util
import socket
from pathlib import Path
from typing import Any

import numpy as np

from ginpipe.base.errors import ConfigError, DataError
from ginpipe.inference.inputs import read_items
from ginpipe.inference.predictor import Predictor

API_NAME = "predict"


def require_gradio() -> None:
    if importlib.util.find_spec("gradio") is None:
        raise ConfigError('the demo needs gradio: pip install "ginpipe[demo]"')


def probabilities_of(predictor: Predictor, value: Any) -> dict[str, float]:
    """``{class: probability}`` for one image path or one comma-separated feature row."""
    if predictor.bundle.data_kind == "files":
        if not value:
            raise DataError("no image given")
        items = read_items(predictor.bundle, [str(value)])
    else:
        parts = [part for part in str(value).replace(";", ",").split(",") if part.strip()]
        try:
            row = [float(part) for part in parts]
        except ValueError as error:
            raise DataError(f"feature values must be numbers, comma-separated: {error}") from None
        items = read_items(predictor.bundle, np.asarray([row], dtype=np.float32))
    (_, probabilities), *_ = predictor.batches(items, batch_size=1)
    return {name: float(p) for name, p in zip(predictor.classes, probabilities[0], strict=True)}


def build_app(run_dir: Path) -> Any:
    """The Gradio interface for ``run_dir`` (not started)."""
    require_gradio()
    import gradio as gr

    predictor = Predictor(run_dir)

    def predict(value: Any) -> dict[str, float]:
        try:
            return probabilities_of(predictor, value)
        except DataError as error:
            raise gr.Error(str(error)) from None

    if predictor.bundle.data_kind == "files":
        component: Any = gr.Image(type="filepath", label="image file")
    else:
        names = (predictor.bundle.preprocessing_value or {}).get("feature_names") or []
        hint = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        component = gr.Textbox(label=f"feature values, comma-separated ({hint or 'in order'})")
    return gr.Interface(
        fn=predict,
        inputs=component,
        outputs=gr.Label(num_top_classes=min(5, len(predictor.classes)), label="class"),
        title=f"ginpipe run {run_dir.name}",
        description=f"Class probabilities from the model saved in {run_dir.name}/model.",
        flagging_mode="never",
        api_name=API_NAME,
    )


def check_address(host: str, port: int) -> None:
    """The port is a port and free on ``host``: checked before the model is loaded, so a
    mistake is one line instead of a server's traceback."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must be in 1..65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = "in use" if error.errno == errno.EADDRINUSE else (error.strerror or "")
            raise ConfigError(
                f"cannot listen on {host}:{port}: {reason}; choose another with --port"
            ) from None


def serve(run_dir: Path, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Start the app, say where it is, and block until interrupted."""
    check_address(host, port)
    app = build_app(run_dir)
    app.launch(
        server_name=host, server_port=port, share=False, quiet=True, prevent_thread_lock=True
    )
    print(f"demo of {run_dir.name} at http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    try:
        app.block_thread()
    finally:
        app.close()
