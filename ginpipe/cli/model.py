"""``predict``, ``export``, ``demo``, ``serve``, ``container``: a finished run's model used
(``ginpipe.inference``, ``ginpipe.serving``, ``ginpipe.deploy``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ginpipe.cli.guard import guarded, interruptible, setup_logging
from ginpipe.cli.options import RunDirArg, Verbose, complete_run_dirs
from ginpipe.runs import startup


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

    setup_logging(verbose)
    typer.echo(
        guarded(
            verbose,
            lambda: interruptible(
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

    setup_logging(verbose)
    typer.echo(
        guarded(
            verbose,
            lambda: interruptible(lambda: export_run(run_dir, format, output, verify_items)),
        )
    )


def demo(
    run_dir: RunDirArg,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 7860,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    verbose: Verbose = False,
) -> None:
    """Start a Gradio page (and HTTP API) showing a run's class probabilities."""
    from ginpipe.inference.demo import serve

    setup_logging(verbose)
    guarded(verbose, lambda: serve(run_dir, host, port))


def serve(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Run directories; each is served at /runs/NAME/predict (NAME: its folder).",
            autocompletion=complete_run_dirs,
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

    setup_logging(verbose)
    guarded(
        verbose,
        lambda: interruptible(
            lambda: serve_runs(
                run_dirs, host, port, workers, max_batch_size, batch_timeout, max_body
            )
        ),
    )


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

    setup_logging(verbose)
    typer.echo(
        guarded(
            verbose,
            lambda: interruptible(
                lambda: write_context(
                    run_dir, output, cuda=cuda, force=force, allow_changed=allow_changed
                )
            ),
        )
    )
