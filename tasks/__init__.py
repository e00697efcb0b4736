"""Your own tasks: an example.

In a project of your own this is a file ``tasks.py`` beside your configs (any module name
will do); a config says ``import tasks`` and ginpipe finds it in the working directory.
Here it is a folder so that the repository's root shows the layout a project has. Run it from
the repository's root:

    ginpipe run base models/logreg tasks/example.gin

The standard task library is ``ginpipe.tasks``; nothing here re-exports it, so each task
has one module and one name in a config (``tasks.sklearn_models`` does not exist).
"""

from __future__ import annotations

from typing import Any

from ginpipe import task


@task(reads=("data",), writes=("row_counts",))
def count_rows(state: Any, *, splits: tuple[str, ...] = ("train", "val", "test")) -> dict:
    """Rows per split of the loaded data: a task reads keys of the state and returns the
    keys it writes; ``splits`` is a parameter a config may bind."""
    return {"row_counts": {s: len(state["data"][s]["y"]) for s in splits}}
