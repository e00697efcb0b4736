"""The evaluate task and the shared report: files written, numbers equal to scikit-learn's."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import metrics as sk

from ginpipe.core.state import RunContext, State, TaskView
from ginpipe.tasks.evaluate import evaluate
from ginpipe.tasks.models import factory_name, model_record
from ginpipe.tasks.models.mlp import MLP
from ginpipe.tasks.report import classification_metrics

CLASSES = ["cat", "dog", "owl"]
MODEL_KWARGS = {"num_classes": 3, "input_shape": [4], "hidden_sizes": [8]}


def tabular_data(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)

    def split(n: int) -> dict:
        return {
            "X": rng.normal(size=(n, 4)).astype(np.float32),
            "y": np.resize(np.arange(3), n).astype(np.int64),
        }

    test = split(30)
    test["row"] = np.arange(100, 130)
    return {
        "kind": "arrays",
        "train": split(12),
        "val": split(6),
        "test": test,
        "classes": CLASSES,
        "num_classes": 3,
        "input_shape": [4],
        "preprocessing": {"raw_shape": [4], "scale": 1.0, "transforms": [], "feature_names": None},
    }


def untrained_model_record() -> dict:
    torch.manual_seed(0)
    network = MLP(**MODEL_KWARGS)
    return model_record(factory_name(MLP), MODEL_KWARGS, network.state_dict(), None, 0)


def run_evaluate(run_dir) -> dict:
    state = State(run=RunContext(dir=run_dir, name="t", project="p"))
    state.set("model", untrained_model_record())
    state.set("data", tabular_data())
    return evaluate(TaskView(state, "evaluate", ("model", "data")))["metrics"]


def test_evaluate_writes_metrics_predictions_and_plots(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "metrics.csv").write_text(
        "epoch,step,train_loss,val_loss,val_acc\n0,1,1.0,,\n0,1,,1.1,0.5\n1,3,0.8,,\n1,3,,0.9,0.6\n"
    )
    metrics = run_evaluate(tmp_path)

    assert json.loads((tmp_path / "metrics.json").read_text()) == pytest.approx(metrics)
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    assert list(predictions.columns) == [
        "row", "index", "y_true", "y_pred", "true_class", "predicted_class",
        "prob_cat", "prob_dog", "prob_owl",
    ]  # fmt: skip
    assert list(predictions["row"]) == list(range(100, 130))  # rows of the dataset
    assert len(predictions) == 30
    assert np.allclose(predictions[["prob_cat", "prob_dog", "prob_owl"]].sum(axis=1), 1.0)
    for plot in ("confusion_matrix.png", "learning_curves.png"):
        assert (tmp_path / "plots" / plot).read_bytes().startswith(b"\x89PNG")
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".tmp-")]


def test_without_a_training_log_there_is_no_learning_curve(tmp_path):
    run_evaluate(tmp_path)
    assert (tmp_path / "plots" / "confusion_matrix.png").is_file()
    assert not (tmp_path / "plots" / "learning_curves.png").exists()


def test_metrics_equal_scikit_learn_on_the_same_predictions(tmp_path):
    metrics = run_evaluate(tmp_path)
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    y_true, y_pred = predictions["y_true"], predictions["y_pred"]
    labels = [0, 1, 2]

    assert metrics["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert metrics["f1_macro"] == pytest.approx(
        sk.f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)
    )
    precision = sk.precision_score(y_true, y_pred, average=None, labels=labels, zero_division=0)
    recall = sk.recall_score(y_true, y_pred, average=None, labels=labels, zero_division=0)
    for index, name in enumerate(CLASSES):
        assert metrics[f"precision/{name}"] == pytest.approx(precision[index])
        assert metrics[f"recall/{name}"] == pytest.approx(recall[index])


def test_classification_metrics_on_known_predictions():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    metrics = classification_metrics(y_true, y_pred, CLASSES)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision/dog"] == pytest.approx(2 / 3)
    assert metrics["recall/owl"] == pytest.approx(1 / 2)
    assert all(isinstance(value, float) for value in metrics.values())


def test_evaluate_saves_a_model_that_predicts_what_the_report_says(tmp_path):
    from ginpipe.inference.inputs import Items
    from ginpipe.inference.predicting import predict_frame
    from ginpipe.inference.predictor import Predictor

    run_evaluate(tmp_path)
    bundle = tmp_path / "model"
    assert sorted(p.name for p in bundle.iterdir())[:2] == ["model.json", "preprocessing.json"]
    info = json.loads((bundle / "model.json").read_text())
    assert info["network"]["constructor"]["hidden_sizes"] == [8]
    assert info["classes"] == CLASSES and str(tmp_path) not in json.dumps(info)

    data = tabular_data()
    items = Items(identifiers=data["test"]["row"], raw=data["test"]["X"])
    got = predict_frame(Predictor(tmp_path), items)
    expected = pd.read_csv(tmp_path / "predictions.csv")
    columns = ["prob_cat", "prob_dog", "prob_owl"]
    assert list(got["predicted_class"]) == list(expected["predicted_class"])
    assert np.abs(got[columns].to_numpy() - expected[columns].to_numpy()).max() < 1e-6


def test_a_plot_that_fails_in_the_background_fails_the_report(tmp_path):
    """Plots are drawn on a worker thread; its error must surface, not vanish with it."""
    from ginpipe.tasks.report import BackgroundPlots

    drawn = []

    def broken() -> None:
        raise ValueError("no such colormap")

    with pytest.raises(ValueError, match="no such colormap"), BackgroundPlots() as plots:
        plots.submit(drawn.append, "first")
        plots.submit(broken)
    assert drawn == ["first"]
