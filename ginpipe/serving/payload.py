"""A request's body -> rows for the batch, through the run's own preprocessing.

The forms are those ``ginpipe predict`` accepts, sent over HTTP:

* a run trained on features: JSON, one row (``{"column": value, ...}`` or a list of
  numbers, flat or shaped like one raw item) or a list of rows; or a CSV table
  (``text/csv``) with the training columns;
* a run trained on files (images, audio, any decoder): the file's bytes as the body
  (``application/octet-stream``, ``image/*``, ``audio/*``), or JSON: one base64 string or a
  list of them; a decoded-files run also takes computed features as JSON numbers.

Files are written to a temporary folder (never the run directory) and read by the run's
decoder exactly as ``predict`` reads files; the folder is removed when the inputs are made.
An audio run with ginpipe's own decoder and feature decodes in memory instead and leaves
the feature to the batch (``waves``).
Every refusal is a ``RequestError`` whose line names the item, never a temporary path.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import mimetypes
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ginpipe.base.errors import DataError
from ginpipe.inference.inputs import Items, read_items
from ginpipe.inference.model_inputs import request_inputs
from ginpipe.inference.predictor import Predictor
from ginpipe.serving.errors import RequestError
from ginpipe.serving.waves import Waves

FILE_TYPES = ("application/octet-stream", "image/", "audio/")
# Leading bytes -> a file suffix, for decoders that look at it (Pillow and soundfile read
# the bytes themselves).
MAGIC = (
    (b"\x89PNG", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF8", ".gif"),
    (b"BM", ".bmp"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"fLaC", ".flac"),
    (b"OggS", ".ogg"),
    (b"\x93NUMPY", ".npy"),
)


@dataclass
class Decoded:
    """A request's rows for the batch (``request_inputs``), and whether it sent one item
    (answered as one object); ``waves``: the rows are waveforms, features still to make."""

    inputs: np.ndarray
    single: bool
    waves: bool = False


def decode_request(
    predictor: Predictor,
    body: bytes,
    content_type: str,
    scratch: Path | None = None,
    waves: Waves | None = None,
) -> Decoded:
    """The rows of one request (blocking: files are decoded here, in memory by ``waves``
    where given, else written first into ``scratch``, a folder the server keeps, or the
    system's temporary folder)."""
    media = content_type.split(";", 1)[0].strip().lower()
    files = predictor.bundle.data_kind == "files"
    if media.startswith(FILE_TYPES):
        if not files:
            raise RequestError(
                415,
                f"this run was trained on features; send JSON rows or text/csv, not {media}",
                "content_type",
            )
        return _files(predictor, [body], media, True, ["the body"], scratch, waves)
    if media == "application/json" or media.endswith("+json"):
        return _json(predictor, _parse_json(body), scratch, waves)
    if media == "text/csv" and not files:
        return _csv(predictor, body)
    wanted = (
        "the file's bytes (application/octet-stream, image/*, audio/*) or JSON base64 strings"
        if files
        else "JSON rows (application/json) or a table (text/csv)"
    )
    raise RequestError(
        415, f"Content-Type '{media or 'none'}' is not accepted; send {wanted}", "content_type"
    )


def _parse_json(body: bytes) -> Any:
    """orjson, ~10x faster on a row of numbers; the standard parser where it refuses (NaN
    and Infinity, which ``json`` reads and the finiteness check names), and for the message."""
    import orjson

    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise RequestError(400, f"the body is not valid JSON: {error}") from None


def _json(predictor: Predictor, value: Any, scratch: Path | None, waves: Waves | None) -> Decoded:
    bundle = predictor.bundle
    if isinstance(value, list) and not value:
        raise RequestError(400, "the list of items is empty")
    if bundle.data_kind == "files":
        if isinstance(value, str):
            contents = [_base64(value, "the item")]
            return _files(predictor, contents, None, True, ["the item"], scratch, waves)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            names = [f"item {index}" for index in range(len(value))]
            contents = [_base64(item, name) for item, name in zip(value, names, strict=True)]
            return _files(predictor, contents, None, False, names, scratch, waves)
        if bundle.decoded is None:
            raise RequestError(400, f"this run takes image files: {_file_forms()}")
        return _numbers(predictor, value, [int(side) for side in bundle.input_shape])
    if isinstance(value, dict):
        return _rows(predictor, [value], single=True)
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return _rows(predictor, value, single=False)
    spec = bundle.preprocessing_value or {}
    raw_shape = [int(side) for side in spec.get("raw_shape") or bundle.input_shape]
    return _numbers(predictor, value, raw_shape)


def _file_forms() -> str:
    return "send the file's bytes as the body, or JSON: a base64 string or a list of them"


def _base64(text: str, name: str) -> bytes:
    if text.startswith("data:") and "," in text:  # a data URL: data:image/png;base64,....
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"{name} is not a base64 string: {_file_forms()}") from None


def _numbers(predictor: Predictor, value: Any, item_shape: list[int]) -> Decoded:
    """Numbers: one item (shaped like one, or flat) or a list of items."""
    if isinstance(value, (dict, str)) or not isinstance(value, list):
        kind = type(value).__name__
        raise RequestError(400, f"expected {_forms(predictor)}; got a JSON {kind}")
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise RequestError(
            400, "the numbers are not a regular array (rows of different lengths, or text)"
        ) from None
    width = int(np.prod(item_shape))
    single = list(array.shape) in (item_shape, [width])
    if single:
        array = array.reshape(1, *item_shape)
    return Decoded(_inputs(predictor, lambda: read_items(predictor.bundle, array)), single)


def _rows(predictor: Predictor, rows: list[dict[str, Any]], single: bool) -> Decoded:
    import pandas as pd

    table = pd.DataFrame.from_records(rows)
    source = "the row" if single else "the rows"
    return Decoded(_inputs(predictor, lambda: _from_table(predictor, table, source)), single)


def _csv(predictor: Predictor, body: bytes) -> Decoded:
    import pandas as pd

    try:
        table = pd.read_csv(io.BytesIO(body))
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(400, f"the body is not a CSV table: {error}") from None
    return Decoded(_inputs(predictor, lambda: _from_table(predictor, table, "the table")), False)


def _from_table(predictor: Predictor, table: Any, source: str) -> Items:
    try:
        return read_items(predictor.bundle, table)
    except DataError as error:
        raise DataError(str(error).replace("the table", source, 1)) from None


def _files(
    predictor: Predictor,
    contents: list[bytes],
    media: str | None,
    single: bool,
    names: list[str],
    scratch: Path | None,
    waves: Waves | None = None,
) -> Decoded:
    """Each content written to a file of its own, read as ``predict`` reads files, then
    removed. Files in a folder kept for the server: a folder made and removed per request
    cost ~3 ms here, more than decoding a second of audio. With ``waves``: decoded in
    memory, features made in the batch."""
    for content, name in zip(contents, names, strict=True):
        if not content:
            raise RequestError(400, f"{name} is empty: {_file_forms()}")
    if waves is not None:
        decoded = [
            waves.decode(content, name) for content, name in zip(contents, names, strict=True)
        ]
        return Decoded(np.concatenate(decoded), single, waves=True)
    folder = scratch or Path(tempfile.gettempdir())
    paths: list[str] = []
    try:
        for content in contents:
            file = folder / f"ginpipe-serve-{uuid.uuid4().hex}{_suffix(content, media)}"
            paths.append(str(file))
            file.write_bytes(content)
        renames = dict(zip(paths, names, strict=True))
        inputs = _inputs(predictor, lambda: read_items(predictor.bundle, paths), renames)
    finally:
        for written in paths:
            with contextlib.suppress(OSError):
                os.unlink(written)
    return Decoded(inputs, single)


def _suffix(content: bytes, media: str | None) -> str:
    for magic, suffix in MAGIC:
        if content.startswith(magic):
            return suffix
    if content[:4] == b"RIFF" and content[8:12] in (b"WAVE", b"WEBP"):
        return ".wav" if content[8:12] == b"WAVE" else ".webp"
    if content[:4] == b"FORM" and content[8:12] in (b"AIFF", b"AIFC"):
        return ".aiff"
    guessed = mimetypes.guess_extension(media) if media else None
    return guessed or ""


def _inputs(predictor: Predictor, read: Any, renames: dict[str, str] | None = None) -> np.ndarray:
    """``request_inputs`` of what ``read()`` gives; a DataError becomes a 400 naming items
    instead of temporary files."""
    try:
        return request_inputs(predictor, read())
    except DataError as error:
        message = str(error)
        for path, name in (renames or {}).items():
            message = message.replace(path, name)
        raise RequestError(400, message) from None


def _forms(predictor: Predictor) -> str:
    bundle = predictor.bundle
    if bundle.data_kind == "files":
        return "computed features as numbers, or files: " + _file_forms()
    return 'a JSON row ({"column": value, ...} or a list of numbers), a list of rows, or text/csv'
