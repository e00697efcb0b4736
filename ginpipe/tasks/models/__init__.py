"""Networks that ``fit`` trains, and the storable record that describes a trained one.

A model record holds no Python objects, only the gin name of the model class, its keyword
arguments and its weights, so the store can save it without pickle and ``evaluate`` (in
this or a later process) rebuilds the same network with ``build_model``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

import gin
import torch
from torch import nn

from ginpipe import CheckpointError, ConfigError
from ginpipe.tasks.engine import selector_of


def factory_name(factory: Callable[..., nn.Module]) -> str:
    """The name the config knows a model class by, e.g. ``ginpipe.tasks.models.resnet.ResNet``
    or ``mymodels.Net`` (any class named by its dotted path is configurable)."""
    name = selector_of(factory)
    if name is None:
        raise ConfigError(
            f"fit.model must be a model class named in the config (e.g. @ResNet or "
            f"@mymodels.Net), got {factory!r}"
        )
    return name


def model_record(
    factory: str,
    kwargs: Mapping[str, Any],
    weights: Mapping[str, torch.Tensor],
    best_checkpoint: str | None,
    epochs: int,
) -> dict[str, Any]:
    """The ``model`` state value (see docs/state-keys.md)."""
    return {
        "factory": factory,
        "kwargs": dict(kwargs),
        "weights": {name: tensor.detach().cpu().contiguous() for name, tensor in weights.items()},
        "best_checkpoint": best_checkpoint,
        "epochs": int(epochs),
    }


def build_model(record: Mapping[str, Any]) -> nn.Module:
    """Rebuild the trained network of a model record, in eval mode.

    The class gets its gin bindings as at training time (the record's cache key covers the
    config), plus the recorded keyword arguments; weights load strictly.
    """
    try:
        factory = gin.get_configurable(record["factory"])
    except ValueError as error:
        raise ConfigError(
            f"model class '{record['factory']}' is not registered with gin; "
            f"import its module in the config"
        ) from error
    network = factory(**record["kwargs"])
    try:
        network.load_state_dict(record["weights"], strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[1:2] or [str(error)]
        raise CheckpointError(
            f"weights do not fit {record['factory']} with the current config: "
            f"{first_line[0].strip()}"
        ) from error
    return network.eval()


def logits(network: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class scores for a batch of inputs: ``forward(x)``, or for a LightningModule that
    defines its own ``predict_step``, ``predict_step(x, 0)`` (it receives the inputs only:
    prediction has no labels). Lightning is not imported for it: a network can only be a
    LightningModule if Lightning is loaded already, and prediction never needs it otherwise
    (its import costs seconds)."""
    pl = sys.modules.get("pytorch_lightning")
    if (
        pl is not None
        and isinstance(network, pl.LightningModule)
        and type(network).predict_step is not pl.LightningModule.predict_step
    ):
        return network.predict_step(x, 0)
    return network(x)
