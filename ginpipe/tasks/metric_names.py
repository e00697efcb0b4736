"""Names of the metrics the standard report writes, known without importing torch.

``write_classification_report`` (ginpipe.tasks.report) returns these keys; the evaluating
tasks declare them (``@task(metrics=...)``) so ``run.main_metric`` is checked up front.
"""

from __future__ import annotations

CLASSIFICATION_METRICS = ("accuracy", "f1_macro", "precision/*", "recall/*")
