"""A task list used as one task of ``run.tasks``, under a name: a nested pipeline.

    run.tasks = [@load_sklearn, @split_dataset, @make_features,
                 @logreg/pipeline(), @forest/pipeline(), @compare_models]
    logreg/pipeline.tasks = [@fit_sklearn, @evaluate_sklearn]
    logreg/fit_sklearn.estimator = @LogisticRegression()     # bindings scoped to it
    forest/pipeline.tasks = [@fit_sklearn, @evaluate_sklearn]
    forest/fit_sklearn.estimator = @RandomForestClassifier()

The gin scope is the pipeline's name. Inside it:

* every task runs under that scope, so ``logreg/fit_sklearn.estimator`` binds only there;
* the keys its tasks write live under the name (``logreg/estimator``, ``logreg/metrics``);
  ``keys`` renames one on the way out (``logreg/pipeline.keys = {'metrics': 'lr_metrics'}``);
* a key its tasks read is its own when one of them writes it, else the key outside
  (``data``, ``seed``): shared inputs are read, never copied;
* its tasks' files go into a folder of the run named after it (``RUN/logreg/model``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gin

from ginpipe.base.errors import ConfigError
from ginpipe.core.taskdef import check_resources


@dataclass(frozen=True)
class Nested:
    """A nested pipeline as ``run.tasks`` holds it."""

    name: str
    tasks: tuple[Any, ...]
    keys: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, float] = field(default_factory=dict)


@gin.configurable("pipeline", module="ginpipe")
def pipeline(
    tasks: Sequence[Any] = (),
    name: str | None = None,
    keys: Mapping[str, str] | None = None,
    resources: Mapping[str, float] | None = None,
) -> Nested:
    """A task list run as one task under a name (the gin scope it is called in:
    ``@logreg/pipeline()``); ``keys`` renames its outputs (inner key -> state key);
    ``resources`` (``{'cpus': 1}``) is what each of its tasks needs, as ``@task(resources=)``
    says: under ``--jobs N`` such a task runs in a process of its own."""
    # Checked where the steps are made (``check``), not here: an error raised inside a gin
    # call gets gin's own line appended.
    scope = gin.current_scope_str().rsplit("/", 1)[-1]  # inside another: its own part
    return Nested(name or scope, tuple(tasks), dict(keys or {}), dict(resources or {}))


def check(nested: Nested, where: str) -> None:
    """A nested pipeline has a name (its scope) made of identifiers, and tasks."""
    if not nested.name:
        raise ConfigError(
            f"{where}: a nested pipeline needs a name: use it as @NAME/pipeline() in "
            f"run.tasks, with NAME/pipeline.tasks = [...]"
        )
    if any(not part.isidentifier() for part in nested.name.split("/")):
        raise ConfigError(f"{where}: nested pipeline name {nested.name!r}: use letters, digits, _")
    try:
        check_resources(nested.resources, f"{nested.name}/pipeline.resources")
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    if not nested.tasks:
        raise ConfigError(
            f"{where}: nested pipeline '{nested.name}' has no tasks: bind "
            f"{nested.name}/pipeline.tasks"
        )
