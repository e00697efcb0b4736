"""The engine's plumbing that the standard task library uses: internal, no compatibility promise.

A task author's own code needs only ``ginpipe``'s public names (``@task``, the state,
errors, config helpers). The library also writes files into run directories and the cache
the way the engine does (atomic writes, one-line path errors, checksums, safe codecs) and
keys its own memo files like cache keys; those pieces come from here, so that every module
of ``ginpipe.tasks`` reaches the engine through ``ginpipe`` or this one module (an
import-linter contract in pyproject.toml).
"""

from ginpipe.base import prestart
from ginpipe.base.atomic import (
    TMP_PREFIX,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    file_sha256,
    fsync_dir,
    is_temp,
)
from ginpipe.base.oserrors import path_error
from ginpipe.config.bindings import selector_of
from ginpipe.core import codecs
from ginpipe.core.fingerprint import code_fingerprint, library_versions
from ginpipe.core.shares import Share

__all__ = [
    "TMP_PREFIX",
    "Share",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "code_fingerprint",
    "codecs",
    "file_sha256",
    "fsync_dir",
    "is_temp",
    "library_versions",
    "path_error",
    "prestart",
    "selector_of",
]
