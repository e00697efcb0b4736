"""The scikit-learn baseline tasks, configured as a user would, reporting like the networks."""

from __future__ import annotations

import json

import gin
import numpy as np
import pytest
from conftest import gin_parse

from ginpipe.base.errors import ConfigError
from ginpipe.core.state import RunContext, State, TaskView
from ginpipe.tasks.sklearn_models import (
    class_probabilities,
    evaluate_sklearn,
    fit_sklearn,
)


def digit_like_data(seed: int = 0) -> dict:
    """Images whose class sets the brightness of one pixel: easy for a linear model."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> dict:
        y = np.resize(np.arange(3), n)
        x = rng.normal(scale=0.1, size=(n, 1, 4, 4))
        x[np.arange(n), 0, 0, y] += 1.0
        return {"X": x.astype(np.float32), "y": y.astype(np.int64)}

    return {
        "kind": "arrays",
        "train": split(30),
        "val": split(6),
        "test": split(12),
        "classes": ["a", "b", "c"],
        "num_classes": 3,
        "input_shape": [1, 4, 4],
    }


@pytest.fixture(autouse=True)
def clean_config():
    gin.clear_config()
    yield
    gin.clear_config()


def new_state(tmp_path) -> State:
    state = State(run=RunContext(dir=tmp_path, name="t", project="p"))
    state.set("data", digit_like_data())
    state.set("seed", 0)
    return state


def run_fit_sklearn(state: State):
    return fit_sklearn(TaskView(state, "fit_sklearn", ("data", "seed")))["estimator"]


def test_logistic_regression_from_config_fits_and_reports(tmp_path):
    gin_parse("fit_sklearn.estimator = @LogisticRegression()\nLogisticRegression.max_iter = 500")
    state = new_state(tmp_path)
    state.set("estimator", run_fit_sklearn(state))
    assert state["estimator"].max_iter == 500

    metrics = evaluate_sklearn(TaskView(state, "evaluate_sklearn", ("estimator", "data")))
    metrics = metrics["metrics"]

    assert metrics["accuracy"] == 1.0
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert (tmp_path / "predictions.csv").is_file()
    assert (tmp_path / "plots" / "confusion_matrix.png").is_file()


def test_the_run_seed_fills_an_unset_random_state(tmp_path):
    gin_parse("fit_sklearn.estimator = @RandomForestClassifier()")
    gin_parse("sklearn.ensemble.RandomForestClassifier.n_estimators = 5")
    state = new_state(tmp_path)
    estimator = run_fit_sklearn(state)
    assert estimator.random_state == 0


def test_estimators_without_predict_proba_report_one_hot_probabilities(tmp_path):
    gin_parse("fit_sklearn.estimator = @SVC()")
    state = new_state(tmp_path)
    estimator = run_fit_sklearn(state)
    features = state["data"]["test"]["X"].reshape(12, -1)
    probabilities = class_probabilities(estimator, features, 3)
    assert set(np.unique(probabilities)) <= {0.0, 1.0}
    assert np.array_equal(probabilities.argmax(axis=1), estimator.predict(features))


def test_no_estimator_is_a_config_error(tmp_path):
    state = new_state(tmp_path)
    with pytest.raises(ConfigError, match="no estimator chosen"):
        run_fit_sklearn(state)
