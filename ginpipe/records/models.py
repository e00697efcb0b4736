"""Which model of a run: a run of nested pipelines (``configs/compare.gin``) keeps one model
per branch, in ``RUN/<name>/model``; ``predict RUN --model resnet`` picks one."""

from __future__ import annotations

from pathlib import Path

from ginpipe.base.errors import ConfigError
from ginpipe.base.suggest import did_you_mean

MODEL_JSON = "model/model.json"


def branch_models(run_dir: Path) -> list[str]:
    """Names of the nested pipelines of a run that saved a model, sorted."""
    found = run_dir.glob(f"**/{MODEL_JSON}")
    return sorted(p.parent.parent.relative_to(run_dir).as_posix() for p in found if p.is_file())


def model_dir(run_dir: Path, name: str | None, split: str | None = None) -> Path:
    """The folder holding the model to use: the run itself, or its branch ``name`` (whose
    ``--split`` is rebuilt from the run's config: ``ginpipe/inference/run_split.py``)."""
    branches = [b for b in branch_models(run_dir) if b != "."]
    if name is None:
        if branches and not (run_dir / MODEL_JSON).is_file():
            raise ConfigError(
                f"{run_dir} holds several models ({', '.join(branches)}): choose one with "
                f"--model NAME"
            )
        return run_dir
    if name not in branches:
        have = f"its models: {', '.join(branches)}" if branches else "it has one model"
        raise ConfigError(
            f"--model {name}: {run_dir} has no model of that name{did_you_mean(name, branches)}; "
            f"{have}"
        )
    return run_dir / name
