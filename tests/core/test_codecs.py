"""Every codec roundtrips to an equal value of the same types, and unsafe values get none."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from ginpipe.core import codecs


class Opaque:
    """Stands in for an estimator or any object without a safe format."""

    def __init__(self, value: int = 1) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]


def roundtrip(value: Any, tmp_path: Path, **kwargs: Any) -> tuple[dict, Any]:
    record = codecs.encode(value, tmp_path, "out", **kwargs)
    assert record is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(codecs.record_files(record))
    return record, codecs.decode(record, tmp_path, **kwargs)


def assert_same(a: Any, b: Any) -> None:
    """Equal and of the same types, all the way down."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b)
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b)
    elif isinstance(a, float | np.floating) and math.isnan(a):
        assert math.isnan(b)
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a == b
    else:
        assert a == b


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**70),
        1.5,
        float("nan"),
        float("inf"),
        -0.0,
        "héllo",
        [],
        {},
        [1, "a", None, [2.0, {"k": False}]],
        {"a": 1, "b": [1, 2], "nested": {"x": "y"}},
        (1, "a", (2, [3])),
        [(1, 2), ()],
        {"__ginpipe__": "tuple", "items": [1]},
        {0: "cat", 1: "dog"},
        {(1, 2): "pair"},
        b"\x00bytes",
        Path("/data/x.csv"),
        {"path": Path("rel/dir"), "t": (Path("a"),)},
    ],
    ids=repr,
)
def test_json_roundtrip(value: Any, tmp_path: Path) -> None:
    record, back = roundtrip(value, tmp_path)
    assert record["codec"] == "json"
    assert_same(value, back)


@pytest.mark.parametrize(
    "value",
    [
        np.float32(1.25),
        np.float64("nan"),
        np.float16(-2.0),
        np.int8(-3),
        np.uint64(2**64 - 1),
        np.bool_(True),
        np.complex64(1 + 2j),
        np.str_("ünïcode"),
        np.bytes_(b"raw"),
        np.datetime64("2024-01-02T03:04:05", "s"),
        np.timedelta64(5, "ms"),
        np.longdouble(1) / 3,
    ],
    ids=repr,
)
def test_numpy_scalar_roundtrip(value: Any, tmp_path: Path) -> None:
    record, back = roundtrip(value, tmp_path)
    assert record["codec"] == "json"
    assert_same(value, back)


@pytest.mark.parametrize(
    "value",
    [
        np.arange(12, dtype=np.int32).reshape(3, 4),
        np.array([1.0, np.nan, -np.inf]),
        np.array(["a", "bc", "ünï"]),
        np.array([b"x", b"yz"]),
        np.zeros((0, 3)),
        np.array(3.5),
        np.arange(20.0).reshape(4, 5)[:, ::2],
        np.asfortranarray(np.ones((2, 3))),
        np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
        np.array(["2024-01-01"], dtype="datetime64[D]"),
    ],
    ids=lambda a: f"{a.dtype}{a.shape}",
)
def test_ndarray_roundtrip(value: np.ndarray, tmp_path: Path) -> None:
    record, back = roundtrip(value, tmp_path)
    assert record["codec"] == "npy"
    assert_same(value, back)


@pytest.mark.parametrize(
    "value",
    [
        torch.arange(6.0).reshape(2, 3),
        torch.arange(6.0).reshape(2, 3).T,
        torch.zeros(0, dtype=torch.int64),
        torch.tensor(True),
        torch.ones(3, dtype=torch.bfloat16),
    ],
    ids=lambda t: f"{t.dtype}{tuple(t.shape)}",
)
def test_tensor_roundtrip(value: torch.Tensor, tmp_path: Path) -> None:
    record, back = roundtrip(value, tmp_path)
    assert record["codec"] == "safetensors"
    assert_same(value, back)


def test_tensor_keeps_requires_grad(tmp_path: Path) -> None:
    weight = torch.randn(3, requires_grad=True)
    _, back = roundtrip(weight, tmp_path)
    assert back.requires_grad and torch.equal(back, weight.detach())


def test_tensor_dict_is_one_file_even_with_shared_memory(tmp_path: Path) -> None:
    base = torch.arange(10.0)
    state = {"w": base.reshape(2, 5), "w_view": base[:5], "b": torch.zeros(2, 3).T}
    record, back = roundtrip(state, tmp_path)
    assert record["codec"] == "safetensors"
    assert len(record["files"]) == 1
    assert_same(state, back)


def test_dataframe_roundtrip(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [0.5, np.nan, np.inf],
            "s": ["a", None, "c"],
            "cat": pd.Categorical(["u", "v", "u"], ordered=True),
            "t": pd.date_range("2024-01-01", periods=3),
        }
    )
    record, back = roundtrip(frame, tmp_path)
    assert record["codec"] == "parquet"
    assert_same(frame, back)
    assert isinstance(back.index, pd.RangeIndex)


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame(np.arange(6).reshape(2, 3)),
        pd.DataFrame([[1, 2]], columns=[0, "a"]),
        pd.DataFrame([[1, 2]], columns=["a", "a"]),
        pd.DataFrame({"a": [1, 2]}, index=pd.Index([10, 20], name=0)),
        pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="key")).iloc[::-1],
        pd.DataFrame({"v": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)])),
        pd.DataFrame(),
        pd.DataFrame({"a": []}),
    ],
    ids=range(8),
)
def test_dataframe_labels_roundtrip(frame: pd.DataFrame, tmp_path: Path) -> None:
    _, back = roundtrip(frame, tmp_path)
    assert_same(frame, back)


@pytest.mark.parametrize(
    "series",
    [
        pd.Series([1.0, np.nan], name="x"),
        pd.Series(["a", "b"]),
        pd.Series([1, 2], name=3, index=pd.Index(["p", "q"], name="idx")),
        pd.Series(pd.Categorical(["a", "b", "a"])),
    ],
    ids=range(4),
)
def test_series_roundtrip(series: pd.Series, tmp_path: Path) -> None:
    record, back = roundtrip(series, tmp_path)
    assert record["codec"] == "parquet"
    assert_same(series, back)


def test_mixed_dict_roundtrip(tmp_path: Path) -> None:
    value = {
        "kind": "arrays",
        "X": np.random.default_rng(0).normal(size=(4, 2)),
        "y": np.array([0, 1, 1, 0]),
        "classes": ["neg", "pos"],
        "names": np.array(["a", "b"]),
        "meta": pd.DataFrame({"id": [1, 2]}),
        "weights": {"w": torch.ones(2), "b": torch.zeros(1)},
        "sub": {"X": np.zeros((0, 2)), "t": torch.arange(3), "pair": (1, np.int64(2))},
        "items": [np.ones(2), "plain", None],
    }
    record, back = roundtrip(value, tmp_path)
    assert record["codec"] == "tree"
    assert_same(value, back)
    safetensors = [n for n in codecs.record_files(record) if n.endswith(".safetensors")]
    assert len(safetensors) == 2  # the tensor dict is one file, the lone tensor another


def test_list_and_tuple_of_arrays(tmp_path: Path) -> None:
    value = [np.ones(3), (np.zeros(2), "tag")]
    _, back = roundtrip(value, tmp_path)
    assert_same(value, back)


@pytest.mark.parametrize(
    "value",
    [
        np.array([1, "a"], dtype=object),
        Opaque(),
        lambda x: x,
        {"X": np.ones(3), "model": Opaque()},
        [np.ones(3), pd.DataFrame({"a": [1]}), np.array([None], dtype=object)],
        pd.DataFrame({"o": [object(), 1]}),
        {1.5j},
        torch.nn.Parameter(torch.ones(2)),
        torch.zeros(3).to_sparse(),
    ],
    ids=range(9),
)
def test_no_safe_codec_leaves_no_files(value: Any, tmp_path: Path) -> None:
    assert codecs.encode(value, tmp_path, "out") is None
    assert list(tmp_path.iterdir()) == []


def test_pickle_only_with_opt_in_on_both_sides(tmp_path: Path) -> None:
    value = {"X": np.ones(3), "model": Opaque(7)}
    record = codecs.encode(value, tmp_path, "out", allow_pickle=True)
    assert record is not None and codecs.needs_pickle(record)
    kinds = sorted(part["codec"] for part in record["parts"])
    assert kinds == ["npy", "pickle"]  # only the value without a safe codec is pickled
    with pytest.raises(codecs.PickleNotAllowed):
        codecs.decode(record, tmp_path)
    assert_same(value, codecs.decode(record, tmp_path, allow_pickle=True))


def test_top_level_pickle(tmp_path: Path) -> None:
    record, back = roundtrip(Opaque(3), tmp_path, allow_pickle=True)
    assert record["codec"] == "pickle"
    assert back == Opaque(3)


def test_unpicklable_gives_none_even_with_opt_in(tmp_path: Path) -> None:
    assert codecs.encode(lambda: 0, tmp_path, "out", allow_pickle=True) is None
    assert list(tmp_path.iterdir()) == []


def test_unsafe_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        codecs.encode(1, tmp_path, "../escape")
    with pytest.raises(codecs.CodecError):
        codecs.decode({"codec": "json", "files": ["../x.json"]}, tmp_path)
    with pytest.raises(codecs.CodecError):
        codecs.decode({"codec": "mystery", "files": []}, tmp_path)


def test_existing_file_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "out.json").write_text("keep")
    with pytest.raises(FileExistsError):
        codecs.encode([1], tmp_path, "out")
    assert (tmp_path / "out.json").read_text() == "keep"


def test_import_stays_light() -> None:
    code = (
        "import sys, ginpipe.core.codecs, ginpipe.core.store; "
        "assert 'torch' not in sys.modules and 'pandas' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
