"""Fitted feature preprocessing saved as plain data, rebuilt, applied and folded for export."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from ginpipe.base.errors import DataError
from ginpipe.core import codecs
from ginpipe.core.state import State, TaskView
from ginpipe.tasks.features import make_features
from ginpipe.tasks.preprocessing import (
    FeaturePreprocessing,
    fitted_state,
    preprocessing_spec,
    restore,
)


def raw_data(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(3.0, 2.0, size=(40, 6)).astype(np.float32)


@pytest.mark.parametrize(
    "transformer",
    [StandardScaler(), RobustScaler(), MinMaxScaler(clip=True), PCA(n_components=3, whiten=True)],
)
def test_a_restored_transformer_transforms_exactly_like_the_fitted_one(transformer) -> None:
    data = raw_data()
    fitted = transformer.fit(data)
    state = fitted_state(fitted)
    assert state is not None
    restored = restore(state)
    assert type(restored) is type(fitted)
    np.testing.assert_array_equal(restored.transform(data), fitted.transform(data))


def test_the_spec_survives_the_safe_codecs(tmp_path) -> None:
    fitted = StandardScaler().fit(raw_data())
    spec = preprocessing_spec([6], 2.0, [fitted], ["a", "b", "c", "d", "e", "f"])
    record = codecs.encode(spec, tmp_path, "pre")
    assert record is not None and not codecs.needs_pickle(record)
    back = codecs.decode(record, tmp_path)
    apply = FeaturePreprocessing.from_spec(back, [6])
    expected = fitted.transform(raw_data(1) / np.float32(2.0))
    np.testing.assert_allclose(apply(raw_data(1)), expected, rtol=1e-6)


def test_only_scikit_learn_classes_are_rebuilt() -> None:
    with pytest.raises(DataError, match="only scikit-learn classes"):
        restore({"class": "os.system", "params": {}, "attributes": {}})


def test_affine_steps_fold_into_one_matrix_and_clipping_does_not() -> None:
    data = raw_data()
    steps = [StandardScaler().fit(data / 4), PCA(n_components=4).fit(data / 4)]
    steps[1].fit(steps[0].transform(data / 4))
    apply = FeaturePreprocessing([6], 4.0, steps, [4])
    weight, bias = apply.affine()
    np.testing.assert_allclose(data @ weight + bias, apply(data), atol=1e-5)
    clipped = FeaturePreprocessing([6], 1.0, [MinMaxScaler(clip=True).fit(data)], [6])
    assert clipped.affine() is None


def test_make_features_records_the_preprocessing_and_the_rows() -> None:
    dataset = {
        "kind": "arrays",
        "X": raw_data(),
        "y": np.arange(40) % 2,
        "classes": ["a", "b"],
        "feature_names": [f"f{i}" for i in range(6)],
    }
    splits = {"train": np.arange(20), "val": np.arange(20, 30), "test": np.arange(30, 40)}
    state = State()
    state.set("dataset", dataset)
    state.set("splits", splits)
    view = TaskView(state, "make_features", ("dataset", "splits"))
    data = make_features(view, transforms=[StandardScaler()], scale=2.0)["data"]
    np.testing.assert_array_equal(data["test"]["row"], splits["test"])
    apply = FeaturePreprocessing.from_spec(data["preprocessing"], data["input_shape"])
    assert apply.feature_names == dataset["feature_names"]
    np.testing.assert_allclose(apply(raw_data()[30:]), data["test"]["X"], rtol=1e-6)
