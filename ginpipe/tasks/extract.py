"""The ``extract_features`` task: slow per-item features, computed once, kept in shards.

Where ``make_features`` leaves file items to be decoded every epoch (fast features), this
step applies an expensive per-item function (a log-mel spectrogram, an embedding...) to
every item of every split once, in a process pool, and stores the results as
memory-mappable shards that ``fit`` and ``evaluate`` read (``data`` kind ``shards``, see
docs/state-keys.md). The cache is per item, not per task: new or changed files are
computed, the others reused, and a killed run keeps every shard it finished.

The task itself is not cached (``cache=False``): it runs every time, which costs a scan
of the shard manifests when nothing changed, and checks the shards before training reads
them. Its output key still depends only on its code, parameters and inputs, so ``fit``
can be reused from the cache as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from ginpipe import ConfigError, DataError, NonNegative, Positive, TaskView, task
from ginpipe.tasks.data import audio_features, callables
from ginpipe.tasks.data.decoders import ImageDecoder
from ginpipe.tasks.data.extraction import Context, extract, extract_share, feature_key
from ginpipe.tasks.data.shards import VerifyMode
from ginpipe.tasks.split import SPLIT_NAMES

# Beside the artifact store: ROOT/.cache/features/<feature key>/ (RunContext.cache_dir)
FEATURES_DIR = "features"
# Importing this module registers log_mel and mfcc with gin (`extract_features.function`).
REGISTERS = (audio_features.log_mel, audio_features.mfcc)
NO_FUNCTION = "set the per-item feature function, e.g. extract_features.function = @log_mel()"


@task(
    reads=("dataset", "splits"),
    writes=("data",),
    cache=False,
    hints={"function": NO_FUNCTION},
    array=True,
)
def extract_features(
    state: TaskView,
    *,
    function: Callable[[np.ndarray], np.ndarray] | None = None,
    decoder: Callable[[str], np.ndarray] | None = None,
    shard_size: Annotated[int, Positive] = 256,
    workers: Annotated[int, NonNegative] | None = None,
    multiprocessing_context: Context = "fork",
    normalize: bool = True,
    verify: VerifyMode = "stat",
    store: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """``data`` of kind ``shards``: ``function(decoder(path))`` of every item, on disk.

    Args:
        function: the per-item feature, ``function(array) -> array`` of one fixed shape,
            e.g. ``@log_mel()`` or ``@mfcc()``, or any importable function of the user's
            (a dataclass instance or ``functools.partial`` carries parameters).
        decoder: overrides the dataset's decoder (``load_table.decoder``); the default is
            the dataset's, and for images ``image_decoder()`` (every image one size).
        shard_size: items per shard: the unit of work, of commit and of loss on a kill.
        workers: pool processes (default: the usable cores); 0 computes in this process.
        multiprocessing_context: ``fork`` (default where available: workers start with
            the libraries loaded; they die with the run), ``forkserver`` or ``spawn``.
            Workers receive plain specs, never gin state, so every method works.
        normalize: standardize the features with a scalar mean and std of the train items
            (from per-item sums kept in the manifests: no second pass over the data).
        verify: ``stat`` hashes a shard only when its size or mtime changed since it was
            written; ``sha256`` hashes every shard at every run.
        store: the folder for the feature folders (default: ``features`` beside the
            artifact store, ``ROOT/.cache/features``).
        progress: show a progress bar while computing.

    Sent to a cluster as a job array (``executors.array = {'extract_features': 4}``,
    ``ginpipe/core/jobs.py``), each element computes and commits only its share of
    the shards and returns ``{"kind": "share", "computed": n}``, which nothing stores;
    the run then calls this task once more, which finds every shard done and assembles
    ``data``.
    """
    if function is None:
        raise ConfigError(NO_FUNCTION)
    dataset, splits = state["dataset"], state["splits"]
    if dataset["kind"] != "files":
        raise ConfigError(
            "extract_features needs a dataset of files (load_table or load_folder); "
            f"this one is '{dataset['kind']}'"
        )
    function_spec = callables.to_spec(function, "extract_features.function")
    decoder_spec = _decoder_spec(dataset, decoder)
    root = Path(store).expanduser().absolute() if store else _default_store(state)
    directory = root / feature_key(decoder_spec, function_spec)

    table = dataset["table"]
    rows = np.unique(np.concatenate([np.asarray(splits[name], np.int64) for name in SPLIT_NAMES]))
    paths = table["path"].to_numpy()[rows]  # object array: no per-item copy of the strings
    share = state.share
    if share is not None:
        computed = extract_share(
            paths,
            directory,
            decoder_spec,
            function_spec,
            share,
            shard_size=shard_size,
            workers=_workers(workers),
            context=multiprocessing_context,
            verify=verify,
            progress=progress,
        )
        return {"data": {"kind": "share", "computed": computed}}
    extracted = extract(
        paths,
        directory,
        decoder_spec,
        function_spec,
        shard_size=shard_size,
        workers=_workers(workers),
        context=multiprocessing_context,
        verify=verify,
        progress=progress,
    )
    position = np.full(len(table), -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    labels = table["y"].to_numpy(dtype=np.int64)
    data: dict[str, Any] = {"kind": "shards"}
    for name in SPLIT_NAMES:
        items = position[np.asarray(splits[name], np.int64)]
        data[name] = {
            "shard": extracted.shard_of[items],
            "row": extracted.row_of[items],
            "y": labels[np.asarray(splits[name], np.int64)],
        }
    classes = list(dataset["classes"])
    data.update(
        store=str(directory),
        shards=[shard.file for shard in extracted.shards],
        input_shape=list(extracted.item_shape),
        normalize=_train_statistics(extracted, data["train"]) if normalize else None,
        function=function_spec,
        decoder=decoder_spec,
        classes=classes,
        num_classes=len(classes),
    )
    return {"data": data}


def _decoder_spec(dataset: dict, decoder: Callable[[str], np.ndarray] | None) -> dict[str, Any]:
    if decoder is not None:
        return callables.to_spec(decoder, "extract_features.decoder")
    if dataset.get("decoder") is not None:
        return dict(dataset["decoder"])
    return callables.to_spec(ImageDecoder(), "extract_features.decoder")


def _default_store(state: TaskView) -> Path:
    try:
        return state.run.cache_dir / FEATURES_DIR
    except RuntimeError:
        raise ConfigError("extract_features.store is needed outside a run") from None


def _workers(workers: int | None) -> int:
    if workers is not None:
        return workers
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _train_statistics(extracted: Any, train: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean and std over every value of every train item, from the per-item sums."""
    if len(train["shard"]) == 0:
        raise DataError("extract_features needs a non-empty train split to normalize")
    sums = np.zeros(2, dtype=np.float64)
    for shard_index, shard in enumerate(extracted.shards):
        rows = train["row"][train["shard"] == shard_index]
        if len(rows):
            sums += shard.sums[rows].sum(axis=0)
    count = len(train["shard"]) * int(np.prod(extracted.item_shape, dtype=np.int64))
    mean = sums[0] / count
    std = float(np.sqrt(max(sums[1] / count - mean**2, 0.0)))
    return {"mean": float(mean), "std": std if std > 0 else 1.0}
