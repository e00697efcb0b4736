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

from ginpipe.base.errors import EXIT_INTERRUPTED, GinpipeError, TaskFailed
from ginpipe.runs import startup

app = typer.Typer(
    name="ginpipe",
    help="Compose gin configs, run a cached pipeline of tasks, record every run.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
cache_app = typer.Typer(help="See and prune the cross-run artifact cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")

T = TypeVar("T")


def _complete_configs(incomplete: str) -> list[str]:
    """Shipped config names and local .gin files starting with what was typed."""
    from ginpipe.config.shipped import shipped_configs

    names = [c.name for c in shipped_configs()]
    names += [str(p) for p in Path(".").glob(f"{incomplete}*.gin")]
    names += [f"{p}/" for p in Path(".").glob(f"{incomplete}*") if p.is_dir()]
    return sorted(n for n in set(names) if n.startswith(incomplete))


def _complete_run_dirs(incomplete: str) -> list[str]:
    """Run directories (those holding a run.json) under ./experiments or what was typed."""
    from ginpipe.runs.rundir import RUN_JSON

    base = Path(incomplete).parent if incomplete else Path("experiments")
    roots = [base, *base.glob("*"), *base.glob("*/*")]
    found = {str(p) for p in roots if (p / RUN_JSON).is_file()}
    return sorted(p for p in found if p.startswith(incomplete))


Configs = Annotated[
    list[str],
    typer.Argument(
        help="Configs applied in order: local files, or shipped ones by name "
        "(`ginpipe configs`), .gin optional.",
        autocompletion=_complete_configs,
    ),
]
RunDirArg = Annotated[
    Path, typer.Argument(help="A run directory.", autocompletion=_complete_run_dirs)
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
    except OSError as e:  # a full disk, a read-only mount...: one line, exit code by kind
        from ginpipe.base.oserrors import path_error

        if verbose:
            traceback.print_exc()
        error = path_error(e)
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(error.exit_code) from None


def _interruptible(fn: Callable[[], T]) -> T:
    """Ctrl-C or SIGTERM end ``fn`` through its ``finally`` blocks (temp files removed)."""
    from ginpipe.base.errors import Interrupted
    from ginpipe.base.signals import signals_raise_interrupted

    try:
        with signals_raise_interrupted():
            return fn()
    except Interrupted as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(e.exit_code) from None


def _setup_logging(verbose: bool) -> None:
    from ginpipe.runs import distributed
    from ginpipe.runs.log import setup_console

    setup_console(verbose, distributed.detect().rank)


@app.command()
def run(
    configs: Configs,
    mod: Mods = None,
    name: Annotated[str | None, typer.Option(help="Run name (default: date-time + hash).")] = None,
    project: Annotated[str | None, typer.Option(help="Project (default: this folder).")] = None,
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

    _setup_logging(verbose)
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
    raise typer.Exit(_guarded(verbose, lambda: execute(request)))


@app.command()
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

    _setup_logging(verbose)
    request = RunRequest(
        mods=mod or [], resume=run_dir, use_cache=not no_cache, rerun=rerun or [], jobs=jobs
    )
    raise typer.Exit(_guarded(verbose, lambda: execute(request)))


@app.command()
def config(configs: Configs, mod: Mods = None, verbose: Verbose = False) -> None:
    """Print the composed, resolved config after validating it; run nothing."""
    from ginpipe.runs.runner import RunRequest, prepare

    _setup_logging(verbose)
    prepared = _guarded(verbose, lambda: prepare(RunRequest(files=list(configs), mods=mod or [])))
    typer.echo(prepared.composition.bindings.rstrip())
    names = " -> ".join(step.name for step in prepared.steps)  # in the order they run
    typer.echo(f"\n# tasks: {names}")


@app.command()
def graph(
    configs: Annotated[
        list[str],
        typer.Argument(
            help="Configs applied in order (as for run), or one run directory.",
            autocompletion=_complete_configs,
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

    _setup_logging(verbose)
    typer.echo(_guarded(verbose, lambda: draw(list(configs), mod or [], output, format)))


@app.command("configs")
def list_configs() -> None:
    """The shipped configs, each with its first comment line; use them by name."""
    from ginpipe.base.tables import render_table
    from ginpipe.config.shipped import shipped_configs

    typer.echo(render_table([(c.name, c.summary) for c in shipped_configs()]))


@app.command("cp")
def copy_config(
    name: Annotated[str, typer.Argument(help="A shipped config, e.g. models/resnet.gin.")],
    destination: Annotated[Path, typer.Argument(help="File or folder to copy it to.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    verbose: Verbose = False,
) -> None:
    """Copy a shipped config to edit it; its includes still find the shipped files."""
    from ginpipe.config.shipped import copy_shipped

    target = _guarded(verbose, lambda: copy_shipped(name, destination, force=force))
    typer.echo(f"copied {name} -> {target}")


@app.command("ls")
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

    typer.echo(_guarded(verbose, lambda: describe(filter, module or ["ginpipe.tasks"])))


@app.command()
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
        typer.echo(_guarded(verbose, lambda: _sweep_table(sweep)))
        return
    from ginpipe.records.table import show_runs

    out, wrote = _guarded(
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
    from ginpipe.runs.rundir import CONFIG, GROUP_FILE

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


@app.command()
def sweep(
    configs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Configs applied in order, as for run; a sweep file's distributions "
            "(LR = @loguniform(1e-4, 1e-1)) are searched.",
            autocompletion=_complete_configs,
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
    project: Annotated[str | None, typer.Option(help="Project (default: this folder).")] = None,
    verbose: Verbose = False,
) -> None:
    """Run a grid or an Optuna search; every trial is a run in ROOT/PROJECT/sweep-<time>."""
    _setup_logging(verbose)

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

    raise typer.Exit(_guarded(verbose, start))


def _usage(message: str) -> Exception:
    from ginpipe.base.errors import ConfigError

    return ConfigError(message)


@app.command()
def diff(
    run_a: RunDirArg,
    run_b: RunDirArg,
    verbose: Verbose = False,
) -> None:
    """What changed between two runs: config values (macros resolved), metrics, tags."""
    from ginpipe.records.history import diff_runs

    typer.echo(_guarded(verbose, lambda: diff_runs(run_a, run_b)))


@app.command()
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

    typer.echo(_guarded(verbose, lambda: tag_run(run_dir, tags or [], remove or [])))


@app.command()
def note(
    run_dir: RunDirArg,
    text: Annotated[
        str | None, typer.Argument(help="The note ('' clears it; none: show it).")
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Write a note on a run (shown by runs, selected by runs --where note=WORD)."""
    from ginpipe.records.labels import note as note_run

    typer.echo(_guarded(verbose, lambda: note_run(run_dir, text)))


@app.command("rm")
def remove_runs(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Run directories.", autocompletion=_complete_run_dirs)
    ],
    cache: Annotated[
        bool, typer.Option("--cache", help="Also delete the cache entries no other run uses.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would go.")] = False,
    verbose: Verbose = False,
) -> None:
    """Delete runs; refuses a run in use and keeps cache entries other runs need."""
    from ginpipe.records.removal import remove

    typer.echo(_guarded(verbose, lambda: remove(run_dirs, cache=cache, dry_run=dry_run)))


@app.command()
def compare(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Run directories.", autocompletion=_complete_run_dirs)
    ],
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

    typer.echo(_guarded(verbose, lambda: compare_runs(load_runs(run_dirs), output, metric)))


@cache_app.command("ls")
def cache_ls(root: Root = Path("experiments"), verbose: Verbose = False) -> None:
    """Entries of the cache: task, size, age, last use."""
    from ginpipe.records.history import format_cache

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
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would go.")] = False,
    verbose: Verbose = False,
) -> None:
    """Remove cache entries by age or total size (least recently used first)."""
    from ginpipe.records.history import prune_cache

    typer.echo(_guarded(verbose, lambda: prune_cache(root, older_than, max_size, dry_run)))


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
    model: Annotated[
        str | None,
        typer.Option(help="Which model of a run of several (configs/compare.gin): resnet, ..."),
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Predict with a run's model and its own preprocessing; write one row per item."""
    with startup.importing():  # torch, pandas and the report's libraries
        from ginpipe.inference.predicting import predict_to_csv
    from ginpipe.records.models import model_dir

    _setup_logging(verbose)
    typer.echo(
        _guarded(
            verbose,
            lambda: _interruptible(
                lambda: predict_to_csv(
                    model_dir(run_dir, model, split),
                    output,
                    input,
                    split,
                    batch_size=batch_size,
                    num_workers=num_workers,
                )
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
    from ginpipe.inference.exporting import export_run

    _setup_logging(verbose)
    typer.echo(
        _guarded(
            verbose,
            lambda: _interruptible(lambda: export_run(run_dir, format, output, verify_items)),
        )
    )


@app.command()
def demo(
    run_dir: RunDirArg,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 7860,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    verbose: Verbose = False,
) -> None:
    """Start a Gradio page (and HTTP API) showing a run's class probabilities."""
    from ginpipe.inference.demo import serve

    _setup_logging(verbose)
    _guarded(verbose, lambda: serve(run_dir, host, port))


@app.command()
def serve(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Run directories; each is served at /runs/NAME/predict (NAME: its folder).",
            autocompletion=_complete_run_dirs,
        ),
    ],
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    workers: Annotated[int, typer.Option(help="Batches each run computes at once.")] = 1,
    max_batch_size: Annotated[int, typer.Option(help="Most items in one batch.")] = 64,
    batch_timeout: Annotated[
        float, typer.Option(help="Milliseconds a batch waits for requests on their way.")
    ] = 5.0,
    max_body: Annotated[int, typer.Option(help="Largest request body, in bytes.")] = 16 * 2**20,
    verbose: Verbose = False,
) -> None:
    """Serve runs over HTTP (POST /predict) with dynamic batching; SIGTERM drains."""
    from ginpipe.serving.server import serve as serve_runs

    _setup_logging(verbose)
    _guarded(
        verbose,
        lambda: _interruptible(
            lambda: serve_runs(
                run_dirs, host, port, workers, max_batch_size, batch_timeout, max_body
            )
        ),
    )


@app.command()
def container(
    run_dir: RunDirArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write.")],
    cuda: Annotated[
        bool, typer.Option("--cuda", help="CUDA torch instead of the CPU build.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a non-empty --output folder.")
    ] = False,
    allow_changed: Annotated[
        bool,
        typer.Option(help="Take ginpipe's checkout and the run's modules as they are now."),
    ] = False,
    verbose: Verbose = False,
) -> None:
    """Write a container build context that serves a run (Dockerfile, lock, wheel, model)."""
    from ginpipe.deploy.context import write_context

    _setup_logging(verbose)
    typer.echo(
        _guarded(
            verbose,
            lambda: _interruptible(
                lambda: write_context(
                    run_dir, output, cuda=cuda, force=force, allow_changed=allow_changed
                )
            ),
        )
    )


def main(argv: list[str] | None = None) -> Any:
    """Console entry point; each command sets its console logging up (``--verbose``)."""
    return startup.process_main(lambda: app(args=argv), interrupted_exit=EXIT_INTERRUPTED)


if __name__ == "__main__":  # pragma: no cover
    main()
