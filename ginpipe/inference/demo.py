"""``ginpipe demo``: a Gradio page that shows a run's class probabilities for one input.

The input fits what the run was trained on: an image upload, an audio upload or recording
(a run whose decoder reads audio), a file for another decoder, or a one-row table with the
training columns; examples come from the run's own test split. Everything goes through
``predict``'s code, so the page shows what ``ginpipe predict`` would write, every class's
probability. The same function is the app's HTTP API (``/predict``). Gradio is an optional
extra: ``pip install "ginpipe-ml[demo]"``.
"""

from __future__ import annotations

import errno
import importlib.util
import socket
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from ginpipe.base.errors import ConfigError, DataError, GinpipeError
from ginpipe.base.install import install_line
from ginpipe.inference.inputs import read_items
from ginpipe.inference.predictor import Predictor
from ginpipe.inference.run_split import split_items

API_NAME = "predict"


def require_gradio() -> None:
    if importlib.util.find_spec("gradio") is None:
        raise ConfigError(f"the demo needs gradio: {install_line('demo')}")


def probabilities_of(predictor: Predictor, value: Any) -> dict[str, float]:
    """``{class: probability}`` for every class, for one input as the page gives it: a file
    path (an image, a recording, any file the run's decoder reads), or one row of features
    (a table row, a list of numbers, or comma-separated text)."""
    if predictor.bundle.data_kind == "files":
        if not value:
            raise DataError("no file given")
        items = read_items(predictor.bundle, [str(value)])
    else:
        items = read_items(predictor.bundle, np.asarray([_feature_row(value)], dtype=np.float32))
    (_, probabilities), *_ = predictor.batches(items, batch_size=1)
    return {name: float(p) for name, p in zip(predictor.classes, probabilities[0], strict=True)}


def _feature_row(value: Any) -> list[float]:
    if hasattr(value, "to_numpy"):  # the page's one-row table
        cells = [cell for row in value.to_numpy().tolist() for cell in row]
    elif isinstance(value, (list, tuple)):
        cells = [cell for item in value for cell in (item if isinstance(item, list) else [item])]
    else:
        cells = [part for part in str(value).replace(";", ",").split(",") if part.strip()]
    try:
        return [float(cell) for cell in cells]
    except (TypeError, ValueError) as error:
        raise DataError(f"feature values must be numbers: {error}") from None


def input_component(predictor: Predictor, gr: Any) -> Any:
    """An input that fits the data: an image upload, an audio upload or recording, a file
    for another decoder, or a one-row table with the training columns."""
    bundle = predictor.bundle
    decoded = bundle.decoded
    if bundle.data_kind == "files" and decoded is None:
        return gr.Image(type="filepath", label="image")
    if decoded is not None:
        if "AudioDecoder" in str(decoded["decoder"].get("target", "")):
            return gr.Audio(type="filepath", sources=["upload", "microphone"], label="audio")
        return gr.File(type="filepath", label="file")
    names = feature_names(predictor)
    return gr.Dataframe(
        headers=names, row_count=(1, "fixed"), col_count=(len(names), "fixed"), type="pandas",
        label="one row of features",
    )  # fmt: skip


def feature_names(predictor: Predictor) -> list[str]:
    spec = predictor.bundle.preprocessing_value or {}
    names = spec.get("feature_names")
    if names:
        return [str(name) for name in names]
    width = int(np.prod(spec.get("raw_shape") or predictor.bundle.input_shape))
    return [f"x{index}" for index in range(width)]


def examples(predictor: Predictor, count: int = 3) -> list[list[Any]]:
    """A few inputs from the run's own test split (none when its data is not at hand)."""
    try:
        items = split_items(predictor.bundle, "test")
    except GinpipeError as error:
        logger.info(f"demo: no examples from the test split ({error})")
        return []
    if items.paths is not None:
        return [[str(path)] for path in items.paths[:count]]
    if items.raw is None:
        return []
    return [
        [np.asarray(row, dtype=np.float32).reshape(1, -1).tolist()] for row in items.raw[:count]
    ]


def build_app(run_dir: Path) -> Any:
    """The Gradio interface for ``run_dir`` (not started)."""
    require_gradio()
    import gradio as gr

    predictor = Predictor(run_dir)

    def predict(value: Any) -> dict[str, float]:
        try:
            return probabilities_of(predictor, value)
        except GinpipeError as error:  # the user's input: one line, on the page and here
            logger.warning(f"demo: {error}")
            raise gr.Error(str(error), print_exception=False) from None

    return gr.Interface(
        fn=predict,
        inputs=input_component(predictor, gr),
        outputs=gr.Label(num_top_classes=len(predictor.classes), label="class probabilities"),
        examples=examples(predictor) or None,
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
