"""``ginpipe graph``: draw a run directory's recorded graph, or the graph of composed
configs. Apart from ``graphs.py``, which the runner imports to record the graph, because
drawing configs composes them through the runner."""

from __future__ import annotations

from pathlib import Path

from loguru import logger

from ginpipe.base.errors import ConfigError
from ginpipe.plots.graph import Picture, mermaid, output_format, write
from ginpipe.runs import rundir
from ginpipe.runs.graphs import boxes_of, run_picture
from ginpipe.runs.request import RunRequest
from ginpipe.runs.runner import prepare


def draw(targets: list[str], mods: list[str], output: Path | None, fmt: str | None) -> str:
    """``ginpipe graph``: a run directory's graph, or the graph of composed configs; the
    Mermaid text itself when no file is named, else the line saying what was written."""
    chosen = output_format(output, fmt)
    if len(targets) == 1 and (Path(targets[0]) / rundir.RUN_JSON).is_file():
        if mods:
            raise ConfigError("-m applies to configs; a run directory's graph is as it ran")
        picture, title = run_picture(Path(targets[0])), Path(targets[0]).name
    else:
        prepared = prepare(RunRequest(files=targets, mods=mods))
        picture, title = Picture.of(boxes_of(prepared.steps)), " ".join(targets)
    if output is None:
        if chosen != "mermaid":
            raise ConfigError(f"--format {chosen} needs a file: add -o pipeline.{chosen}")
        return mermaid(picture).rstrip()
    if output.is_dir():
        raise ConfigError(f"{output} is a folder: name a file, e.g. -o {output}/pipeline.png")
    write(picture, output, chosen, title=title)
    logger.debug(f"graph of {len(picture.boxes)} tasks written to {output}")
    return f"wrote {output}"
