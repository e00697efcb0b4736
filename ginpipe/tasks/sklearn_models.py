"""Classical baselines: ``fit_sklearn`` and ``evaluate_sklearn``.

They train on the same train split and report through the same function as the network
tasks, so a ResNet and a logistic regression compare on identical examples and metrics.
Images are flattened to one feature vector per example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin, clone

from ginpipe import ConfigError, DataError, TaskView, task
from ginpipe.tasks.bundle import write_estimator_bundle
from ginpipe.tasks.metric_names import CLASSIFICATION_METRICS

NO_ESTIMATOR = (
    "no estimator chosen: add a model config, e.g. configs/models/logreg.gin, "
    "or bind fit_sklearn.estimator = @LogisticRegression()"
)


# pinned: a run directory's estimator holds only for the data it was fitted on
@task(
    reads=("data", "seed"),
    writes=("estimator",),
    pinned=True,
    hints={"estimator": NO_ESTIMATOR},
)
def fit_sklearn(state: TaskView, *, estimator: ClassifierMixin | None = None) -> dict[str, Any]:
    """Fit a fresh copy of ``estimator`` (e.g. ``@LogisticRegression()``) on the train split.

    An estimator with an unset ``random_state`` gets the run's seed, so reruns agree.
    """
    if estimator is None:
        raise ConfigError(NO_ESTIMATOR)
    model = clone(estimator)
    if model.get_params().get("random_state", 0) is None:
        model.set_params(random_state=state["seed"])
    features, labels = flat_split(state["data"], "train")
    model.fit(features, labels)
    return {"estimator": model}


@task(
    reads=("estimator", "data"),
    writes=("metrics",),
    cache=False,
    main_only=True,
    metrics=CLASSIFICATION_METRICS,
)
def evaluate_sklearn(state: TaskView) -> dict[str, Any]:
    """Score the estimator on the test split, write the shared classification report and
    save the estimator with its preprocessing in ``model/``."""
    # The report computes its metrics with torchmetrics: torch is imported when this runs,
    # not when a config that names this task is composed.
    from ginpipe.tasks.report import (
        BackgroundPlots,
        split_identifiers,
        write_classification_report,
    )

    data, estimator, run_dir = state["data"], state["estimator"], Path(state.run.dir)
    features, labels = flat_split(data, "test")
    probabilities = class_probabilities(estimator, features, len(data["classes"]))
    identifiers = split_identifiers(data, "test")
    with BackgroundPlots() as plots:  # the confusion matrix is drawn while the rest is saved
        metrics = write_classification_report(
            run_dir, labels, probabilities, data["classes"], identifiers, plots
        )
        write_estimator_bundle(run_dir, estimator, data)  # model/: the run is self-contained
    return {"metrics": metrics}


def flat_split(data: dict[str, Any], split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of one split with one row per example; image files are decoded first."""
    if data["kind"] == "arrays":
        features, labels = data[split]["X"], data[split]["y"]
    else:
        from ginpipe.tasks.data.datasets import make_dataset  # torch: only image files need it

        dataset = make_dataset(data, split)
        items = [dataset[i] for i in range(len(dataset))]
        if not items:
            raise DataError(f"the {split} split is empty")
        features = np.stack([x.numpy() for x, _ in items])
        labels = np.array([int(y) for _, y in items], dtype=np.int64)
    return np.asarray(features, dtype=np.float32).reshape(len(labels), -1), np.asarray(labels)


def class_probabilities(
    estimator: ClassifierMixin, features: np.ndarray, num_classes: int
) -> np.ndarray:
    """``(n, num_classes)`` probabilities; one-hot predictions for estimators without
    ``predict_proba`` (e.g. ``SVC(probability=False)``). Columns follow the class index
    even when the train split lacked a class."""
    probabilities = np.zeros((len(features), num_classes))
    known = np.asarray(estimator.classes_, dtype=np.int64)
    if hasattr(estimator, "predict_proba"):
        probabilities[:, known] = estimator.predict_proba(features)
    else:
        probabilities[np.arange(len(features)), estimator.predict(features)] = 1.0
    return probabilities
