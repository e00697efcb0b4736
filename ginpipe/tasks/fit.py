"""The ``fit`` task: train a network on ``data`` with a gin-configured Lightning Trainer."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeGuard

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.loggers import Logger, TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ginpipe import (
    AtLeast,
    CheckpointError,
    ConfigError,
    DataError,
    NonNegative,
    Positive,
    TaskView,
    bound_class,
    bound_value,
    constrain,
    did_you_mean,
    is_bound,
    requires,
    task,
)
from ginpipe.tasks.data.datasets import make_dataset
from ginpipe.tasks.lightning.checkpoints import (
    check_checkpoint_fits,
    find_resume_checkpoint,
    read_checkpoint,
)
from ginpipe.tasks.lightning.classifier import (
    LOGGED_METRICS,
    Classifier,
    network_weights_from_checkpoint,
)
from ginpipe.tasks.lightning.csv_logger import ContinuingCSVLogger
from ginpipe.tasks.lightning.factories import plain_factory
from ginpipe.tasks.lightning.monitor_probe import check_monitor
from ginpipe.tasks.lightning.reproducibility import (
    EpochSeeding,
    epoch_in_progress,
    epoch_shuffling_sampler,
)
from ginpipe.tasks.lightning.trainer import (
    build_trainer,
    checkpoint_callbacks,
    extra_loggers,
    fit_logging_interval,
    refuse_spawned_ranks,
    refuse_trainer_args_owned_by_fit,
    with_run,
)
from ginpipe.tasks.lightning.workers import ignore_stop_signals, training_errors, worker_context
from ginpipe.tasks.models import factory_name, model_record

CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"
NO_MODEL = "no model chosen: add a model config, e.g. configs/models/resnet.gin"


# fit's parameters that only apply when fit wraps a plain network in its classifier.
CLASSIFIER_ONLY = ("optimizer", "scheduler", "scheduler_interval", "loss")


# What Lightning refuses once training starts, refused before any task runs instead.
constrain(
    pl.Trainer,
    max_epochs=AtLeast(-1, "-1: no limit"),
    max_steps=AtLeast(-1, "-1: no limit"),
    min_epochs=NonNegative,
    min_steps=NonNegative,
    num_nodes=Positive,
    accumulate_grad_batches=Positive,
)
# Lightning's TensorBoardLogger imports either package only when it is created.
requires(TensorBoardLogger, "tensorboard", "tensorboardX")
# Monitor names Lightning offers besides the logged metrics.
TRAINER_MONITORS = ("epoch", "step")


def check_fit_config() -> None:
    """Settings fit refuses; the runner calls this before any task starts."""
    refuse_trainer_args_owned_by_fit()
    refuse_spawned_ranks()
    refuse_bindings_a_lightning_module_ignores()
    refuse_unknown_monitor()


def refuse_unknown_monitor() -> None:
    """fit.monitor must be a metric the classifier logs. A LightningModule logs what it
    likes (checked after its first validation, see ``MonitorCheck``), and so may extra
    callbacks: neither is checked here."""
    monitor = bound_value(fit, "monitor", None)
    model = bound_class(fit, "model")
    if not isinstance(monitor, str) or model is None or is_lightning_module(model):
        return
    if bound_value(fit, "callbacks", ()):
        return
    known = (*LOGGED_METRICS, *TRAINER_MONITORS)
    if monitor not in known:
        raise ConfigError(
            f"fit.monitor={monitor!r} is not logged while training; the classifier logs "
            f"{', '.join(LOGGED_METRICS)}{did_you_mean(monitor, known)}",
            binding="fit.monitor",
        )


def refuse_bindings_a_lightning_module_ignores() -> None:
    """A LightningModule configures its own optimizers and computes its own loss: a binding
    of fit.optimizer (scheduler, loss) would be silently ignored, so it is refused."""
    model = bound_class(fit, "model")
    if model is None or not is_lightning_module(model):
        return
    for parameter in CLASSIFIER_ONLY:
        if is_bound(fit, parameter):
            raise ConfigError(
                f"fit.{parameter} is set, but fit.model {model.__name__} is a LightningModule "
                f"that trains with its own steps and optimizers; remove fit.{parameter} (or "
                "the model config that sets it) and configure them in the module"
            )


def is_lightning_module(model: Any) -> TypeGuard[type[pl.LightningModule]]:
    return inspect.isclass(model) and issubclass(model, pl.LightningModule)


def data_arguments(model: Callable[..., Any], num_classes: int, input_shape: list[int]) -> dict:
    """What a model class receives from the data: ``num_classes`` and ``input_shape``.

    A plain network always gets both (the documented contract); a LightningModule gets
    those its ``__init__`` accepts, so a module with its own signature still works.
    """
    offered = {"num_classes": num_classes, "input_shape": input_shape}
    if not is_lightning_module(model):
        return offered
    params = inspect.signature(model.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return offered
    return {name: value for name, value in offered.items() if name in params}


@task(
    reads=("data", "seed"),
    writes=("model",),
    all_ranks=True,  # under DDP every rank trains
    pinned=True,  # checkpoints and the model hold only for the data they were trained on
    # a run reusing this fit gets its checkpoints (written by replacing files: linked) and
    # its training log (appended: copied)
    run_files={CHECKPOINT_DIR: "link", LOG_DIR: "copy"},
    uses=("pytorch_lightning.Trainer",),  # built inside: its bindings decide the result
    hints={"model": NO_MODEL},
    check=check_fit_config,
)
def fit(
    state: TaskView,
    *,
    model: Callable[..., nn.Module] | None = None,
    optimizer: Callable[..., torch.optim.Optimizer] = torch.optim.AdamW,
    scheduler: Callable[..., Any] | None = None,
    scheduler_interval: Literal["step", "epoch"] = "step",
    loss: Callable[[], nn.Module] = nn.CrossEntropyLoss,
    batch_size: Annotated[int, Positive] = 64,
    num_workers: Annotated[int, NonNegative] = 0,
    multiprocessing_context: Literal["spawn", "fork", "forkserver"] | None = None,
    callbacks: Sequence[Callback] = (),
    loggers: Sequence[Callable[..., Logger]] = (),
    monitor: str = "val_acc",
    monitor_mode: Literal["min", "max"] = "max",
    save_top_k: Annotated[int, AtLeast(-1, "-1: keep all")] = 1,
    checkpoint_every_n_steps: Annotated[int, Positive] | None = None,
) -> dict[str, Any]:
    """Train ``model`` on the train split; keep the weights of the best epoch on val.

    Every Trainer argument except those fit owns (callbacks, logger, plugins,
    default_root_dir) comes from ``Trainer.*`` bindings. Under DDP each rank trains on its
    own shard of every epoch and only rank 0 writes files (Lightning's rank-zero saving).

    Files, all in the run directory: ``checkpoints/last.ckpt`` (every epoch, and every
    ``checkpoint_every_n_steps`` steps if set), the best ``save_top_k`` checkpoints by
    ``monitor``, ``checkpoints/on_exception.ckpt`` when training raises (Ctrl-C included;
    Lightning deletes it after a run that ends normally), and ``logs/metrics.csv``
    (train_loss, train_acc, val_loss, val_acc per epoch). Checkpoints are serialized when
    Lightning saves them and written atomically on a worker thread while training goes on
    (``BackgroundCheckpointIO``); they load with ``torch.load(weights_only=True)``.

    Resuming: when ``last.ckpt`` or ``on_exception.ckpt`` exists (the newest wins),
    training continues from it: epochs, global step, optimizer and scheduler state, and
    the rows of ``metrics.csv``. A checkpoint that is damaged or does not fit the model
    raises ``CheckpointError``. The train order is a function of (seed, epoch) and the
    random generators are reseeded from (seed, epoch) when each epoch starts, so on CPU
    with deterministic algorithms, a run resumed from an end-of-epoch checkpoint ends with
    the same weights as an uninterrupted one.

    A mid-epoch checkpoint (``checkpoint_every_n_steps``, or an exception) restores the
    global step and the epoch's batch count, but Lightning cannot restore the position of
    a plain DataLoader (it warns "your dataloader is not resumable"): the interrupted epoch
    restarts from the first batch of its (seed, epoch) order and ends once the epoch's
    batch count is reached, so that epoch sees its first batches twice and its last ones
    not at all, and its generators are not reseeded. Later epochs are unaffected. Such a
    run is close to, not identical with, an uninterrupted one.

    Args:
        model: a gin model class, e.g. ``@ResNet``; called with ``num_classes`` and
            ``input_shape`` from the data, every other argument from its bindings.
        optimizer: ``factory(params)``, e.g. ``@AdamW`` with ``AdamW.lr = 1e-3``.
        scheduler: ``factory(optimizer)`` or None; an unset ``total_steps``
            (OneCycleLR) or ``T_max`` (CosineAnnealingLR) becomes the length of training.
        scheduler_interval: ``"step"`` or ``"epoch"``: when the scheduler steps.
        loss: factory of the criterion, e.g. ``@CrossEntropyLoss``.
        num_workers, multiprocessing_context: DataLoader workers (None, "spawn", "fork",
            "forkserver"; "spawn" avoids forking a process that holds threads).
        callbacks: extra Lightning callbacks.
        loggers: extra logger factories, each called with ``save_dir=logs/<kind>``.
        monitor, monitor_mode, save_top_k: how the best checkpoints are ranked and kept.
        checkpoint_every_n_steps: also refresh ``last.ckpt`` every N training steps.

    Returns:
        ``{"model": record}`` with the best checkpoint's weights (see
        docs/state-keys.md); ``ginpipe.tasks.models.build_model`` rebuilds the network.
    """
    if model is None:
        raise ConfigError(NO_MODEL)
    check_fit_config()
    data, seed, run_dir = state["data"], state["seed"], Path(state.run.dir)
    train_set, val_set = make_dataset(data, "train"), make_dataset(data, "val")
    if len(train_set) == 0 or len(val_set) == 0:
        raise DataError("fit needs non-empty train and val splits")

    num_classes = int(data["num_classes"])
    input_shape = [int(size) for size in data["input_shape"]]
    model_kwargs = data_arguments(model, num_classes, input_shape)
    if is_lightning_module(model):
        # Trained as itself: its own steps, optimizers, schedulers and logged metrics.
        module = model(**model_kwargs)
        state.not_used(*CLASSIFIER_ONLY)
    else:
        module = Classifier(
            model(**{**model_kwargs, "input_shape": tuple(input_shape)}),
            num_classes=num_classes,
            optimizer=plain_factory(optimizer),
            loss=loss(),
            scheduler=plain_factory(scheduler) if scheduler is not None else None,
            scheduler_interval=scheduler_interval,
        )

    checkpoint_dir = run_dir / CHECKPOINT_DIR
    best_checkpoints, own_callbacks = checkpoint_callbacks(
        checkpoint_dir, monitor, monitor_mode, save_top_k, checkpoint_every_n_steps
    )
    csv_logger = ContinuingCSVLogger(run_dir / LOG_DIR)
    trainer = build_trainer(
        run_dir,
        callbacks=[*own_callbacks, EpochSeeding(seed), *with_run(callbacks, state.run)],
        loggers=[csv_logger, *extra_loggers(loggers, run_dir / LOG_DIR, state.run)],
    )
    loader_options = {
        "batch_size": batch_size,
        "num_workers": num_workers,
        "multiprocessing_context": worker_context(multiprocessing_context) if num_workers else None,
        "persistent_workers": num_workers > 0,
        "worker_init_fn": ignore_stop_signals,  # Ctrl-C/SIGTERM are the main process's job
    }
    train_sampler = epoch_shuffling_sampler(train_set, seed, trainer)
    train_loader = seeded_loader(train_set, seed, sampler=train_sampler, **loader_options)
    val_loader = seeded_loader(val_set, seed, shuffle=False, **loader_options)
    fit_logging_interval(trainer, len(train_loader))

    resume_from = find_resume_checkpoint(checkpoint_dir)
    # A LightningModule's metric names are known only once it has logged them; under DDP,
    # Lightning's own check after the first validation stands.
    probe = is_lightning_module(model) and save_top_k != 0 and state.run.world_size == 1
    if probe and resume_from is None:
        check_monitor(monitor, module, train_set, val_set, trainer.accelerator)
    first_step = 0
    if resume_from is not None:
        first_step = prepare_resume(resume_from, module, train_sampler)
    # Rows of the steps about to run (again) go; without a checkpoint that is all of them.
    csv_logger.experiment.forget_rows_from(first_step)
    with warnings.catch_warnings(), training_errors():
        # Given an OnExceptionCheckpoint, Lightning turns ckpt_path=None into "last" and
        # warns that it does; fit has already chosen (and checked) the checkpoint.
        warnings.filterwarnings("ignore", message=r"`?\.fit\(ckpt_path=")
        trainer.fit(module, train_loader, val_loader, ckpt_path=resume_from, weights_only=True)

    best_path, weights = best_weights(best_checkpoints, module, checkpoint_dir)
    best_name = f"{CHECKPOINT_DIR}/{best_path.name}" if best_path is not None else None
    record = model_record(
        factory_name(model), model_kwargs, weights, best_name, trainer.current_epoch
    )
    return {"model": record}


# A run directory's checkpoints hold only for the data they were trained on.


def seeded_loader(dataset: Dataset, seed: int, **options: Any) -> DataLoader:
    """A DataLoader with its own generator: creating its iterator then draws nothing from
    the global RNG, whose state inside an epoch would otherwise depend on when Lightning
    creates the iterator (which differs between a fresh and a resumed process)."""
    return DataLoader(dataset, generator=torch.Generator().manual_seed(seed), **options)


def prepare_resume(
    checkpoint_path: Path, module: pl.LightningModule, train_sampler: DistributedSampler
) -> int:
    """Check that the checkpoint fits, line up the sampler with it, and return its global
    step (the first step the resumed run trains)."""
    checkpoint = check_checkpoint_fits(checkpoint_path, module)
    # With workers, Lightning builds the first iterator of a process before it calls
    # set_epoch, so the workers would prefetch the order of epoch 0.
    train_sampler.set_epoch(epoch_in_progress(checkpoint))
    return int(checkpoint["global_step"])


def best_weights(
    best_checkpoints: ModelCheckpoint, module: pl.LightningModule, checkpoint_dir: Path
) -> tuple[Path | None, dict[str, torch.Tensor]]:
    """The best checkpoint's path and model weights; the final weights if none was ranked
    (e.g. the monitored metric was never logged). For fit's classifier the weights are the
    wrapped network's; a LightningModule trained as itself keeps all of its own.

    Only the file name of Lightning's ``best_model_path`` is used: the file is read from this
    run's own checkpoint folder, never from wherever the run directory was before a move.
    """
    if not best_checkpoints.best_model_path:
        final = module.network if isinstance(module, Classifier) else module
        return None, final.state_dict()
    best_path = checkpoint_dir / Path(best_checkpoints.best_model_path).name
    if not best_path.is_file():
        raise CheckpointError(
            f"the best checkpoint {best_path.name} that last.ckpt names is missing from "
            f"{checkpoint_dir}; restore it, or start a new run"
        )
    checkpoint = read_checkpoint(best_path)
    if isinstance(module, Classifier):
        return best_path, network_weights_from_checkpoint(checkpoint)
    return best_path, dict(checkpoint["state_dict"])
