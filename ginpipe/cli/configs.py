"""``config``, ``configs``, ``cp``, ``ls``: what configs compose to, the shipped ones, and
what a config can name."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ginpipe.cli.guard import guarded, setup_logging
from ginpipe.cli.options import Configs, Mods, Verbose


def config(configs: Configs, mod: Mods = None, verbose: Verbose = False) -> None:
    """Print the composed, resolved config after validating it; run nothing."""
    from ginpipe.runs.runner import RunRequest, prepare

    setup_logging(verbose)
    prepared = guarded(verbose, lambda: prepare(RunRequest(files=list(configs), mods=mod or [])))
    typer.echo(prepared.composition.bindings.rstrip())
    names = " -> ".join(step.name for step in prepared.steps)  # in the order they run
    typer.echo(f"\n# tasks: {names}")


def list_configs() -> None:
    """The shipped configs, each with its first comment line; use them by name."""
    from ginpipe.base.tables import render_table
    from ginpipe.config.shipped import shipped_configs

    typer.echo(render_table([(c.name, c.summary) for c in shipped_configs()]))


def copy_config(
    name: Annotated[str, typer.Argument(help="A shipped config, e.g. models/resnet.gin.")],
    destination: Annotated[Path, typer.Argument(help="File or folder to copy it to.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    verbose: Verbose = False,
) -> None:
    """Copy a shipped config to edit it; its includes still find the shipped files."""
    from ginpipe.config.shipped import copy_shipped

    target = guarded(verbose, lambda: copy_shipped(name, destination, force=force))
    typer.echo(f"copied {name} -> {target}")


def list_configurables(
    filter: Annotated[str | None, typer.Argument(help="Show names containing this.")] = None,
    module: Annotated[
        list[str] | None,
        typer.Option(help="Modules whose configurables to list (default: ginpipe.tasks)."),
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Tasks and configurables: parameters, defaults, first doc line."""
    from ginpipe.core.catalog import describe

    typer.echo(guarded(verbose, lambda: describe(filter, module or ["ginpipe.tasks"])))
