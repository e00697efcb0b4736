"""The ``ginpipe`` command line. Thin: parse arguments, call the engine, map errors to exits.

One module per group of commands (``run.py``, ``configs.py``, ``records.py``, ``sweep.py``,
``model.py``), each an adapter from arguments to a call into the layer below; ``guard.py``
turns errors into exit codes, ``options.py`` holds the arguments they share. A new command
goes into its group's module and into ``COMMANDS`` below.

Heavy imports (torch, Lightning, the task library) happen inside the commands that need
them, so ``ginpipe --help``, ``runs`` and ``diff`` start in a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from ginpipe.base.errors import EXIT_INTERRUPTED
from ginpipe.cli import configs, model, records, run, sweep
from ginpipe.runs import startup

app = typer.Typer(
    name="ginpipe",
    help="Compose gin configs, run a cached pipeline of tasks, record every run.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(records.cache_app, name="cache")

# Every command by name, in the order ``ginpipe --help`` lists them (``cache``, a group of
# its own, comes last).
COMMANDS: list[tuple[str, Callable[..., Any]]] = [
    ("run", run.run),
    ("resume", run.resume),
    ("config", configs.config),
    ("graph", run.graph),
    ("configs", configs.list_configs),
    ("cp", configs.copy_config),
    ("ls", configs.list_configurables),
    ("runs", records.runs),
    ("sweep", sweep.sweep),
    ("diff", records.diff),
    ("tag", records.tag),
    ("note", records.note),
    ("rm", records.remove_runs),
    ("compare", records.compare),
    ("predict", model.predict),
    ("export", model.export),
    ("demo", model.demo),
    ("serve", model.serve),
    ("container", model.container),
]
for _name, _command in COMMANDS:
    app.command(_name)(_command)


def main(argv: list[str] | None = None) -> Any:
    """Console entry point; each command sets its console logging up (``--verbose``)."""
    return startup.process_main(lambda: app(args=argv), interrupted_exit=EXIT_INTERRUPTED)
