"""Where a run came from: git commit and dirty flag, versions, host, command line, and the
environment lock (``RUN/environment.txt``).

The lock is a pip requirements file that recreates the run's environment: every installed
distribution at its exact version, the sources of local versions (``torch==2.13.0+cpu`` is
on no public index but PyTorch's), how ginpipe itself was installed (a checkout at a commit,
a wheel, a release), and the user's own modules the run's code came from. A ``# record:``
line holds the same facts as JSON for ``ginpipe container``. It is written before every
start, so it reads only local files: no network, no pip, two short ``git`` calls at most.
"""

from __future__ import annotations

import configparser
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import ginpipe
from ginpipe.base.install import DISTRIBUTION
from ginpipe.core.fingerprint import INSTALL_FOLDERS, library_versions, project_sources

ENVIRONMENT_FILE = "environment.txt"
LOCK_FORMAT = 1
RECORD_PREFIX = "# record: "
PYTORCH_INDEX = "https://download.pytorch.org/whl/"
# Local version labels of PyTorch's own index (docs/deploy.md).
PYTORCH_LABEL = re.compile(r"^(cpu|cu\d+|rocm\d+(\.\d+)*|xpu)$")
# The files ginpipe's wheel is built from; their digest says whether a checkout changed.
SOURCE_PATTERNS = ("ginpipe/**/*.py", "ginpipe/configs/**/*.gin", "ginpipe/py.typed")
SOURCE_EXTRA = ("pyproject.toml",)
_NOT_LOCKED = {"pip"}  # the installer: every venv brings its own
_GLOBAL_PIP_FILES = (Path("/etc/pip.conf"),)


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def git_state(cwd: Path | None = None) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the repository holding ``cwd``; None outside git."""
    cwd = cwd or Path.cwd()
    root = _git(["rev-parse", "--show-toplevel"], cwd)
    if root is None:
        return None
    commit = (_git(["rev-parse", "HEAD"], cwd) or "").strip() or None
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd) or ""
    branch = (_git(["rev-parse", "--abbrev-ref", "HEAD"], cwd) or "").strip() or None
    return {"root": root.strip(), "commit": commit, "branch": branch, "dirty": bool(status)}


def git_diff(cwd: Path | None = None) -> str:
    """The uncommitted changes to tracked files (saved with a dirty run)."""
    return _git(["diff", "HEAD"], cwd or Path.cwd()) or ""


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "versions": library_versions(),
    }


def installed_distributions() -> str:
    """The run's environment lock (``environment.txt``): see ``environment_lock``."""
    return environment_lock()


# -- the lock -----------------------------------------------------------------------------------


def normalized(name: str) -> str:
    """A distribution name as package indexes compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Locked:
    """One installed distribution and the line that installs it again."""

    name: str
    version: str
    line: str | None  # None: not installable from an index (said in a comment instead)
    note: str = ""


@dataclass
class Lock:
    """What ``environment.txt`` says: pinned lines, source options, and the record."""

    pins: list[str]
    options: list[str]
    record: dict[str, Any] = field(default_factory=dict)

    def pin(self, name: str) -> str | None:
        """The pinned line of ``name`` (any spelling), or None."""
        wanted = normalized(name)
        for line in self.pins:
            if normalized(re.split(r"[=@ ]", line, maxsplit=1)[0]) == wanted:
                return line
        return None


def environment_lock() -> str:
    """The lock text: comments for people, options and pins for pip, a JSON record."""
    python = sys.version.split()[0]
    pip_config = pip_sources()
    dists = locked_distributions()
    ginpipe_install = ginpipe_origin()
    modules = user_modules()
    sources = local_version_sources(dists, pip_config)
    record = {
        "format": LOCK_FORMAT,
        "python": python,
        "implementation": sys.implementation.name,
        "platform": f"{platform.system()}-{platform.machine()}",
        "ginpipe": ginpipe_install,
        "modules": modules,
        "local_versions": sources,
        "pip_config": pip_config,
    }
    lines = [
        "# The environment this run ran in, at exact versions. Recreate it with",
        "#   pip install --no-deps -r environment.txt",
        "# then ginpipe itself (below); `ginpipe container RUN -o DIR` writes a build context",
        "# that does both (docs/deploy.md).",
        f"# python {python} ({sys.implementation.name}, {record['platform']})",
        f"# ginpipe: {_describe_ginpipe(ginpipe_install)}",
    ]
    lines += [f"# user module {m['module']}: {m['path']} (sha256 {m['sha256']})" for m in modules]
    lines += [f"# not locked: {d.name} {d.version} ({d.note})" for d in dists if d.line is None]
    for name, where in sources.items():
        public = where.get("public")
        if public and public not in where["options"]:
            lines.append(f"# {name} {where['version']}: elsewhere, from {public}")
        if not where["options"]:
            lines.append(f"# {name} {where['version']}: no index known here holds this version")
    lines.append(RECORD_PREFIX + json.dumps(record, sort_keys=True, separators=(",", ":")))
    options = sorted({option for where in sources.values() for option in where["options"]})
    lines += options
    lines += [d.line for d in dists if d.line is not None]
    return "\n".join(lines) + "\n"


def read_lock(path: Path) -> Lock:
    """``environment.txt`` as written by ``environment_lock`` (older ones have no record)."""
    pins, options, record = [], [], {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith(RECORD_PREFIX):
            record = json.loads(line[len(RECORD_PREFIX) :])
        elif line.startswith("--"):
            options.append(line)
        elif line and not line.startswith("#"):
            pins.append(line)
    return Lock(pins, options, record)


def locked_distributions() -> list[Locked]:
    """Every distribution importable here, first on ``sys.path`` first, sorted by name.

    Only distributions installed in a ``site-packages`` folder from an index get a pinned
    line; ginpipe itself, editable installs and metadata left in a source tree (an old
    ``*.egg-info``) are said in comments, since no index can give them back.
    """
    found: dict[str, Locked] = {}
    installed: dict[str, bool] = {}  # per sys.path folder: is it a site-packages folder
    for dist in importlib.metadata.distributions():
        name, version = _name_and_version(dist)
        if not name or not version:
            continue
        key = normalized(name)
        if key in found or key in _NOT_LOCKED:
            continue
        base = str(dist.locate_file(""))
        if base not in installed:
            installed[base] = bool(INSTALL_FOLDERS & set(Path(base).parts))
        found[key] = _locked(dist, name, version, base, installed[base])
    return [found[key] for key in sorted(found)]


def _locked(
    dist: importlib.metadata.Distribution, name: str, version: str, base: str, installed: bool
) -> Locked:
    if normalized(name) == DISTRIBUTION:
        return Locked(name, version, None, "ginpipe itself: see 'ginpipe:' above")
    if not installed:
        return Locked(name, version, None, f"metadata in {base}, not an installed package")
    direct = _direct_url(dist)
    if not direct:
        return Locked(name, version, f"{name}=={version}")
    url = str(direct.get("url", ""))
    if "vcs_info" in direct:
        vcs = direct["vcs_info"]
        return Locked(name, version, f"{name} @ {vcs.get('vcs', 'git')}+{url}@{vcs['commit_id']}")
    if direct.get("dir_info", {}).get("editable"):
        return Locked(name, version, None, f"editable install of {url}")
    if url.startswith(("http://", "https://")):
        return Locked(name, version, f"{name} @ {url}")
    return Locked(name, version, f"{name}=={version}", f"installed from {url}")


def _direct_url(dist: importlib.metadata.Distribution) -> dict[str, Any]:
    """PEP 610's record of a distribution installed from a URL, a file or a folder."""
    text = dist.read_text("direct_url.json")
    if not text:
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _name_and_version(dist: importlib.metadata.Distribution) -> tuple[str | None, str | None]:
    """``Name`` and ``Version`` from the metadata's header lines only.

    ``dist.metadata`` parses the whole file as an e-mail message, long description
    included: ten times slower over a large environment, paid before every run.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name = version = None
    for line in text.splitlines():
        if not line:
            break  # the headers end at the first blank line
        if line.startswith("Name:"):
            name = line[len("Name:") :].strip()
        elif line.startswith("Version:"):
            version = line[len("Version:") :].strip()
    return name, version


# -- where local versions come from ---------------------------------------------------------


def pip_sources() -> dict[str, list[str]]:
    """``index-url``, ``extra-index-url`` and ``find-links`` as pip's configuration gives them
    here: its config files in pip's order (global, user, site, ``PIP_CONFIG_FILE``), then
    ``PIP_*`` variables. Read as files: running pip would cost a second per run."""
    files = [Path(d) / "pip" / "pip.conf" for d in _xdg_config_dirs()]
    files += [*_GLOBAL_PIP_FILES, Path.home() / ".pip" / "pip.conf"]
    files += [_xdg_config_home() / "pip" / "pip.conf", Path(sys.prefix) / "pip.conf"]
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    found: dict[str, list[str]] = {}
    parser = configparser.RawConfigParser()
    for file in files:
        try:
            parser.read(file)
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
    for section in ("global", "install"):
        if parser.has_section(section):
            for key in ("index-url", "extra-index-url", "find-links"):
                if parser.has_option(section, key):
                    found[key] = parser.get(section, key).split()
    for key in ("index-url", "extra-index-url", "find-links"):
        value = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if value:
            found[key] = value.split()
    return found


def _xdg_config_dirs() -> list[str]:
    return [d for d in os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":") if d]


def _xdg_config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def local_version_sources(
    dists: list[Locked], pip_config: dict[str, list[str]]
) -> dict[str, dict[str, Any]]:
    """For each pinned ``name==x+label``: the pip options that find it.

    A folder or ``file://`` index of this machine's pip config that holds its wheel is
    named first (it is where the install came from); PyTorch's index for its labels
    (``+cpu``, ``+cu126``, ``+rocm6.3``) is the public source, used where no local one
    holds it. A local version found nowhere is recorded with no option: the comment says so.
    """
    sources: dict[str, dict[str, Any]] = {}
    listings: dict[str, set[str]] = {}
    for dist in dists:
        if dist.line is None or "+" not in dist.version or " @ " in dist.line:
            continue
        label = dist.version.split("+", 1)[1]
        public = PYTORCH_INDEX + label if PYTORCH_LABEL.match(label) else None
        options = [
            option for option in _local_options(dist, pip_config, listings) if option is not None
        ]
        if not options and public:
            options = [f"--extra-index-url {public}"]
        public_option = f"--extra-index-url {public}" if public else None
        sources[dist.name] = {"version": dist.version, "options": options, "public": public_option}
    return sources


def _local_options(
    dist: Locked, pip_config: dict[str, list[str]], listings: dict[str, set[str]]
) -> list[str | None]:
    wheel_prefix = f"{re.sub(r'[-_.]+', '_', dist.name).lower()}-{dist.version}-"
    options: list[str | None] = []
    for link in pip_config.get("find-links", []):
        folder = _local_folder(link)
        if folder is not None and _holds(folder, wheel_prefix, listings):
            options.append(f"--find-links {link}")
    for key in ("index-url", "extra-index-url"):
        for index in pip_config.get(key, []):
            folder = _local_folder(index)
            page = folder / normalized(dist.name) if folder else None
            if page is not None and _page_holds(page, wheel_prefix):
                options.append(f"--extra-index-url {index}")
    return options


def _local_folder(location: str) -> Path | None:
    if location.startswith("file://"):
        return Path(unquote(urlparse(location).path))
    if "://" in location:
        return None
    return Path(location)


def _holds(folder: Path, wheel_prefix: str, listings: dict[str, set[str]]) -> bool:
    key = str(folder)
    if key not in listings:
        try:
            listings[key] = {name.lower() for name in os.listdir(folder)}
        except OSError:
            listings[key] = set()
    return any(name.startswith(wheel_prefix) for name in listings[key])


def _page_holds(page: Path, wheel_prefix: str) -> bool:
    """A ``file://`` simple index: its project page names the wheel."""
    try:
        text = (page / "index.html").read_text(errors="replace").lower()
    except OSError:
        return False
    return wheel_prefix in text


# -- ginpipe itself -----------------------------------------------------------------------------


def ginpipe_origin() -> dict[str, Any]:
    """How the running ginpipe was installed, and how to install it again.

    ``checkout``: imported from a source tree (editable install or ``PYTHONPATH``); its
    commit, dirty flag and the digest of the files its wheel is built from. ``wheel``: from
    a wheel file (its URL and hash). ``index``: a release, installable by its version.
    """
    package = Path(ginpipe.__file__).resolve().parent
    version = ginpipe.__version__
    if not any(part in INSTALL_FOLDERS for part in package.parts):
        root = package.parent
        origin: dict[str, Any] = {"kind": "checkout", "version": version, "path": str(root)}
        origin.update(_checkout_git(root))
        origin["source_sha256"] = source_digest(root)
        return origin
    direct = _installed_direct_url()
    url = str(direct.get("url", ""))
    if "archive_info" in direct and url.startswith("file://"):
        hashes = direct["archive_info"].get("hashes") or {}
        return {"kind": "wheel", "version": version, "url": url, "sha256": hashes.get("sha256")}
    if direct:
        return {"kind": "direct", "version": version, "url": url}
    return {"kind": "index", "version": version}


def _installed_direct_url() -> dict[str, Any]:
    """ginpipe's own PEP 610 record, from the copy installed in ``site-packages``."""
    for dist in importlib.metadata.distributions():
        name, _ = _name_and_version(dist)
        base = Path(str(dist.locate_file("")))
        if name and normalized(name) == DISTRIBUTION and INSTALL_FOLDERS & set(base.parts):
            return _direct_url(dist)
    return {}


def _checkout_git(root: Path) -> dict[str, Any]:
    """Commit and dirty flag of the checkout, in one ``git status`` call."""
    out = _git(["status", "--porcelain=v2", "--branch", "--untracked-files=no"], root)
    if out is None:
        return {"commit": None, "dirty": None}
    commit = None
    dirty = False
    for line in out.splitlines():
        if line.startswith("# branch.oid "):
            commit = line.split()[2]
            commit = None if commit == "(initial)" else commit
        elif not line.startswith("#"):
            dirty = True
    return {"commit": commit, "dirty": dirty}


def source_files(root: Path) -> list[Path]:
    """The files of a checkout that its wheel is built from, sorted."""
    files = {p for pattern in SOURCE_PATTERNS for p in root.glob(pattern) if p.is_file()}
    files = {p for p in files if "__pycache__" not in p.parts}
    files |= {root / name for name in SOURCE_EXTRA if (root / name).is_file()}
    return sorted(files)


def source_digest(root: Path) -> str:
    """sha256 over the relative paths and contents of ``source_files``."""
    h = hashlib.sha256()
    for path in source_files(root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _describe_ginpipe(origin: dict[str, Any]) -> str:
    name = f"{DISTRIBUTION} {origin['version']}"
    if origin["kind"] == "checkout":
        state = "dirty" if origin.get("dirty") else "clean"
        commit = origin.get("commit") or "no git commit"
        return f"{name} from the checkout {origin['path']} at {commit} ({state})"
    if origin["kind"] == "index":
        return f"{name} from the package index: pip install {DISTRIBUTION}=={origin['version']}"
    return f"{name} from {origin['url']}"


# -- the user's own modules ---------------------------------------------------------------------


def user_modules() -> list[dict[str, str]]:
    """The user's modules whose source went into this run's cache keys (``mymodels`` of
    ``@mymodels.Net``), with the ``__init__.py`` of packages above them: where each lives,
    its path relative to its import root, and its sha256. ginpipe's own files are left out
    (its wheel carries them)."""
    package = str(Path(ginpipe.__file__).resolve().parent) + os.sep
    files = set(project_sources())
    wanted: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name == "__main__" or file not in files:
            continue
        real = os.path.realpath(file)
        if real.startswith(package):
            continue
        wanted.setdefault(real, name)
        parts = name.split(".")
        for depth in range(1, len(parts)):
            parent = sys.modules.get(".".join(parts[:depth]))
            parent_file = getattr(parent, "__file__", None)
            if isinstance(parent_file, str):
                wanted.setdefault(os.path.realpath(parent_file), ".".join(parts[:depth]))
    return [_module_entry(file, name) for file, name in sorted(wanted.items())]


def _module_entry(file: str, name: str) -> dict[str, str]:
    path = Path(file)
    relative = name.replace(".", "/")
    relative = f"{relative}/__init__.py" if path.name == "__init__.py" else f"{relative}.py"
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        digest = "unreadable"
    return {"module": name, "path": file, "relative": relative, "sha256": digest}
