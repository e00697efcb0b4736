"""Old module paths (before the engine was split into layer packages, and before the modules
reading finished runs left ``ginpipe.runs``) for one more release.

``import ginpipe.runner`` in a notebook written against 0.1 keeps working: it returns the
module at its new path (``ginpipe.runs.runner``) with a ``DeprecationWarning`` that names
the new path. Module paths are internal; the supported names are ``ginpipe``'s own
(docs/architecture.md). Remove in 0.3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED = {
    "ginpipe.atomic": "ginpipe.base.atomic",
    "ginpipe.errors": "ginpipe.base.errors",
    "ginpipe.oserrors": "ginpipe.base.oserrors",
    "ginpipe.suggest": "ginpipe.base.suggest",
    "ginpipe.bindings": "ginpipe.config.bindings",
    "ginpipe.checks": "ginpipe.config.checks",
    "ginpipe.ginapi": "ginpipe.config.ginapi",
    "ginpipe.gintext": "ginpipe.config.gintext",
    "ginpipe.names": "ginpipe.config.names",
    "ginpipe.settings": "ginpipe.config.settings",
    "ginpipe.shipped": "ginpipe.config.shipped",
    "ginpipe.codecs": "ginpipe.core.codecs",
    "ginpipe.events": "ginpipe.core.events",
    "ginpipe.fingerprint": "ginpipe.core.fingerprint",
    "ginpipe.pipeline": "ginpipe.core.pipeline",
    "ginpipe.state": "ginpipe.core.state",
    "ginpipe.store": "ginpipe.core.store",
    "ginpipe.taskdef": "ginpipe.core.taskdef",
    "ginpipe.catalog": "ginpipe.core.catalog",
    "ginpipe.continuation": "ginpipe.runs.continuation",
    "ginpipe.distributed": "ginpipe.runs.distributed",
    "ginpipe.history": "ginpipe.records.history",
    "ginpipe.log": "ginpipe.runs.log",
    "ginpipe.provenance": "ginpipe.runs.provenance",
    "ginpipe.rundir": "ginpipe.runs.rundir",
    "ginpipe.runner": "ginpipe.runs.runner",
    "ginpipe.startup": "ginpipe.runs.startup",
    "ginpipe.tasks.names": "ginpipe.tasks.short_names",
    # What reads finished runs left ginpipe.runs for ginpipe.records; the catalog, ginpipe.core.
    "ginpipe.runs.catalog": "ginpipe.core.catalog",
    "ginpipe.runs.compare": "ginpipe.records.compare",
    "ginpipe.runs.differing": "ginpipe.records.differing",
    "ginpipe.runs.history": "ginpipe.records.history",
    "ginpipe.runs.labels": "ginpipe.records.labels",
    "ginpipe.runs.models": "ginpipe.records.models",
    "ginpipe.runs.removal": "ginpipe.records.removal",
    "ginpipe.runs.table": "ginpipe.records.table",
}
# ``ginpipe.config`` was a module and is now the package of ``ginpipe.config.compose``:
# ``from ginpipe.config import compose_text`` and the like are not forwarded.


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path in ``MOVED`` and hands back the module from its new path."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new}; the old path goes away in ginpipe 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The module was executed under its new name already."""


def install() -> None:
    """Once per process: old paths resolve after every other finder has had its turn."""
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
