"""``ginpipe container RUN -o DIR``: a build context that serves (and predicts with) a run.

    DIR/Dockerfile          slim Python base, entry point `ginpipe serve /app/run`
    DIR/install.sh          the install steps (also usable in a plain venv)
    DIR/requirements.txt    the run's lock, exact pins, installed with --no-deps
    DIR/torch.txt           torch for the image's accelerator (CPU, or CUDA with --cuda)
    DIR/wheels/             ginpipe as the run had it (a wheel of its checkout, or its wheel)
    DIR/code/               the user's own modules the run's code came from
    DIR/run/                what load_run and predict read: config, record, lock, model/
    DIR/context.json        where each of these came from
    DIR/.dockerignore

Nothing is written to DIR until everything is in place: the context is built in a temp
folder beside it, then renamed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ginpipe.base.atomic import TMP_PREFIX, UMASK, file_sha256, fsync_dir, is_temp
from ginpipe.base.errors import ConfigError, PathError
from ginpipe.deploy.recipe import DOCKERIGNORE, dockerfile, install_script
from ginpipe.deploy.requirements import split_lock
from ginpipe.deploy.wheel import ginpipe_for_image
from ginpipe.runs import rundir
from ginpipe.runs.provenance import ENVIRONMENT_FILE, Lock, read_lock

MODEL_DIR = "model"
MODEL_JSON = "model.json"
# What load_run and predict read from a run directory (runview.py, predictor.py): not its
# checkpoints, logs, plots or predictions.
RUN_FILES = (
    rundir.CONFIG,
    rundir.RESOLVED,
    rundir.OPERATIVE,
    rundir.OVERRIDES,
    rundir.RUN_JSON,
    "metrics.json",
    ENVIRONMENT_FILE,
)
CONTEXT_JSON = "context.json"


def write_context(
    run_dir: Path,
    out: Path,
    *,
    cuda: bool = False,
    force: bool = False,
    allow_changed: bool = False,
) -> str:
    """Write the build context of ``run_dir`` to ``out``; the summary to print."""
    run = _checked_run(run_dir)
    lock = _checked_lock(run_dir)
    _check_output(out, run_dir, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{out.name}-", dir=out.parent))
    try:
        facts = _fill(temp, run_dir, run, lock, cuda, allow_changed)
        os.chmod(temp, 0o777 & ~UMASK)  # a folder like any other, not mkdtemp's 0700
        _replace(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return _summary(out, facts)


def _checked_run(run_dir: Path) -> rundir.RunDir:
    run = rundir.RunDir(run_dir)
    if not run.exists():
        raise ConfigError(f"not a run directory (no {rundir.CONFIG}): {run_dir}")
    rundir.check_intact(run)
    rundir.check_no_symlinks(run)
    if not (run_dir / MODEL_DIR / MODEL_JSON).is_file():
        raise ConfigError(
            f"{run_dir} has no {MODEL_DIR}/{MODEL_JSON} (its evaluate step has not "
            f"completed): resume it with `ginpipe resume {run_dir}`, then build its container"
        )
    return run


def _checked_lock(run_dir: Path) -> Lock:
    path = run_dir / ENVIRONMENT_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir} has no {ENVIRONMENT_FILE}: resume it to record one")
    try:
        lock = read_lock(path)
    except ValueError as e:
        raise ConfigError(f"{path}: its '# record:' line is not JSON ({e})") from e
    if not lock.record.get("ginpipe"):
        raise ConfigError(
            f"{path} is a plain list of versions from before locks recorded how to install "
            f"ginpipe: resume the run (`ginpipe resume {run_dir}`) to record one"
        )
    return lock


def _check_output(out: Path, run_dir: Path, force: bool) -> None:
    run, target = run_dir.resolve(), out.resolve()
    if target == run or run in target.parents or target in run.parents:
        raise ConfigError(
            f"-o {out} holds or is inside the run directory {run_dir}: name a folder elsewhere"
        )
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise PathError(f"-o {out} exists and is not a folder: name a new folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise PathError(f"-o {out} exists and is not empty: pass --force to replace it")


def _fill(
    temp: Path, run_dir: Path, run: rundir.RunDir, lock: Lock, cuda: bool, allow_changed: bool
) -> dict[str, Any]:
    record = lock.record
    requirements = split_lock(lock, cuda)
    ginpipe = ginpipe_for_image(record["ginpipe"], temp / "wheels", allow_changed)
    modules = _copy_modules(record.get("modules") or [], temp / "code", allow_changed)
    copied = _copy_run(run_dir, temp / "run")
    python = ".".join(str(record.get("python", "3.11")).split(".")[:2])
    (temp / "requirements.txt").write_text(
        "# The run's lock (run/environment.txt): every distribution at its version, but the\n"
        "# torch family and its accelerator packages (torch.txt) and ginpipe (wheels/).\n"
        + requirements.pinned
    )
    (temp / "torch.txt").write_text(requirements.torch)
    (temp / "install.sh").write_text(install_script(ginpipe.spec))
    (temp / "Dockerfile").write_text(dockerfile(python, run.name))
    (temp / ".dockerignore").write_text(DOCKERIGNORE)
    for folder in ("wheels", "code"):
        (temp / folder).mkdir(exist_ok=True)
        if not any((temp / folder).iterdir()):
            (temp / folder / ".keep").write_text("")
    facts = {
        "run": str(run_dir.resolve()),
        "run_name": run.name,
        "python": python,
        "accelerator": requirements.accelerator,
        "torch": requirements.torch_version,
        "ginpipe": {**record["ginpipe"], "installed_as": ginpipe.spec, "note": ginpipe.note},
        "ginpipe_changed_since_run": ginpipe.changed,
        "modules": modules,
        "run_files": copied,
    }
    (temp / CONTEXT_JSON).write_text(json.dumps(facts, indent=2) + "\n")
    return facts


def _copy_modules(
    modules: list[dict[str, str]], code: Path, allow_changed: bool
) -> list[dict[str, Any]]:
    """Each module the lock names, checked against its recorded sha256, to ``code/``."""
    copied = []
    for module in modules:
        source, relative = Path(module["path"]), Path(module["relative"])
        if relative.is_absolute() or ".." in relative.parts:
            raise ConfigError(f"the run's lock names a module path outside its folder: {relative}")
        if not source.is_file():
            raise ConfigError(
                f"the run's module {module['module']} is gone from {source}: put it back, "
                "then build the container"
            )
        changed = file_sha256(source) != module["sha256"]
        if changed and not allow_changed:
            raise ConfigError(
                f"the run's module {module['module']} ({source}) changed since the run: "
                "restore it, or pass --allow-changed to use it as it is now"
            )
        target = code / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        copied.append({**module, "changed_since_run": changed})
    return copied


def _copy_run(run_dir: Path, dest: Path) -> list[str]:
    """The files load_run and predict read; the model folder whole (no temp leftovers)."""
    dest.mkdir(parents=True)
    copied = []
    for name in RUN_FILES:
        source = run_dir / name
        if source.is_file() and not source.is_symlink():
            shutil.copy2(source, dest / name)
            copied.append(name)
    model = run_dir / MODEL_DIR
    for source in sorted(model.rglob("*")):
        if source.is_symlink():
            raise ConfigError(f"{source} is a symbolic link: a run's model files are its own")
        if source.is_file() and not is_temp(source) and "__pycache__" not in source.parts:
            relative = source.relative_to(run_dir)
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / relative)
            copied.append(relative.as_posix())
    return copied


def _replace(temp: Path, out: Path) -> None:
    """``temp`` becomes ``out``; an existing ``out`` (empty, or with --force) is removed
    only once the new one is in its place."""
    old = None
    if out.is_dir():
        old = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{out.name}-old-", dir=out.parent))
        os.rmdir(old)
        os.replace(out, old)
    try:
        os.replace(temp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    fsync_dir(out.parent)
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)


def image_name(run_name: str) -> str:
    """A valid image name from a run name (lower case, [a-z0-9._-])."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", run_name.lower()).strip("-._")
    return f"ginpipe-{cleaned or 'run'}"


def _summary(out: Path, facts: dict[str, Any]) -> str:
    image = image_name(str(facts["run_name"]))
    modules = len(facts["modules"])
    mods = f", {modules} module{'s' if modules != 1 else ''} of the run's own" if modules else ""
    return (
        f"build context: {out} (torch {facts['torch']} -> {facts['accelerator']}; "
        f"ginpipe: {facts['ginpipe']['note']}{mods})\n"
        f"  docker build -t {image} {out}\n"
        f"  docker run --rm -p 8000:8000 {image}"
    )
