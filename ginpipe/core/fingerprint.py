"""Cache keys: what a task's result depends on, hashed before the task runs.

A task's key covers its identity, the source of its module and of the project modules
that module uses (coarse on purpose: over-invalidation is fine, a stale hit is not), its
resolved gin parameters (references followed, never called), the files those parameters
name, key library versions, and the keys of the artifacts it reads. An artifact's key is
its producer's key plus its name, so large data is never re-hashed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import json
import marshal
import os
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ginpipe import __version__
from ginpipe.config import ginapi

KEY_FORMAT = 3  # 3: defaults join the parameters; 2: the task library moved to ginpipe.tasks
LIBRARY_PACKAGE = "ginpipe.tasks"
LIBRARIES = ("torch", "pytorch-lightning", "numpy", "pandas", "scikit-learn", "gin-config")
_MAX_TREE_FILES = 200_000


def digest(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj``."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def task_key(
    selector: str,
    fn: Any,
    scope: str,
    input_keys: Mapping[str, str],
    uses: Sequence[str] = (),
) -> str:
    """The cache key of one task call; ``input_keys`` maps each read to its artifact key.

    ``uses`` names configurables the task calls itself (not through a parameter), whose
    bindings therefore also decide its result.
    """
    return digest(
        {
            "format": KEY_FORMAT,
            "task": selector,
            "scope": scope,
            "code": code_fingerprint(fn),
            "params": bound_parameters(selector, scope),
            "uses": {name: _used_configurable(name, scope) for name in uses},
            "inputs": dict(sorted(input_keys.items())),
            "libraries": library_versions(),
        }
    )


def artifact_key(producer_key: str, name: str) -> str:
    return digest({"producer": producer_key, "name": name})


# -- parameters ------------------------------------------------------------------------------


def bound_parameters(selector: str, scope: str = "", _seen: frozenset[str] = frozenset()) -> Any:
    """The gin bindings that apply to ``selector`` in ``scope``, references followed.

    Reads gin's raw bindings: ``query_parameter`` returns unresolved macros and
    ``get_bindings`` would call ``@X()`` references (docs/gin-notes.md).
    """
    if selector in _seen:
        return {"cycle": selector}
    seen = _seen | {selector}
    params: dict[str, Any] = {}
    bound: set[str] = set()
    for bound_scope, name, value in ginapi.bound_values(selector, scope_prefixes(scope)):
        params[f"{bound_scope}/{name}" if bound_scope else name] = _canonical(value, seen)
        bound.add(name)
    # The values a call really gets: a parameter bound to its default value (as operative.gin
    # writes every default out) is the same computation as one left unbound.
    for name, default in _defaults(selector).items():
        if name not in bound:
            params[name] = _canonical_default(default, seen)
    return dict(sorted(params.items()))


def _defaults(selector: str) -> dict[str, Any]:
    """The keyword defaults of a registered configurable (of ``__init__`` for a class)."""
    configurable = ginapi.find(selector)
    if configurable is None:
        return {}
    fn = configurable.wrapped
    try:
        signature = inspect.signature(fn.__init__ if inspect.isclass(fn) else fn)
    except (TypeError, ValueError):  # builtins without a signature
        return {}
    return {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if parameter.default is not inspect.Parameter.empty
        and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        and not ginapi.is_required(parameter.default)
    }


def _canonical_default(value: Any, seen: frozenset[str]) -> Any:
    """A default as it would be bound; objects by import path, never by a repr holding a
    memory address (which would give every process its own key)."""
    if inspect.isclass(value) or inspect.isfunction(value) or inspect.isbuiltin(value):
        return {"object": f"{getattr(value, '__module__', '')}.{value.__qualname__}"}
    if isinstance(value, (list, tuple, dict, str, bool, int, float)) or value is None:
        return _canonical(value, seen)
    text = repr(value)
    return {"type": type(value).__qualname__, "repr": None if " at 0x" in text else text}


def _used_configurable(name: str, scope: str) -> Any:
    configurable = ginapi.find(name)
    if configurable is None:
        return {"unregistered": name}
    return {
        "code": code_fingerprint(configurable.wrapped),
        "params": bound_parameters(configurable.selector, scope),
    }


def scope_prefixes(scope: str) -> set[str]:
    parts = [p for p in scope.split("/") if p]
    return {"/".join(parts[:i]) for i in range(len(parts) + 1)}


def _canonical(value: Any, seen: frozenset[str]) -> Any:
    if ginapi.is_reference(value):
        return _reference(value, seen)
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, [_canonical(v, seen) for v in value]]
    if isinstance(value, dict):
        return {"dict": [[_canonical(k, seen), _canonical(v, seen)] for k, v in value.items()]}
    if isinstance(value, str):
        return {"str": value, "file": file_fingerprint(value)} if _looks_like_path(value) else value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return {"repr": repr(value), "type": type(value).__qualname__}


def _reference(ref: Any, seen: frozenset[str]) -> Any:
    configurable, scope, called = ginapi.reference_parts(ref)
    if configurable.selector == ginapi.MACRO:
        if scope in seen:
            return {"macro": scope, "cycle": True}
        return {"macro": scope, "value": _canonical(ginapi.macro_value(scope), seen | {scope})}
    return {
        "ref": configurable.selector,
        "call": called,
        "scope": scope,
        "code": code_fingerprint(configurable.wrapped),
        "params": bound_parameters(configurable.selector, scope, seen),
    }


def _looks_like_path(value: str) -> bool:
    return ("/" in value or "." in value) and len(value) < 4096 and os.path.exists(value)


def file_fingerprint(path: str) -> Any:
    """Size and mtime of a file, or of every file in a folder (cheap, no reading)."""
    p = Path(path)
    if p.is_file():
        st = p.stat()
        return [st.st_size, st.st_mtime_ns]
    h = hashlib.sha256()
    for count, (root, dirs, files) in enumerate(os.walk(p)):
        dirs.sort()
        if count > _MAX_TREE_FILES:
            break
        for name in sorted(files):
            st = os.stat(os.path.join(root, name))
            h.update(f"{os.path.relpath(root, p)}/{name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


# -- code ------------------------------------------------------------------------------------


def code_fingerprint(fn: Any) -> str:
    """Hash of the sources a callable depends on, or the library version if third-party.

    A function defined where no source file exists (a notebook cell, ``python -c``) is
    keyed by its compiled code, so editing the cell and running it again is seen.
    """
    module = getattr(fn, "__module__", None) or ""
    found = sys.modules.get(module)
    if found is not None and getattr(found, "__file__", None) is None:
        code = getattr(fn, "__code__", None) or getattr(
            getattr(fn, "__init__", None), "__code__", None
        )
        if code is not None and module in ("__main__", "__mp_main__"):
            return "code:" + hashlib.sha256(marshal.dumps(code)).hexdigest()
    return _module_closure_digest(module)


@dataclass(frozen=True)
class _Closure:
    """A module's digest, valid while every file of its closure keeps its size and mtime."""

    stamps: tuple[tuple[str, int, int, int, int], ...]
    digest: str


_closures: dict[str, _Closure] = {}
_file_hashes: dict[tuple[str, int, int, int, int], bytes] = {}


def _stamp(file: str) -> tuple[str, int, int, int, int]:
    """What changes when a file is edited: size, mtime, ctime, inode (an editor's rename)."""
    try:
        st = os.stat(file)
    except OSError:
        return (file, -1, -1, -1, -1)
    return (file, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _module_closure_digest(module_name: str) -> str:
    """The digest of a project module and the project modules it uses.

    Memoised per process, but never trusted blindly: it follows the files (size and
    mtime, then content when those change), so a module edited in a notebook and reloaded
    with ``importlib.reload`` (or edited on disk between two runs of one process) gets a
    new key instead of the old result from the cache.
    """
    module = sys.modules.get(module_name)
    if module is None or not _is_project_module(module):
        top = module_name.split(".")[0]
        return f"{top}=={_version_of(top)}"
    memo = _closures.get(module_name)
    if memo is not None and tuple(_stamp(stamp[0]) for stamp in memo.stamps) == memo.stamps:
        return memo.digest
    stamps = tuple(_stamp(file) for file in sorted(_project_closure(module)))
    h = hashlib.sha256()
    for stamp in stamps:
        h.update(stamp[0].encode())
        h.update(_file_hash(stamp))
    digest = h.hexdigest()
    _closures[module_name] = _Closure(stamps, digest)
    return digest


def _file_hash(stamp: tuple[str, int, int, int, int]) -> bytes:
    """Content hash of one file as it is at ``stamp``; read again only when it changes."""
    known = _file_hashes.get(stamp)
    if known is None:
        try:
            known = hashlib.sha256(Path(stamp[0]).read_bytes()).digest()
        except OSError:
            known = b""
        _file_hashes[stamp] = known
    return known


def forget_code() -> None:
    """Drop the memo (tests, and a program that wants every file read again)."""
    _closures.clear()
    _file_hashes.clear()


def project_sources() -> list[str]:
    """The project source files hashed into this process's cache keys so far: the files a
    run's code came from, which its environment lock names (``ginpipe/runs/provenance.py``)."""
    return sorted({stamp[0] for closure in _closures.values() for stamp in closure.stamps})


def _project_closure(module: Any) -> set[str]:
    """Files of ``module`` and of the project modules it references, transitively."""
    files: set[str] = set()
    stack = [module]
    visited: set[str] = set()
    while stack:
        mod = stack.pop()
        if mod.__name__ in visited:
            continue
        visited.add(mod.__name__)
        files.add(mod.__file__)
        for value in list(vars(mod).values()):
            dep = _module_of(value)
            if dep is not None and dep.__name__ not in visited and _is_project_module(dep):
                stack.append(dep)
    return files


def _module_of(value: Any) -> Any:
    if isinstance(value, type(sys)):
        return value
    name = getattr(value, "__module__", None)
    return sys.modules.get(name) if isinstance(name, str) else None


INSTALL_FOLDERS = frozenset({"site-packages", "dist-packages"})


@cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"]}
    return tuple(str(Path(r).resolve()) for r in roots if r)


def _is_project_module(module: Any) -> bool:
    """User or task code: a source file outside the interpreter's library folders.

    The engine itself is left out (its version is in every key instead), so editing a
    task reruns that task, not everything. The standard task library (``ginpipe.tasks``)
    counts as task code: from a source checkout its files are hashed, and from an
    installed wheel it sits in site-packages and counts by version.
    """
    file = getattr(module, "__file__", None)
    name = getattr(module, "__name__", "")
    if not isinstance(file, str) or not isinstance(name, str):
        return False
    return _is_project_source(name, file)


@cache
def _is_project_source(name: str, file: str) -> bool:
    """``_is_project_module`` for one module; a closure asks about the same modules many
    times, and resolving a path costs system calls."""
    if not file.endswith(".py") or _is_engine_module(name):
        return False
    path = Path(file)
    if not path.is_absolute() or not path.is_file():
        return False
    resolved = str(path.resolve())
    if any(resolved.startswith(root) for root in _library_roots()):
        return False
    # Outside this interpreter's folders but installed as a package (a --user install,
    # another environment on the path): counted by version, like any library.
    return not _installed_elsewhere(Path(resolved))


def _installed_elsewhere(path: Path) -> bool:
    """True for a file inside some ``site-packages``/``dist-packages`` folder (a ``--user``
    install, another environment on the path): a package installed from a wheel, not code
    being edited. Editable installs live in their source tree and stay project code.

    A path test rather than asking ``importlib.metadata`` which distribution owns the
    module: that reads every installed distribution's file list, about half a second
    before each run in a large environment.
    """
    return any(part in INSTALL_FOLDERS for part in path.parts[:-1])


def _is_engine_module(name: str) -> bool:
    if name == "ginpipe" or name == LIBRARY_PACKAGE or name.startswith(LIBRARY_PACKAGE + "."):
        return name == "ginpipe"
    return name.startswith("ginpipe.")


@cache
def _version_of(top_level: str) -> str:
    aliases = {
        "sklearn": "scikit-learn",
        "pytorch_lightning": "pytorch-lightning",
        "gin": "gin-config",
        "PIL": "pillow",
    }
    try:
        return importlib.metadata.version(aliases.get(top_level, top_level))
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@cache
def library_versions() -> dict[str, str]:
    versions = {name: _version_of(name) for name in LIBRARIES}
    versions["ginpipe"] = __version__
    versions["python"] = sys.version.split()[0]
    return versions
