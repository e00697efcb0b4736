"""Expose third-party callables to gin configs without decorating them.

After ``register_all()`` a config can say ``Trainer.max_epochs = 20``,
``fit.optimizer = @AdamW`` or ``fit.callbacks = [@EarlyStopping()]``. Every name is also
reachable module-qualified (``torch.optim.AdamW``, ``pytorch_lightning.Trainer``), which
is what to use if a short name is ever ambiguous.

This module imports torch and Lightning; the CLI imports it only for commands that parse
configs.
"""

from __future__ import annotations

import inspect
from types import ModuleType

import gin

_registered = False


def _classes(module: ModuleType, base: type, names: list[str] | None = None) -> list[type]:
    names = names if names is not None else list(getattr(module, "__all__", vars(module)))
    found = []
    for name in names:
        obj = getattr(module, name, None)
        if inspect.isclass(obj) and issubclass(obj, base) and not name.startswith("_"):
            found.append(obj)
    return found


def _register(objs: list[type], module: str) -> None:
    for obj in objs:
        if not gin.config._REGISTRY.get_match(f"{module}.{obj.__name__}"):
            gin.external_configurable(obj, name=obj.__name__, module=module)


def register_all() -> None:
    """Register torch.optim (+ lr_scheduler), torch.nn losses and activations, the Lightning
    Trainer, callbacks and loggers, and torchmetrics metrics. Idempotent."""
    global _registered
    if _registered:
        return
    import pytorch_lightning as pl
    import torch
    import torchmetrics
    from torch.optim import lr_scheduler

    optimizers = _classes(torch.optim, torch.optim.Optimizer, dir(torch.optim))
    _register([o for o in optimizers if o is not torch.optim.Optimizer], "torch.optim")
    schedulers = [
        o
        for o in _classes(lr_scheduler, object, dir(lr_scheduler))
        if o.__module__ == lr_scheduler.__name__
        and o.__name__[0].isupper()
        and o.__name__ not in {"LRScheduler", "Optimizer", "Tensor"}
    ]
    _register(schedulers, "torch.optim.lr_scheduler")

    nn_names = [n for n in dir(torch.nn) if n.endswith("Loss")]
    nn_names += list(torch.nn.modules.activation.__all__)
    nn_names += ["Linear", "Conv2d", "Dropout", "Identity", "Sequential", "Flatten"]
    _register(_classes(torch.nn, torch.nn.Module, nn_names), "torch.nn")

    _register([pl.Trainer], "pytorch_lightning")
    callbacks = _classes(pl.callbacks, pl.Callback)
    _register([c for c in callbacks if c is not pl.Callback], "pytorch_lightning.callbacks")
    loggers = _classes(pl.loggers, pl.loggers.Logger)
    _register([c for c in loggers if c is not pl.loggers.Logger], "pytorch_lightning.loggers")

    metrics = _classes(torchmetrics, torchmetrics.Metric)
    _register([m for m in metrics if m is not torchmetrics.Metric], "torchmetrics")
    _registered = True
