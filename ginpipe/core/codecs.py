"""Safe codecs: write one Python value as files and read it back, without pickle by default.

Cached outputs are read by later runs and other processes, often from a shared directory.
Unpickling runs arbitrary code, so values are stored only in formats that cannot: JSON,
``.npy`` without objects, safetensors and parquet. A value that fits none of them is
reported as having no codec (the caller keeps it in memory only) unless the caller opts
into pickle for it, and a pickle record is read back only when the reader opts in too.

Heavy libraries are imported only when a value of theirs shows up: a value cannot be a
``torch.Tensor`` unless torch is already imported, so ``import ginpipe.core.codecs`` stays light.

A record is a JSON-able dict: ``codec`` (``json``, ``tree``, ``npy``, ``safetensors``,
``parquet`` or ``pickle``), ``files`` (plain file names inside the directory) and whatever
the decoder needs. A ``tree`` is a JSON skeleton whose non-JSON leaves are ``parts``, each
a record of its own, so a dict of arrays, frames and lists is stored without one file per
plain value.
"""

from __future__ import annotations

import json
import pickle
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ginpipe.base.errors import GinpipeError

PICKLE = "pickle"

# Marks tagged JSON objects (tuples, paths, numpy scalars, parts); a user dict that has this
# key is itself wrapped in a tag, so decoding is never ambiguous.
_TAG = "__ginpipe__"
_SERIES_COLUMN = "__series__"
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class CodecError(Exception):
    """A record cannot be decoded: unknown codec, malformed record or unsafe file name."""


class PickleNotAllowed(GinpipeError):
    """The value was stored with pickle and the reader did not allow unpickling."""


class _NoCodec(Exception):
    """No safe codec fits the value (internal signal, never leaves this module)."""


class _Files:
    """The files written for one value, so that a failed encode leaves nothing behind."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.written: list[Path] = []

    def new(self, name: str) -> Path:
        path = self.directory / name
        if path.exists():
            raise FileExistsError(f"codec output already exists: {path}")
        self.written.append(path)
        return path

    def remove_from(self, start: int) -> None:
        for path in self.written[start:]:
            path.unlink(missing_ok=True)
        del self.written[start:]


def encode(
    value: Any, directory: Path, name: str, *, allow_pickle: bool = False
) -> dict[str, Any] | None:
    """Write ``value`` as files named ``name.*`` in ``directory``; None if no codec fits.

    ``name`` must be a plain file stem (letters, digits, ``_.-``). Nothing is left in
    ``directory`` when None is returned or an error is raised.
    """
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"unsafe codec file name: {name!r}")
    files = _Files(Path(directory))
    try:
        return _encode(value, files, name, allow_pickle)
    except (_NoCodec, RecursionError):
        files.remove_from(0)
        return None
    except BaseException:
        files.remove_from(0)
        raise


def decode(record: dict[str, Any], directory: Path, *, allow_pickle: bool = False) -> Any:
    """Read back a value written by ``encode``; refuses pickle unless ``allow_pickle``."""
    if not allow_pickle and needs_pickle(record):
        raise PickleNotAllowed("this value was stored with pickle; pass allow_pickle=True")
    return _decode(record, Path(directory))


def record_files(record: dict[str, Any]) -> list[str]:
    """All file names a record uses, its parts included."""
    names = list(record.get("files", []))
    for part in record.get("parts", []):
        names.extend(record_files(part))
    return names


def needs_pickle(record: dict[str, Any]) -> bool:
    """True if decoding the record would unpickle something."""
    if record.get("codec") == PICKLE:
        return True
    return any(needs_pickle(part) for part in record.get("parts", []))


# --- encoding -----------------------------------------------------------------------------


def _encode(value: Any, files: _Files, name: str, allow_pickle: bool) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []

    def part(item: Any) -> dict[str, Any]:
        # the value itself (an array, a frame...) keeps the plain name
        sub = name if item is value else f"{name}.{len(parts)}"
        record = _encode_leaf(item, files, sub)
        if record is None:
            if not allow_pickle:
                raise _NoCodec
            record = _encode_pickle(item, files, sub)
        parts.append(record)
        return {_TAG: "part", "index": len(parts) - 1}

    doc = _to_json(value, part)
    if parts and isinstance(doc, dict) and doc.get(_TAG) == "part":
        return parts[0]  # the value itself is a leaf: no skeleton needed
    path = files.new(f"{name}.json")
    path.write_text(json.dumps(doc), encoding="utf-8")
    if not parts:
        return {"codec": "json", "files": [path.name]}
    return {"codec": "tree", "files": [path.name], "parts": parts}


def _to_json(value: Any, part: Callable[[Any], dict[str, Any]] | None) -> Any:
    """JSON document for ``value``; non-JSON leaves go to ``part`` (or fail without it).

    Exact type checks: a subclass (``np.float64`` is a ``float``, ``IntEnum`` an ``int``)
    would come back as its base type, so it is not plain JSON.
    """
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        return [_to_json(item, part) for item in value]
    if kind is tuple:
        return {_TAG: "tuple", "items": [_to_json(item, part) for item in value]}
    if kind is dict:
        if part is not None and _is_tensor_dict(value):
            return part(value)
        if all(type(key) is str for key in value):
            items = {key: _to_json(item, part) for key, item in value.items()}
            return {_TAG: "dict", "items": items} if _TAG in value else items
        pairs = [[_to_json(key, None), _to_json(item, part)] for key, item in value.items()]
        return {_TAG: "pairs", "items": pairs}
    if kind is bytes:
        return {_TAG: "bytes", "hex": value.hex()}
    if isinstance(value, Path):
        return {_TAG: "path", "path": str(value)}
    scalar = _numpy_scalar(value)
    if scalar is not None:
        return scalar
    if part is None:
        raise _NoCodec
    return part(value)


def _numpy_scalar(value: Any) -> dict[str, Any] | None:
    np = sys.modules.get("numpy")
    if np is None or not isinstance(value, np.generic):
        return None
    dtype = value.dtype
    if dtype.hasobject or dtype.names is not None:
        return None
    doc: dict[str, Any] = {_TAG: "numpy", "dtype": dtype.str}
    if dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize <= 8):
        doc["value"] = value.item()
    elif dtype.kind == "c" and dtype.itemsize <= 16:
        doc["value"] = [float(value.real), float(value.imag)]
    else:  # strings, bytes, datetimes, long double: exact bytes
        doc["hex"] = value.tobytes().hex()
    return doc


def _is_tensor_dict(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return (
        torch is not None
        and type(value) is dict
        and len(value) > 0
        and all(type(key) is str and type(item) is torch.Tensor for key, item in value.items())
    )


def _encode_leaf(value: Any, files: _Files, name: str) -> dict[str, Any] | None:
    """Record for a value with a file codec of its own; None if it has none."""
    start = len(files.written)
    try:
        return _encode_leaf_unsafe(value, files, name)
    except _NoCodec:
        files.remove_from(start)
        return None


def _encode_leaf_unsafe(value: Any, files: _Files, name: str) -> dict[str, Any] | None:
    np = sys.modules.get("numpy")
    if np is not None and type(value) in (np.ndarray, np.memmap):
        return _encode_ndarray(value, files, name)
    torch = sys.modules.get("torch")
    if torch is not None and type(value) is torch.Tensor:
        return _encode_tensors({"tensor": value}, files, name, single=True)
    if _is_tensor_dict(value):
        return _encode_tensors(value, files, name, single=False)
    pd = sys.modules.get("pandas")
    if pd is not None and type(value) is pd.DataFrame:
        return _encode_frame(value, files, name)
    if pd is not None and type(value) is pd.Series:
        return _encode_series(value, files, name)
    return None


def _encode_ndarray(array: Any, files: _Files, name: str) -> dict[str, Any]:
    import numpy as np

    if array.dtype.hasobject:
        raise _NoCodec
    path = files.new(f"{name}.npy")
    with open(path, "wb") as f:
        np.save(f, np.asarray(array), allow_pickle=False)
    return {"codec": "npy", "files": [path.name]}


def _encode_tensors(
    tensors: dict[str, Any], files: _Files, name: str, *, single: bool
) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    prepared: dict[str, Any] = {}
    storages: set[int] = set()
    try:
        for key, tensor in tensors.items():
            flat = tensor.detach().to("cpu").contiguous()
            storage = flat.untyped_storage().data_ptr()
            if storage in storages:  # safetensors refuses tensors that share memory
                flat = flat.clone()
            storages.add(flat.untyped_storage().data_ptr())
            prepared[key] = flat
        path = files.new(f"{name}.safetensors")
        save_file(prepared, str(path))
    except (RuntimeError, ValueError, TypeError, SafetensorError) as error:
        raise _NoCodec from error
    return {
        "codec": "safetensors",
        "files": [path.name],
        "keys": list(tensors),
        "single": single,
        "requires_grad": [key for key, tensor in tensors.items() if tensor.requires_grad],
    }


def _encode_frame(frame: Any, files: _Files, name: str, kind: str = "frame") -> dict[str, Any]:
    import pandas as pd

    record: dict[str, Any] = {"codec": "parquet", "files": [], "kind": kind}
    frame = frame.copy(deep=False)
    columns = frame.columns
    plain = (
        not isinstance(columns, pd.MultiIndex)
        and all(type(label) is str for label in columns)
        and columns.is_unique
        and (columns.name is None or type(columns.name) is str)
    )
    if not plain and not isinstance(columns, pd.MultiIndex):
        # parquet needs unique string names: store positions, keep the labels in the record
        if isinstance(columns, pd.RangeIndex):
            record["columns"] = {"range": [columns.start, columns.stop, columns.step]}
        else:
            record["columns"] = {"labels": _to_json(list(columns), None)}
            record["columns"]["dtype"] = str(columns.dtype)
        record["columns"]["name"] = _to_json(columns.name, None)
        frame.columns = [f"c{i}" for i in range(len(columns))]
    names = list(frame.index.names)
    if any(label is not None and type(label) is not str for label in names):
        record["index_names"] = _to_json(names, None)
        frame.index = frame.index.set_names([None] * len(names))
    path = files.new(f"{name}.parquet")
    try:
        frame.to_parquet(path, engine="pyarrow")
    except (ValueError, TypeError, NotImplementedError) as error:
        raise _NoCodec from error
    record["files"] = [path.name]
    return record


def _encode_series(series: Any, files: _Files, name: str) -> dict[str, Any]:
    label = _to_json(series.name, None)
    record = _encode_frame(series.to_frame(name=_SERIES_COLUMN), files, name, kind="series")
    record["name"] = label
    return record


def _encode_pickle(value: Any, files: _Files, name: str) -> dict[str, Any]:
    path = files.new(f"{name}.pkl")
    try:
        with open(path, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        raise _NoCodec from error
    return {"codec": PICKLE, "files": [path.name]}


# --- decoding -----------------------------------------------------------------------------


def _decode(record: dict[str, Any], directory: Path) -> Any:
    codec = record.get("codec")
    if codec == "json":
        return _from_json(_read_json(record, directory), [])
    if codec == "tree":
        parts = [_decode(part, directory) for part in record["parts"]]
        return _from_json(_read_json(record, directory), parts)
    if codec == "npy":
        import numpy as np

        return np.load(_file(record, directory), allow_pickle=False)
    if codec == "safetensors":
        return _decode_tensors(record, directory)
    if codec == "parquet":
        return _decode_frame(record, directory)
    if codec == PICKLE:
        with open(_file(record, directory), "rb") as f:
            return pickle.load(f)
    raise CodecError(f"unknown codec {codec!r}")


def _file(record: dict[str, Any], directory: Path) -> Path:
    """The record's single file, refusing names that could point outside ``directory``."""
    (name,) = record["files"]
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise CodecError(f"unsafe file name in record: {name!r}")
    return directory / name


def _read_json(record: dict[str, Any], directory: Path) -> Any:
    return json.loads(_file(record, directory).read_text(encoding="utf-8"))


def _from_json(doc: Any, parts: list[Any]) -> Any:
    if isinstance(doc, list):
        return [_from_json(item, parts) for item in doc]
    if not isinstance(doc, dict):
        return doc
    tag = doc.get(_TAG)
    if tag is None:
        return {key: _from_json(item, parts) for key, item in doc.items()}
    if tag == "dict":
        return {key: _from_json(item, parts) for key, item in doc["items"].items()}
    if tag == "tuple":
        return tuple(_from_json(item, parts) for item in doc["items"])
    if tag == "pairs":
        return {_from_json(key, parts): _from_json(item, parts) for key, item in doc["items"]}
    if tag == "part":
        return parts[doc["index"]]
    if tag == "bytes":
        return bytes.fromhex(doc["hex"])
    if tag == "path":
        return Path(doc["path"])
    if tag == "numpy":
        return _numpy_from_json(doc)
    raise CodecError(f"unknown JSON tag {tag!r}")


def _numpy_from_json(doc: dict[str, Any]) -> Any:
    import numpy as np

    dtype = np.dtype(doc["dtype"])
    if dtype.hasobject:
        raise CodecError("object dtype in a numpy scalar record")
    if "hex" in doc:
        return np.frombuffer(bytes.fromhex(doc["hex"]), dtype=dtype)[0]
    if dtype.kind == "c":
        return dtype.type(complex(*doc["value"]))
    return dtype.type(doc["value"])


def _decode_tensors(record: dict[str, Any], directory: Path) -> Any:
    from safetensors.torch import load_file

    loaded = load_file(str(_file(record, directory)), device="cpu")
    tensors = {key: loaded[key] for key in record["keys"]}
    for key in record.get("requires_grad", []):
        tensors[key].requires_grad_(True)
    return tensors["tensor"] if record["single"] else tensors


def _decode_frame(record: dict[str, Any], directory: Path) -> Any:
    import pandas as pd

    frame = pd.read_parquet(_file(record, directory), engine="pyarrow")
    columns = record.get("columns")
    if columns is not None:
        name = _from_json(columns["name"], [])
        if "range" in columns:
            frame.columns = pd.RangeIndex(*columns["range"], name=name)
        else:
            labels = _from_json(columns["labels"], [])
            frame.columns = pd.Index(labels, dtype=columns["dtype"], name=name)
    if "index_names" in record:
        frame.index = frame.index.set_names(_from_json(record["index_names"], []))
    if record.get("kind") == "series":
        series = frame[_SERIES_COLUMN]
        series.name = _from_json(record["name"], [])
        return series
    return frame
