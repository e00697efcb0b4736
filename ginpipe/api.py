"""ginpipe from Python: a notebook, a script, a service.

    import ginpipe
    run = ginpipe.run(["base", "models/resnet"], mods=["LR=0.01"], root="experiments")
    run.dir, run.status, run.metrics
    cfg = ginpipe.compose(["base", "models/resnet"], mods=["LR=0.01"])

Each call is re-entrant: any number of runs in one process, each in its own directory.
Afterwards the process is as it was: its environment variables, working directory,
signal handlers and loguru sinks, and gin's bindings are cleared for the next compose.
Errors raise the exception classes the CLI maps to exit codes (``ConfigError`` -> 2, ...).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gin

from ginpipe.runs.log import short_console_lines
from ginpipe.runs.runner import RunRequest, execute_run, prepare


def compose(configs: Sequence[str | Path] | str | Path, mods: Sequence[str] | str = ()) -> str:
    """Validate configs as ``ginpipe config`` does; the composed bindings as gin text."""
    with _process_state_kept():
        prepared = prepare(RunRequest(files=_texts(configs), mods=_texts(mods)))
        return prepared.composition.bindings


def _texts(values: Sequence[str | Path] | str | Path) -> list[str]:
    """A list of configs or mods; one given alone (``"base"``, ``"LR=0.1"``) is a list of
    one, never iterated letter by letter."""
    if isinstance(values, (str, Path)):
        return [str(values)]
    return [str(value) for value in values]


def run(
    configs: Sequence[str | Path] | str | Path,
    mods: Sequence[str] | str = (),
    *,
    root: str | Path = "experiments",
    name: str | None = None,
    project: str | None = None,
    group: str | None = None,
    use_cache: bool = True,
    rerun: Sequence[str] | str = (),
    attached: Sequence[Any] = (),
) -> Any:
    """Run a pipeline in this process, as ``ginpipe run`` does; returns the finished run
    (``ginpipe.load_run`` of its directory: ``.dir``, ``.status``, ``.metrics``, ...).

    An interrupted run (Ctrl-C) comes back with ``status == "interrupted"``: continue it with
    ``ginpipe.resume(run.dir)``. ``group`` puts the run in a folder of runs inside the
    project (``ROOT/PROJECT/GROUP/NAME``, as a sweep's trials are). ``attached``: objects
    the run's tasks may find in their ``state.run.attached`` (a sweep hands its trial to the
    pruning callback this way, ginpipe/sweep/pruning.py).
    """
    files, mod_list = _texts(configs), _texts(mods)
    request = RunRequest(
        files=files,
        mods=mod_list,
        name=name,
        project=project,
        group=group,
        root=Path(root),
        use_cache=use_cache,
        rerun=_texts(rerun),
        argv=["ginpipe.run", *files, *(f"--mod={m}" for m in mod_list)],
        attached=tuple(attached),
    )
    return _execute(request)


def resume(
    run_dir: str | Path, mods: Sequence[str] | str = (), *, attached: Sequence[Any] = ()
) -> Any:
    """Continue a run in its own directory, as ``ginpipe resume`` does (``attached``: as
    for ``run``)."""
    mod_list = _texts(mods)
    request = RunRequest(
        mods=mod_list,
        resume=Path(run_dir),
        argv=["ginpipe.resume", str(run_dir), *(f"--mod={m}" for m in mod_list)],
        attached=tuple(attached),
    )
    return _execute(request)


def _execute(request: RunRequest) -> Any:
    from ginpipe.inference.runview import load_run

    with _process_state_kept():
        outcome = execute_run(request)
    return load_run(outcome.run_dir)


@contextmanager
def _process_state_kept() -> Iterator[None]:
    """Whatever a run changes in the process (the run directory handed down to DDP ranks
    through the environment, gin's bindings, the working directory) is put back."""
    environment = dict(os.environ)
    cwd = os.getcwd()
    try:
        with short_console_lines():
            yield
    finally:
        gin.clear_config()
        for name in set(os.environ) - set(environment):
            del os.environ[name]
        for name, value in environment.items():
            if os.environ.get(name) != value:
                os.environ[name] = value
        if os.getcwd() != cwd:
            os.chdir(cwd)
