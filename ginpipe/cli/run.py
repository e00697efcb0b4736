"""``run``, ``resume``, ``graph``: a pipeline run (or drawn) from configs or a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ginpipe.cli.guard import guarded, setup_logging
from ginpipe.cli.options import Configs, Mods, Project, Root, RunDirArg, Verbose, complete_configs


def run(
    configs: Configs,
    mod: Mods = None,
    name: Annotated[str | None, typer.Option(help="Run name (default: date-time + hash).")] = None,
    project: Project = None,
    root: Root = Path("experiments"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show the plan; run nothing.")
    ] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute every task.")] = False,
    rerun: Annotated[
        list[str] | None, typer.Option(help="Recompute this task and all after it.")
    ] = None,
    start: Annotated[
        list[str] | None,
        typer.Option("--from", help="Partial run: this task and every task that needs it."),
    ] = None,
    until: Annotated[
        list[str] | None, typer.Option(help="Partial run: this task and every task it needs.")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Partial run: only this task (inputs from the cache). Repeatable."),
    ] = None,
    inputs_from: Annotated[
        Path | None,
        typer.Option(help="A partial run's inputs: what this earlier run's tasks stored."),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            help="Independent tasks at once; one declaring CPU/GPU work runs in its own process."
        ),
    ] = 1,
    verbose: Verbose = False,
) -> None:
    """Run the pipeline the configs describe, in ROOT/PROJECT/NAME."""
    from ginpipe.runs.runner import RunRequest, execute

    setup_logging(verbose)
    request = RunRequest(
        files=list(configs),
        mods=mod or [],
        name=name,
        project=project,
        root=root,
        dry_run=dry_run,
        use_cache=not no_cache,
        rerun=rerun or [],
        start=start or [],
        stop=until or [],
        only=only or [],
        inputs_from=inputs_from,
        jobs=jobs,
    )
    raise typer.Exit(guarded(verbose, lambda: execute(request)))


def resume(
    run_dir: RunDirArg,
    mod: Mods = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute every task.")] = False,
    rerun: Annotated[list[str] | None, typer.Option(help="Recompute this task and after.")] = None,
    jobs: Annotated[int, typer.Option(help="Independent tasks at once (as for run).")] = 1,
    verbose: Verbose = False,
) -> None:
    """Continue a run in its own directory from its saved config (mods may extend it)."""
    from ginpipe.runs.runner import RunRequest, execute

    setup_logging(verbose)
    request = RunRequest(
        mods=mod or [], resume=run_dir, use_cache=not no_cache, rerun=rerun or [], jobs=jobs
    )
    raise typer.Exit(guarded(verbose, lambda: execute(request)))


def graph(
    configs: Annotated[
        list[str],
        typer.Argument(
            help="Configs applied in order (as for run), or one run directory.",
            autocompletion=complete_configs,
        ),
    ],
    mod: Mods = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write: .png, .svg or .mmd (Mermaid)."),
    ] = None,
    format: Annotated[
        str | None,
        typer.Option("--format", "-f", help="png, svg or mermaid (default: from -o's suffix)."),
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Draw the pipeline: tasks and the keys between them (a run's: with each task's status)."""
    from ginpipe.runs.graph_command import draw

    setup_logging(verbose)
    typer.echo(guarded(verbose, lambda: draw(list(configs), mod or [], output, format)))
