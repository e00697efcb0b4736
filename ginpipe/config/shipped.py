"""The configs that ship inside the package, and how a config argument finds its file.

``ginpipe run base models/resnet`` works from any folder: an argument is a local file if
one exists (``.gin`` optional), else the shipped config of that name. A leading
``configs/`` is accepted too, so the README's ``configs/base.gin`` resolves to the shipped
file where the folder has no ``configs/`` of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ginpipe.base.atomic import atomic_write_bytes
from ginpipe.base.errors import ConfigError
from ginpipe.base.suggest import did_you_mean

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "configs"
SUFFIX = ".gin"
LOCAL_PREFIX = "configs/"


@dataclass(frozen=True)
class ShippedConfig:
    name: str  # "models/resnet"
    path: Path
    summary: str  # the first comment line


def shipped_configs() -> list[ShippedConfig]:
    """Every shipped config, sorted by name."""
    found = []
    for path in sorted(SHIPPED_DIR.rglob(f"*{SUFFIX}")):
        name = path.relative_to(SHIPPED_DIR).with_suffix("").as_posix()
        found.append(ShippedConfig(name, path, _summary(path)))
    return found


def _summary(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            break
    return ""


def shipped_path(name: str) -> Path | None:
    """The shipped file for ``models/resnet``, ``models/resnet.gin`` or
    ``configs/models/resnet.gin``; None if there is none."""
    relative = name[len(LOCAL_PREFIX) :] if name.startswith(LOCAL_PREFIX) else name
    if not relative or Path(relative).is_absolute() or ".." in Path(relative).parts:
        return None
    for candidate in (SHIPPED_DIR / relative, SHIPPED_DIR / f"{relative}{SUFFIX}"):
        if candidate.suffix == SUFFIX and candidate.is_file():
            return candidate
    return None


def resolve_config(argument: str | Path) -> Path:
    """The file a config argument names: a local file wins, then a shipped config."""
    text = str(argument)
    local = Path(text)
    for candidate in (local, Path(f"{text}{SUFFIX}")):
        if candidate.is_file():
            return candidate
    shipped = shipped_path(text)
    if shipped is not None:
        return shipped
    if local.is_dir():
        raise ConfigError(f"config file is a directory: {local}")
    # Suggest in the form the argument was typed: with or without configs/ and .gin.
    prefix = LOCAL_PREFIX if text.startswith(LOCAL_PREFIX) else ""
    suffix = SUFFIX if text.endswith(SUFFIX) else ""
    names = [f"{prefix}{c.name}{suffix}" for c in shipped_configs()]
    if local.parent.is_dir():
        names += [(local.parent / p.name).as_posix() for p in local.parent.glob(f"*{SUFFIX}")]
    hint = did_you_mean(text, names) or "; `ginpipe configs` lists the shipped ones"
    raise ConfigError(f"config file not found: {text}{hint}")


def copy_shipped(name: str, destination: Path, *, force: bool = False) -> Path:
    """Copy a shipped config to edit it; refuses to overwrite unless ``force``."""
    source = shipped_path(name)
    if source is None:
        hint = did_you_mean(name.removesuffix(SUFFIX), [c.name for c in shipped_configs()])
        raise ConfigError(f"no shipped config named {name!r}{hint}; see `ginpipe configs`")
    target = destination / source.name if destination.is_dir() else destination
    if target.is_symlink():
        # even with --force: writing through it would put the copy wherever the link points
        raise ConfigError(f"{target} is a symbolic link; copy to a plain file name")
    if target.exists() and not force:
        raise ConfigError(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, source.read_bytes())
    return target
