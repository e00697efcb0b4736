"""Compare the models of one run: the branches of ``configs/compare.gin`` side by side.

Each nested pipeline (``@logreg/pipeline()``, ...) evaluates its model on the same test
split and writes ``NAME/metrics``; this task reads every one of them (``*/metrics``) and
writes the table and the plot of the report:

    comparison.csv              one row per metric, one column per model
    plots/model_comparison.png  overall metrics and recall per class, one colour per model
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ginpipe import TaskView, task
from ginpipe.tasks.engine import atomic_write_text

TABLE_FILE = "comparison.csv"
PLOT_FILE = "plots/model_comparison.png"


@task(reads=("*/metrics",), writes=("metrics",), cache=False, main_only=True)
def compare_models(state: TaskView) -> dict[str, Any]:
    """One table and one plot of every branch's test metrics; the metrics of the run are
    each model's, named ``MODEL/metric`` (``resnet/accuracy``)."""
    from ginpipe.plots.figures import save_figure
    from ginpipe.plots.models import comparison_figure

    models = {key.rsplit("/", 1)[0]: dict(state[key]) for key in state}
    run_dir = Path(state.run.dir)
    atomic_write_text(run_dir / TABLE_FILE, comparison_table(models))
    (run_dir / PLOT_FILE).parent.mkdir(exist_ok=True)
    save_figure(comparison_figure(models), run_dir / PLOT_FILE)
    return {
        "metrics": {
            f"{model}/{name}": value
            for model, metrics in models.items()
            for name, value in metrics.items()
        }
    }


def comparison_table(models: dict[str, dict[str, Any]]) -> str:
    """CSV text: ``metric`` then one column per model, a row per metric any model reports."""
    names: list[str] = []
    for metrics in models.values():
        names += [n for n in metrics if n not in names]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["metric", *models])
    for name in names:
        writer.writerow([name, *(_cell(metrics.get(name)) for metrics in models.values())])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
