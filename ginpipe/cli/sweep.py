"""``sweep``: a grid or an Optuna search over configs, each trial a run (``ginpipe.sweep``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ginpipe.cli.guard import guarded, setup_logging
from ginpipe.cli.options import Project, Root, Verbose, complete_configs


def sweep(
    configs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Configs applied in order, as for run; a sweep file's distributions "
            "(LR = @loguniform(1e-4, 1e-1)) are searched.",
            autocompletion=complete_configs,
        ),
    ] = None,
    mod: Annotated[
        list[str] | None,
        typer.Option(
            "--mod",
            "-m",
            help="A binding; a comma list ('LR=1e-3,1e-2') is a grid axis. Repeatable.",
        ),
    ] = None,
    trials: Annotated[
        int | None, typer.Option(help="Budget of trials (default for a grid: its size).")
    ] = None,
    jobs: Annotated[int, typer.Option(help="Trials at once (workers / array tasks).")] = 1,
    launcher: Annotated[str, typer.Option(help="local or slurm (submitit job array).")] = "local",
    resume: Annotated[
        Path | None, typer.Option(help="Continue this sweep folder toward its budget.")
    ] = None,
    sampler: Annotated[
        str | None, typer.Option(help="grid, tpe or random (default: grid for comma lists only).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sampler.")] = 0,
    pruner: Annotated[
        str, typer.Option(help="median, median:startup=2,warmup=1, percentile, hyperband, none.")
    ] = "median",
    metric: Annotated[
        str | None,
        typer.Option(
            help="Objective: a logged column such as val_loss, or a final metric of the run "
            "(default: fit.monitor, a validation metric; without fit, the main metric)."
        ),
    ] = None,
    direction: Annotated[
        str | None,
        typer.Option(help="maximize or minimize (default: fit.monitor_mode, else maximize)."),
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="Study storage URL (default: a journal file in the sweep).")
    ] = None,
    max_failure_rate: Annotated[
        float, typer.Option(help="Stop once more than this share of the budget failed.")
    ] = 0.5,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache", help="Every trial recomputes every task (the cache is not read)."
        ),
    ] = False,
    partition: Annotated[str | None, typer.Option(help="SLURM partition.")] = None,
    time_min: Annotated[int, typer.Option(help="SLURM time limit per trial, minutes.")] = 60,
    gpus_per_trial: Annotated[int, typer.Option(help="SLURM GPUs per trial.")] = 0,
    cpus_per_trial: Annotated[int | None, typer.Option(help="SLURM CPUs per trial.")] = None,
    root: Root = Path("experiments"),
    project: Project = None,
    verbose: Verbose = False,
) -> None:
    """Run a grid or an Optuna search; every trial is a run in ROOT/PROJECT/sweep-<time>."""
    setup_logging(verbose)

    def start() -> int:
        from ginpipe.sweep import require

        require("optuna", *(["submitit"] if launcher == "slurm" else []))
        from ginpipe.sweep import launch

        if resume is not None:
            if configs or mod:
                raise _usage("--resume continues a sweep as it was defined: give no configs or -m")
            found = launch.resume(resume)
            if found.launcher == "slurm":
                require("submitit")
            return launch.launch(found, wait=False)
        if not configs:
            raise _usage("no config given, e.g. ginpipe sweep base models/resnet -m LR=1e-3,1e-2")
        slurm = {
            "partition": partition,
            "time_min": time_min,
            "gpus_per_trial": gpus_per_trial,
            "cpus_per_trial": cpus_per_trial,
        }
        created = launch.create(
            configs,
            mod or [],
            trials=trials,
            jobs=jobs,
            launcher=launcher,
            sampler=sampler,
            seed=seed,
            pruner=pruner,
            metric=metric,
            direction=direction,
            storage=storage,
            max_failure_rate=max_failure_rate,
            root=root,
            project=project,
            slurm=slurm,
            argv=list(sys.argv),
            use_cache=not no_cache,
        )
        typer.echo(f"sweep directory: {created.dir}")
        return launch.launch(created, wait=False)

    raise typer.Exit(guarded(verbose, start))


def _usage(message: str) -> Exception:
    from ginpipe.base.errors import ConfigError

    return ConfigError(message)
