"""Where ``predict`` and ``export`` may write: never over a run's record or their own input.

A run directory is the record of what ran; an output written into it (``-o RUN/metrics.json``,
an export's sidecar ``RUN/run.json``) would silently replace that record, and ``-o`` naming
the table being read would replace the input mid-read. Both are refused before any work.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ginpipe.base.errors import ConfigError


def check_output(output: Path, run_dir: Path, inputs: Iterable[object] = ()) -> None:
    """Refuse an output (or its sidecar) that is a folder, inside ``run_dir`` or an input."""
    if output.is_dir():
        raise ConfigError(f"-o {output} is a folder: name a file in it")
    run = run_dir.resolve()
    target = output.resolve()  # symlinks followed: a link into the run is the run
    if target == run or run in target.parents:
        raise ConfigError(
            f"-o {output} is inside the run directory {run_dir}, whose files are the run's "
            "record: write the output elsewhere"
        )
    for source in inputs:
        if isinstance(source, (str, Path)) and Path(source).resolve() == target:
            raise ConfigError(f"-o {output} is the input being read: write the output elsewhere")
