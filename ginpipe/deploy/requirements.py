"""A run's lock, split for an image: exact pins, then torch for the image's accelerator.

``torch==2.13.0+cpu`` comes from PyTorch's CPU index, a CUDA build of the same version from
PyPI (with its ``nvidia-*`` packages), so the torch family and the accelerator packages are
installed in their own step, chosen by ``--cuda``; every other distribution is installed
with ``--no-deps`` at the version the run had.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ginpipe.base.errors import ConfigError
from ginpipe.runs.provenance import PYTORCH_INDEX, PYTORCH_LABEL, Lock, normalized

TORCH_FAMILY = ("torch", "torchvision", "torchaudio")
# Installed by torch itself for its accelerator: never pinned from a lock of another one.
ACCELERATOR_PREFIXES = ("nvidia-", "cuda-", "triton", "pytorch-triton")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)$")


@dataclass(frozen=True)
class ImageRequirements:
    """``requirements.txt`` (installed with ``--no-deps``) and ``torch.txt`` (with deps)."""

    pinned: str
    torch: str
    torch_version: str
    accelerator: str  # "cpu" or "cuda"


def split_lock(lock: Lock, cuda: bool) -> ImageRequirements:
    """The lock's pins for an image, torch chosen for CPU or CUDA."""
    pinned: list[str] = []
    torch_pins: dict[str, str] = {}
    for line in lock.pins:
        name = re.split(r"[=@ ;]", line, maxsplit=1)[0]
        key = normalized(name)
        if key in TORCH_FAMILY:
            match = _PIN.match(line)
            if match is None:
                raise ConfigError(f"the run's lock pins {key} as '{line}': not a version pin")
            torch_pins[key] = match.group(2)
        elif not key.startswith(ACCELERATOR_PREFIXES):
            pinned.append(line)
    if "torch" not in torch_pins:
        raise ConfigError("the run's lock has no torch: it cannot be served by ginpipe")
    lines, index = [], None
    for key in TORCH_FAMILY:
        if key in torch_pins:
            version, index = _variant(torch_pins[key], cuda)
            lines.append(f"{key}=={version}")
    header = [
        "# torch for this image's accelerator (ginpipe container --cuda chooses CUDA);",
        f"# the run had torch=={torch_pins['torch']}.",
    ]
    if index:
        header.append(f"--extra-index-url {index}")
    return ImageRequirements(
        pinned="".join(f"{line}\n" for line in pinned),
        torch="\n".join(header + lines) + "\n",
        torch_version=torch_pins["torch"],
        accelerator="cuda" if cuda else "cpu",
    )


def _variant(version: str, cuda: bool) -> tuple[str, str | None]:
    """The version to install and the index holding it.

    CPU: ``V+cpu`` from PyTorch's CPU index. CUDA: the run's own CUDA build when it had one
    (``+cu126`` from its index, or PyPI's default CUDA build), else PyPI's build of ``V``.
    """
    public, _, label = version.partition("+")
    if not cuda:
        return f"{public}+cpu", PYTORCH_INDEX + "cpu"
    if label.startswith("cu") and PYTORCH_LABEL.match(label):
        return version, PYTORCH_INDEX + label
    return public, None
