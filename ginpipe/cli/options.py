"""Arguments and options several commands share, with their shell completions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def complete_configs(incomplete: str) -> list[str]:
    """Shipped config names and local .gin files starting with what was typed."""
    from ginpipe.config.shipped import shipped_configs

    names = [c.name for c in shipped_configs()]
    names += [str(p) for p in Path(".").glob(f"{incomplete}*.gin")]
    names += [f"{p}/" for p in Path(".").glob(f"{incomplete}*") if p.is_dir()]
    return sorted(n for n in set(names) if n.startswith(incomplete))


def complete_run_dirs(incomplete: str) -> list[str]:
    """Run directories (those holding a run.json) under ./experiments or what was typed."""
    from ginpipe.layout.rundir import RUN_JSON

    base = Path(incomplete).parent if incomplete else Path("experiments")
    roots = [base, *base.glob("*"), *base.glob("*/*")]
    found = {str(p) for p in roots if (p / RUN_JSON).is_file()}
    return sorted(p for p in found if p.startswith(incomplete))


Configs = Annotated[
    list[str],
    typer.Argument(
        help="Configs applied in order: local files, or shipped ones by name "
        "(`ginpipe configs`), .gin optional.",
        autocompletion=complete_configs,
    ),
]
RunDirArg = Annotated[
    Path, typer.Argument(help="A run directory.", autocompletion=complete_run_dirs)
]
RunDirsArg = Annotated[
    list[Path], typer.Argument(help="Run directories.", autocompletion=complete_run_dirs)
]
Mods = Annotated[
    list[str] | None,
    typer.Option(
        "--mod",
        "-m",
        help="A binding applied after the files, e.g. 'LR=0.01' or "
        "'run.tasks+=[@my_task]'. Repeatable; later wins.",
    ),
]
Root = Annotated[Path, typer.Option(help="Folder holding projects and the cache.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs and tracebacks.")]
Project = Annotated[str | None, typer.Option(help="Project (default: this folder).")]
