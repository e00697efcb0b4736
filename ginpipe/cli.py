"""The ``ginpipe`` command line. Thin: parse arguments, call the engine, map errors to exits.

Heavy imports (torch, Lightning, the task library) happen inside the commands that need
them, so ``ginpipe --help``, ``runs`` and ``diff`` start in a fraction of a second.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ginpipe.errors import GinpipeError, TaskFailed

app = typer.Typer(
    name="ginpipe",
    help="Compose gin configs, run a cached pipeline of tasks, record every run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
cache_app = typer.Typer(help="See and prune the cross-run artifact cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")

T = TypeVar("T")

Configs = Annotated[list[Path], typer.Argument(help="Config files, applied in order.")]
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


def _guarded(verbose: bool, fn: Callable[[], T]) -> T:
    """Run ``fn``; turn user errors into one line and an exit code (traceback with -v)."""
    try:
        return fn()
    except GinpipeError as e:
        if verbose:
            traceback.print_exc()
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(e.exit_code) from None
    except TaskFailed as e:
        if verbose:
            traceback.print_exception(e.cause)
        typer.echo(f"error: {e} (details in run.json; -v for the traceback)", err=True)
        raise typer.Exit(e.exit_code) from None


def _setup_logging(verbose: bool) -> None:
    from ginpipe import distributed
    from ginpipe.log import setup_console

    setup_console(verbose, distributed.detect().rank)


@app.command()
def run(
    configs: Configs,
    mod: Mods = None,
    name: Annotated[str | None, typer.Option(help="Run name (default: date-time + hash).")] = None,
    project: Annotated[str | None, typer.Option(help="Project (default: this folder).")] = None,
    root: Root = Path("experiments"),
    dry_run: Annotated[bool, typer.Option(help="Validate and show the plan; run nothing.")] = False,
    no_cache: Annotated[bool, typer.Option(help="Recompute every task.")] = False,
    rerun: Annotated[
        list[str] | None, typer.Option(help="Recompute this task and all after it.")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Run the pipeline the configs describe, in ROOT/PROJECT/NAME."""
    from ginpipe.runner import RunRequest, execute

    _setup_logging(verbose)
    request = RunRequest(
        files=[str(c) for c in configs],
        mods=mod or [],
        name=name,
        project=project,
        root=root,
        dry_run=dry_run,
        use_cache=not no_cache,
        rerun=rerun or [],
    )
    raise typer.Exit(_guarded(verbose, lambda: execute(request)))


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="The run directory to continue.")],
    mod: Mods = None,
    no_cache: Annotated[bool, typer.Option(help="Recompute every task.")] = False,
    rerun: Annotated[list[str] | None, typer.Option(help="Recompute this task and after.")] = None,
    verbose: Verbose = False,
) -> None:
    """Continue a run in its own directory from its saved config (mods may extend it)."""
    from ginpipe.runner import RunRequest, execute

    _setup_logging(verbose)
    request = RunRequest(mods=mod or [], resume=run_dir, use_cache=not no_cache, rerun=rerun or [])
    raise typer.Exit(_guarded(verbose, lambda: execute(request)))


@app.command()
def config(configs: Configs, mod: Mods = None, verbose: Verbose = False) -> None:
    """Print the composed, resolved config after validating it; run nothing."""
    from ginpipe.runner import RunRequest, prepare

    prepared = _guarded(
        verbose, lambda: prepare(RunRequest(files=[str(c) for c in configs], mods=mod or []))
    )
    typer.echo(prepared.composition.bindings.rstrip())
    names = " -> ".join(step.spec.name for step in prepared.steps)
    typer.echo(f"\n# tasks: {names}")


@app.command("ls")
def list_configurables(
    filter: Annotated[str | None, typer.Argument(help="Show names containing this.")] = None,
    module: Annotated[
        list[str] | None, typer.Option(help="Modules to import first (default: ginpipe.tasks).")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Tasks and configurables: parameters, defaults, first doc line."""
    from ginpipe.catalog import describe

    typer.echo(_guarded(verbose, lambda: describe(filter, module or ["ginpipe.tasks"])))


@app.command()
def runs(
    root: Root = Path("experiments"),
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    where: Annotated[
        list[str] | None, typer.Option(help="Only runs whose config has KEY=VALUE, e.g. LR=0.01.")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """A table of runs: name, status, started, duration, main metric."""
    from ginpipe.history import format_table, list_runs

    found = _guarded(verbose, lambda: list_runs(root, project=project, where=where or []))
    typer.echo(format_table(found))


@app.command()
def diff(
    run_a: Annotated[Path, typer.Argument(help="First run directory.")],
    run_b: Annotated[Path, typer.Argument(help="Second run directory.")],
    verbose: Verbose = False,
) -> None:
    """What differs in config and metrics between two runs."""
    from ginpipe.history import diff_runs

    typer.echo(_guarded(verbose, lambda: diff_runs(run_a, run_b)))


@cache_app.command("ls")
def cache_ls(root: Root = Path("experiments"), verbose: Verbose = False) -> None:
    """Entries of the cache: task, size, age, last use."""
    from ginpipe.history import format_cache

    typer.echo(_guarded(verbose, lambda: format_cache(root)))


@cache_app.command("prune")
def cache_prune(
    root: Root = Path("experiments"),
    older_than: Annotated[
        str | None, typer.Option(help="Remove entries unused for this long, e.g. 7d, 12h.")
    ] = None,
    max_size: Annotated[
        str | None, typer.Option(help="Evict least recently used until under e.g. 10G.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Only show what would go.")] = False,
    verbose: Verbose = False,
) -> None:
    """Remove cache entries by age or total size (least recently used first)."""
    from ginpipe.history import prune_cache

    typer.echo(_guarded(verbose, lambda: prune_cache(root, older_than, max_size, dry_run)))


RunDirArg = Annotated[Path, typer.Argument(help="A run directory.")]


@app.command()
def predict(
    run_dir: RunDirArg,
    input: Annotated[
        str | None,
        typer.Argument(help="Table of files, feature table, folder, image or .npy array."),
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV to write.")] = Path(
        "predictions.csv"
    ),
    split: Annotated[
        str | None, typer.Option(help="Predict a split of the run's own data instead.")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Items per batch.")] = 256,
    num_workers: Annotated[int, typer.Option(help="DataLoader workers decoding files.")] = 0,
    verbose: Verbose = False,
) -> None:
    """Predict with a run's model and its own preprocessing; write one row per item."""
    from ginpipe.tasks.inference.predicting import predict_to_csv

    _setup_logging(verbose)
    typer.echo(
        _guarded(
            verbose,
            lambda: predict_to_csv(
                run_dir, output, input, split, batch_size=batch_size, num_workers=num_workers
            ),
        )
    )


@app.command()
def export(
    run_dir: RunDirArg,
    format: Annotated[str, typer.Option("--format", "-f", help="onnx or torchscript.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write (default: model.onnx or model.pt)."),
    ] = None,
    verify_items: Annotated[int, typer.Option(help="Test items the export is checked on.")] = 512,
    verbose: Verbose = False,
) -> None:
    """Export a run's network with its normalization; check it against predict."""
    from ginpipe.tasks.inference.exporting import export_run

    _setup_logging(verbose)
    typer.echo(_guarded(verbose, lambda: export_run(run_dir, format, output, verify_items)))


@app.command()
def demo(
    run_dir: RunDirArg,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 7860,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    verbose: Verbose = False,
) -> None:
    """Start a Gradio page (and HTTP API) showing a run's class probabilities."""
    from ginpipe.tasks.inference.demo import serve

    _setup_logging(verbose)
    _guarded(verbose, lambda: serve(run_dir, host, port))


def main(argv: list[str] | None = None) -> Any:
    """Console entry point."""
    try:
        return app(args=argv)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
