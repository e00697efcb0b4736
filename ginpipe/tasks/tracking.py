"""Track runs in MLflow: one MLflow run per ginpipe run, whatever its tasks are.

``configs/loggers/mlflow.gin`` lists ``@mlflow_logger()`` among the run's observers
(``run.observers``, ginpipe/core/events.py), so a run that never trains (scikit-learn, a
user's own tasks) is tracked too, and fit's Lightning logger
(``ginpipe/tasks/lightning/mlflow_logger.py``) adds the live training curves to the same
MLflow run. Every MLflow call happens in a process of its own
(``ginpipe/tasks/tracking_sidecar.py``, running ``open_run`` and ``close_run`` below). When
the run starts, the MLflow run is created (or, for a resumed run, continued: its id is kept in
``RUN/mlflow.json``) with every resolved binding as a param and tags naming the run directory,
the commit and ginpipe's version. When the run ends, it gets the final metrics, the training
log if fit was read from the cache, the run's files, the model as a pyfunc model
(``ginpipe/tasks/tracking_pyfunc.py``) and its status.

Where: ``mlflow_logger.tracking_uri``, else ``MLFLOW_TRACKING_URI``, else a SQLite database
``ROOT/PROJECT/mlflow.db`` (artifacts in ``ROOT/PROJECT/mlartifacts``), which
``mlflow ui --backend-store-uri sqlite:///...`` opens; the run ends by printing that command.
A trial of a sweep is a child of one MLflow run per sweep.

Tracking never fails the run (as an observer's failure never does, ginpipe/core/events.py):
a tracking server that cannot be reached costs the record, with a warning, not the training.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gin
from loguru import logger

import ginpipe
from ginpipe import requires
from ginpipe.tasks.engine import TMP_PREFIX, atomic_write_json
from ginpipe.tasks.tracking_files import (
    BUNDLE_DIR,
    RunPlace,
    artifact_paths,
    final_metrics,
    has_bundle,
    place_of,
    read_record,
    resolved_bindings,
    run_tags,
    training_history,
)
from ginpipe.tasks.tracking_sidecar import Helpers, Sidecar

# In the run directory (and a sweep's folder, for its parent run): which MLflow run it is.
TRACKING_FILE = "mlflow.json"
SWEEP_LOCK = ".mlflow.lock"
DEFAULT_DATABASE = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"
MODEL_ARTIFACT = "model"
# MLflow's limits (mlflow.utils.validation): a param value's length, entries per log_batch.
MAX_PARAM_VALUE = 6000
MAX_PARAM_KEY = 250
BATCH = 100
TRUNCATED = "..."
# Bindings a resume changed, as they are now (MLflow's params keep their first values).
CHANGED_TAG = "ginpipe.changed_on_resume"
# A ginpipe run's status -> the MLflow run's.
RUN_STATUS = {
    "completed": "FINISHED",
    "failed": "FAILED",
    "interrupted": "KILLED",
    "stopped": "KILLED",  # its process died
}
# What MLflow said while tracking the run (the sidecar's stderr), in the run directory.
SIDECAR_LOG = "mlflow.log"


@dataclass(frozen=True)
class TrackedRun:
    """An MLflow run a ginpipe run logs to."""

    tracking_uri: str
    experiment_id: str
    run_id: str


def default_tracking_uri(place: RunPlace) -> str:
    return f"sqlite:///{place.project_dir / DEFAULT_DATABASE}"


def ui_command(tracking_uri: str) -> str:
    """How to look at the runs: the MLflow UI on a database, or the server's address."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri}"
    return f"mlflow ui --backend-store-uri {tracking_uri}"


class MlflowTracker:
    """The observer ``mlflow_logger()`` returns; see the module docstring. All MLflow work
    happens in a process of its own (``ginpipe/tasks/tracking_sidecar.py``), taken from the
    run's ``helpers`` (which the runner sets, ``ginpipe/runs/runner.py``) or started when the
    run starts; the run waits for it only at its end. fit's Lightning logger finds the tracker
    among the run's attached objects (``RunContext.attached``) and asks it for ``sidecar_of``
    its run directory."""

    def __init__(self, tracking_uri: str | None, experiment_name: str | None, log_model: bool):
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.log_model = log_model
        self.place: RunPlace | None = None
        self.sidecar: Sidecar | None = None
        self.uri = ""
        self.helpers: Helpers | None = None  # the run's prestarted processes

    def sidecar_of(self, run_dir: Path) -> Sidecar | None:
        """The process tracking ``run_dir`` now, if this tracker tracks that directory."""
        if self.place is None or self.place.dir != Path(run_dir).absolute():
            return None
        return self.sidecar

    def on_run_start(self, run: dict[str, Any]) -> None:
        place = self.place = place_of(Path(run["dir"]))
        self.uri = (
            self.tracking_uri
            or os.environ.get("MLFLOW_TRACKING_URI")
            or default_tracking_uri(place)
        )
        self.sidecar = Sidecar(place.dir / SIDECAR_LOG, self.helpers)
        experiment = self.experiment_name or place.project
        message = {"op": "open", "tracking_uri": self.uri, "experiment": experiment}
        self.sidecar.send({**message, "run_dir": str(place.dir)})

    def on_run_end(self, outcome: dict[str, Any]) -> None:
        if self.sidecar is None or self.place is None:
            return
        sidecar, place = self.sidecar, self.place
        self.sidecar = None
        plain = {k: v for k, v in outcome.items() if k in ("status", "metrics", "exit_code")}
        answers = sidecar.finish({"op": "close", "outcome": plain, "log_model": self.log_model})
        errors = [str(a["error"]) for a in answers if "error" in a]
        closed = [a["closed"] for a in answers if "closed" in a]
        if errors or not closed:
            reason = "; ".join(errors) or f"see {place.dir / SIDECAR_LOG}"
            logger.warning(f"MLflow: the run is not tracked: {reason}")
            return
        logger.info(
            f"tracked in MLflow, run {place.name} ({closed[0]['run_id']}); view it with: "
            f"{ui_command(self.uri)}"
        )


@gin.configurable
def mlflow_logger(
    tracking_uri: str | None = None, experiment_name: str | None = None, log_model: bool = True
) -> MlflowTracker:
    """Track the run in MLflow (an observer: ``run.observers += [@mlflow_logger()]``).

    Args:
        tracking_uri: an MLflow tracking URI (``http://host:5000``, ``sqlite:///path.db``);
            None: ``MLFLOW_TRACKING_URI``, else ``sqlite:///ROOT/PROJECT/mlflow.db``.
        experiment_name: None: the project's name.
        log_model: also log the model bundle as an MLflow pyfunc model.
    """
    return MlflowTracker(tracking_uri, experiment_name, log_model)


requires(mlflow_logger, "mlflow")


# --- opening -------------------------------------------------------------------------------


def open_run(uri: str, experiment_name: str, place: RunPlace) -> TrackedRun:
    """The MLflow run of ``place``: the one ``mlflow.json`` names if it still exists there
    (a resumed run), else a new one; then its params and tags as the run is now."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    tracked = _saved(place.dir, uri)
    if tracked is not None:
        try:
            client.update_run(tracked.run_id, status="RUNNING")
        except MlflowException:
            tracked = None  # deleted in MLflow: start a new record
    record = read_record(place.dir)
    tags = run_tags(place, record)
    if tracked is None:
        experiment_id = _experiment(client, experiment_name, uri)
        if place.sweep is not None:
            parent = _sweep_parent(client, uri, experiment_id, place.sweep)
            tags["mlflow.parentRunId"] = parent.run_id
        run = client.create_run(experiment_id, run_name=place.name, tags=tags)
        tracked = TrackedRun(uri, experiment_id, run.info.run_id)
        atomic_write_json(place.dir / TRACKING_FILE, vars(tracked))
    else:
        _set_tags(client, tracked.run_id, tags)
    client.set_tag(tracked.run_id, "ginpipe.status", "running")
    _log_params(client, tracked.run_id, resolved_bindings(place.dir))
    return tracked


def _saved(directory: Path, uri: str) -> TrackedRun | None:
    """The MLflow run recorded in ``directory`` for this tracking URI."""
    import json

    try:
        saved = json.loads((directory / TRACKING_FILE).read_text())
        tracked = TrackedRun(
            str(saved["tracking_uri"]), str(saved["experiment_id"]), str(saved["run_id"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return tracked if tracked.tracking_uri == uri else None


def _experiment(client: Any, name: str, uri: str) -> str:
    """The experiment's id, created if needed (its artifacts: ``artifact_location``)."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None and found.lifecycle_stage != "deleted":
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name, artifact_location=artifact_location(uri)))
    except MlflowException:  # created meanwhile by another trial
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside its SQLite database (for the
    default one, inside the root), not in an ``mlruns`` folder of whatever the current
    directory is, MLflow's default for a database; a server decides for itself."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///").partition("?")[0])
    return (database.absolute().parent / DEFAULT_ARTIFACTS).as_uri()


def _sweep_parent(client: Any, uri: str, experiment_id: str, sweep: Path) -> TrackedRun:
    """The sweep's own MLflow run, created by its first trial (trials may run at once: one
    ``flock`` around it)."""
    with _locked(sweep / SWEEP_LOCK):
        tracked = _saved(sweep, uri)
        if tracked is not None:
            return tracked
        tags = {
            "ginpipe.run_dir": str(sweep),
            "ginpipe.sweep": sweep.name,
            "ginpipe.version": ginpipe.__version__,
        }
        run = client.create_run(experiment_id, run_name=sweep.name, tags=tags)
        tracked = TrackedRun(uri, experiment_id, run.info.run_id)
        atomic_write_json(sweep / TRACKING_FILE, vars(tracked))
        return tracked


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _set_tags(client: Any, run_id: str, tags: dict[str, str]) -> None:
    from mlflow.entities import RunTag

    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])


def param_value(value: str) -> str:
    """A binding's text as MLflow keeps it: at most ``MAX_PARAM_VALUE`` characters, a cut
    one ending in ``...``."""
    if len(value) <= MAX_PARAM_VALUE:
        return value
    return value[: MAX_PARAM_VALUE - len(TRUNCATED)] + TRUNCATED


def _log_params(client: Any, run_id: str, bindings: dict[str, str]) -> None:
    """Every binding as a param. MLflow never changes a logged param: a resumed run whose
    ``--mod`` changed one keeps the first value, and a warning names it."""
    from mlflow.entities import Param

    logged = client.get_run(run_id).data.params
    params = {key[:MAX_PARAM_KEY]: param_value(value) for key, value in bindings.items()}
    changed = sorted(k for k, v in params.items() if k in logged and logged[k] != v)
    if changed:
        logger.warning(
            "MLflow keeps the first value of a param; changed on resume (tag "
            f"{CHANGED_TAG}), not updated: {', '.join(changed)}"
        )
        text = "; ".join(f"{k}={params[k]}" for k in changed)
        client.set_tag(run_id, CHANGED_TAG, param_value(text))
    new = [Param(k, v) for k, v in params.items() if k not in logged]
    for start in range(0, len(new), BATCH):
        client.log_batch(run_id, params=new[start : start + BATCH])


# --- closing -------------------------------------------------------------------------------


def close_run(
    tracked: TrackedRun, place: RunPlace, outcome: dict[str, Any], log_model: bool
) -> None:
    """Final metrics, the training log if it is not there yet, files, model, status."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracked.tracking_uri)
    history = training_history(place.dir)
    last_step = max((step for step, _ in history), default=0)
    _log_history(client, tracked.run_id, history)
    _log_metrics(client, tracked.run_id, final_metrics(place.dir, outcome), last_step)
    for path, folder in artifact_paths(place.dir):
        client.log_artifact(tracked.run_id, str(path), folder or None)
    status = str(outcome.get("status", "failed"))
    if log_model and status == "completed" and has_bundle(place.dir):
        log_pyfunc_model(client, tracked.run_id, place.dir)
    client.set_tag(tracked.run_id, "ginpipe.status", status)
    client.set_terminated(tracked.run_id, RUN_STATUS.get(status, "FAILED"))
    if place.sweep is not None:
        _report_to_parent(client, tracked, place, outcome)


def _log_metrics(client: Any, run_id: str, metrics: dict[str, float], step: int) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    entries = [Metric(key, value, now, step) for key, value in metrics.items()]
    for start in range(0, len(entries), BATCH * 10):
        client.log_batch(run_id, metrics=entries[start : start + BATCH * 10])


def _log_history(client: Any, run_id: str, history: list[tuple[int, dict[str, float]]]) -> None:
    """The training log's metrics that the MLflow run lacks: all of them when fit was read
    from the cache (its Lightning logger never ran), none when it trained in this run."""
    from mlflow.entities import Metric

    logged = client.get_run(run_id).data.metrics  # one query: the keys it has
    missing = {key for _, values in history for key in values} - set(logged)
    now = int(time.time() * 1000)
    entries = [
        Metric(key, value, now, step)
        for step, values in history
        for key, value in values.items()
        if key in missing
    ]
    for start in range(0, len(entries), BATCH * 10):
        client.log_batch(run_id, metrics=entries[start : start + BATCH * 10])


def _report_to_parent(
    client: Any, tracked: TrackedRun, place: RunPlace, outcome: dict[str, Any]
) -> None:
    """The sweep's run: each finished trial's main metric at step = trial number, and its
    status as of the last trial that ended."""
    parent = _saved(place.sweep, tracked.tracking_uri) if place.sweep else None
    if parent is None:
        return
    main = str(read_record(place.dir).get("main_metric") or "")
    value = (outcome.get("metrics") or {}).get(main)
    number = "".join(c for c in place.name if c.isdigit())
    if isinstance(value, (int, float)) and number:
        _log_metrics(client, parent.run_id, {main: float(value)}, int(number))
    client.set_terminated(parent.run_id, "FINISHED")


def log_pyfunc_model(client: Any, run_id: str, run_dir: Path) -> None:
    """The run's model bundle as an MLflow pyfunc model at ``runs:/<id>/model``:
    ``mlflow.pyfunc.load_model(...).predict(df)`` gives what ``ginpipe predict`` gives. The
    flavor loads it with ``ginpipe.tasks.tracking_pyfunc`` (ginpipe installed), from the
    bundle's own files: nothing is pickled."""
    import mlflow.pyfunc

    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=run_dir) as tmp:
        staged = Path(tmp) / "run"
        staged.mkdir()
        for name in ("config.gin", "run.json"):
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, staged / name)
        shutil.copytree(run_dir / BUNDLE_DIR, staged / BUNDLE_DIR)
        saved = Path(tmp) / MODEL_ARTIFACT
        mlflow.pyfunc.save_model(
            path=str(saved),
            loader_module="ginpipe.tasks.tracking_pyfunc",
            data_path=str(staged),
            pip_requirements=[f"ginpipe-ml=={ginpipe.__version__}"],
        )
        client.log_artifacts(run_id, str(saved), MODEL_ARTIFACT)
