"""``runs``, ``diff``, ``tag``, ``note``, ``rm``, ``compare``, ``cache``: finished runs read,
labelled, compared and removed (``ginpipe.records``); none of them imports torch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ginpipe.cli.guard import guarded
from ginpipe.cli.options import Root, RunDirArg, RunDirsArg, Verbose

cache_app = typer.Typer(help="See and prune the cross-run artifact cache.", no_args_is_help=True)


def runs(
    root: Root = Path("experiments"),
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            help="Only runs whose config has KEY=VALUE (LR=0.01), with a tag (tag=best), "
            "or whose note has a word (note=baseline). Repeatable: all must hold."
        ),
    ] = None,
    sweep: Annotated[
        Path | None,
        typer.Option(help="The trials of this sweep folder instead: swept values, best first."),
    ] = None,
    columns: Annotated[
        list[str] | None,
        typer.Option(
            help="Columns in order, comma-separated: run, status, started, duration, metric, "
            "tags, note, a config key, a metric name; 'auto' = the config values that differ."
        ),
    ] = None,
    sort: Annotated[
        str | None, typer.Option(help="Order by a metric, config key or column.")
    ] = None,
    desc: Annotated[bool, typer.Option("--desc", help="With --sort: largest first.")] = False,
    format: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    plot: Annotated[
        Path | None, typer.Option(help="Also draw the listed runs side by side in this PNG.")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Runs: status, start, duration, the config values that differ, main metric, tags."""
    if sweep is not None:
        typer.echo(guarded(verbose, lambda: _sweep_table(sweep)))
        return
    from ginpipe.records.table import show_runs

    out, wrote = guarded(
        verbose,
        lambda: show_runs(root, project, where or [], columns, sort, desc, format, plot),
    )
    typer.echo(out)
    if wrote:
        typer.echo(wrote, err=format != "table")
    if not where and format == "table":
        for line in _sweeps(root, project):
            typer.echo(line)


def _sweeps(root: Path, project: str | None) -> list[str]:
    """Sweep folders hold their trials one level down: name them, with the command."""
    from ginpipe.layout.rundir import CONFIG, GROUP_FILE

    lines = []
    for marker in sorted(root.glob(f"{project or '*'}/*/{GROUP_FILE}")):
        trials = len(list(marker.parent.glob(f"*/{CONFIG}")))
        lines.append(
            f"sweep {marker.parent.parent.name}/{marker.parent.name}: {trials} trials "
            f"(ginpipe runs --sweep {marker.parent})"
        )
    return lines


def _sweep_table(sweep_dir: Path) -> str:
    from ginpipe.sweep import require

    require("optuna")
    from ginpipe.sweep.results import check_sweep_dir, format_table, load_rows

    check_sweep_dir(sweep_dir)
    return format_table(*load_rows(sweep_dir))


def diff(
    run_a: RunDirArg,
    run_b: RunDirArg,
    verbose: Verbose = False,
) -> None:
    """What changed between two runs: config values (macros resolved), metrics, tags."""
    from ginpipe.records.history import diff_runs

    typer.echo(guarded(verbose, lambda: diff_runs(run_a, run_b)))


def tag(
    run_dir: RunDirArg,
    tags: Annotated[list[str] | None, typer.Argument(help="Tags to add.")] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", "-r", help="A tag to take off. Repeatable.")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Tag a run (shown by runs, selected by runs --where tag=NAME); -r removes one."""
    from ginpipe.records.labels import tag as tag_run

    typer.echo(guarded(verbose, lambda: tag_run(run_dir, tags or [], remove or [])))


def note(
    run_dir: RunDirArg,
    text: Annotated[
        str | None, typer.Argument(help="The note ('' clears it; none: show it).")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Write a note on a run (shown by runs, selected by runs --where note=WORD)."""
    from ginpipe.records.labels import note as note_run

    typer.echo(guarded(verbose, lambda: note_run(run_dir, text)))


def remove_runs(
    run_dirs: RunDirsArg,
    cache: Annotated[
        bool, typer.Option("--cache", help="Also delete the cache entries no other run uses.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would go.")] = False,
    verbose: Verbose = False,
) -> None:
    """Delete runs; refuses a run in use and keeps cache entries other runs need."""
    from ginpipe.records.removal import remove

    typer.echo(guarded(verbose, lambda: remove(run_dirs, cache=cache, dry_run=dry_run)))


def compare(
    run_dirs: RunDirsArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="The PNG to write.")] = Path(
        "compare.png"
    ),
    metric: Annotated[
        str | None, typer.Option(help="Metric to compare on (default: the main metric).")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Draw runs side by side: overlaid curves, the metric against each differing value."""
    from ginpipe.records.compare import compare_runs, load_runs

    typer.echo(guarded(verbose, lambda: compare_runs(load_runs(run_dirs), output, metric)))


@cache_app.command("ls")
def cache_ls(root: Root = Path("experiments"), verbose: Verbose = False) -> None:
    """Entries of the cache: task, size, age, last use."""
    from ginpipe.records.history import format_cache

    typer.echo(guarded(verbose, lambda: format_cache(root)))


@cache_app.command("prune")
def cache_prune(
    root: Root = Path("experiments"),
    older_than: Annotated[
        str | None, typer.Option(help="Remove entries unused for this long, e.g. 7d, 12h.")
    ] = None,
    max_size: Annotated[
        str | None, typer.Option(help="Evict least recently used until under e.g. 10G.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would go.")] = False,
    verbose: Verbose = False,
) -> None:
    """Remove cache entries by age or total size (least recently used first)."""
    from ginpipe.records.history import prune_cache

    typer.echo(guarded(verbose, lambda: prune_cache(root, older_than, max_size, dry_run)))
