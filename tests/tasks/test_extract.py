"""extract_features and the shard store: features computed once per item, reused across
runs and table changes, corrupt shards recomputed, bad items named, shards read back
through memory maps in DataLoader workers."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
from loguru import logger
from torch.utils.data import DataLoader

from ginpipe.base.errors import ConfigError, DataError
from ginpipe.core.state import RunContext, State, TaskView
from ginpipe.core.store import CACHE_DIR
from ginpipe.tasks.data import callables
from ginpipe.tasks.data.audio_features import LogMel
from ginpipe.tasks.data.datasets import make_dataset
from ginpipe.tasks.data.decoders import AudioDecoder
from ginpipe.tasks.data.extraction import extract, feature_key
from ginpipe.tasks.data.shards import ShardStore
from ginpipe.tasks.extract import _default_store, extract_features
from ginpipe.tasks.features import make_features
from ginpipe.tasks.load import load_table
from ginpipe.tasks.split import split_dataset

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_audio_dataset.py"
RATE = 8000
DECODER = AudioDecoder(sample_rate=RATE, duration=0.25)
FEATURE = LogMel(sample_rate=RATE, n_fft=256, hop_length=128, n_mels=16)
SHAPE = [1, 16, 16]  # (channels, mel bands, frames) of 0.25 s at hop 128


def refuses_silence(audio: np.ndarray) -> np.ndarray:
    """A user's feature function that fails on one kind of item."""
    if not np.abs(audio).max() > 0:
        raise ValueError("silent item")
    return FEATURE(audio)


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_audio_dataset", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_events(out: Path, count: int) -> Path:
    return load_script().write_audio_events(out, count, RATE, duration=0.25, groups=8)


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_events(tmp_path_factory.mktemp("events"), 60)


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(str(message)), level="WARNING")
    yield messages
    logger.remove(sink)


def pipeline_data(labels_csv: Path, store: Path, **params) -> dict:
    """load_table -> split_dataset -> extract_features, as the pipeline runs them."""
    state = State()
    steps = [
        (load_table, (), {"path": str(labels_csv), "extra_columns": ["group"], "decoder": DECODER}),
        (split_dataset, ("dataset",), {"method": "group", "column": "group"}),
        (
            extract_features,
            ("dataset", "splits"),
            {"function": FEATURE, "store": str(store), "shard_size": 8, "workers": 0, **params},
        ),
    ]
    for task, reads, task_params in steps:
        for key, value in task(TaskView(state, task.__name__, reads), **task_params).items():
            state.set(key, value)
    return state["data"]


def paths_of(labels_csv: Path) -> list[str]:
    table = pd.read_csv(labels_csv)
    return [str(labels_csv.parent / path) for path in table["path"]]


def run_extract(paths: list[str], directory: Path, **options):
    spec = (callables.to_spec(DECODER, "d"), callables.to_spec(FEATURE, "f"))
    options = {"shard_size": 8, "workers": 0, "progress": False, **options}
    return extract(paths, directory, *spec, **options)


def expected(path: str) -> np.ndarray:
    return FEATURE(DECODER(path))


# --- the task ----------------------------------------------------------------------------


def test_every_split_reads_back_the_features_of_its_files(events: Path, tmp_path: Path) -> None:
    data = pipeline_data(events, tmp_path / "features")
    assert data["kind"] == "shards" and data["input_shape"] == SHAPE
    table = pd.read_csv(events)
    mean, std = data["normalize"]["mean"], data["normalize"]["std"]
    for split in ("train", "val", "test"):
        dataset = make_dataset(data, split)
        assert len(dataset) == len(data[split]["y"]) > 0
        x, y = dataset[0]
        assert x.dtype == torch.float32 and list(x.shape) == SHAPE and y.dtype == torch.int64
    # the first train item, found through the label order: same values as computed directly
    train = make_dataset(data, "train")
    first_shard = data["shards"][int(data["train"]["shard"][0])]
    stored = np.load(Path(data["store"]) / first_shard)[int(data["train"]["row"][0])]
    np.testing.assert_allclose(train[0][0].numpy(), (stored - mean) / std, rtol=1e-5, atol=1e-5)
    assert any(
        np.allclose(stored, expected(str(events.parent / path)), atol=1e-4)
        for path in table["path"]
    )


def test_normalization_statistics_are_those_of_the_train_items(events: Path, tmp_path: Path):
    data = pipeline_data(events, tmp_path / "features")
    train = make_dataset({**data, "normalize": None}, "train")
    values = np.stack([train[index][0].numpy() for index in range(len(train))]).astype(np.float64)
    assert data["normalize"]["mean"] == pytest.approx(values.mean(), rel=1e-6)
    assert data["normalize"]["std"] == pytest.approx(values.std(), rel=1e-5)


@pytest.mark.slow
def test_shards_are_memory_mapped_in_spawned_dataloader_workers(events: Path, tmp_path: Path):
    data = pipeline_data(events, tmp_path / "features")
    dataset = make_dataset(data, "train")
    loader = DataLoader(dataset, batch_size=7, num_workers=2, multiprocessing_context="spawn")
    batches = list(loader)
    x = torch.cat([batch[0] for batch in batches])
    y = torch.cat([batch[1] for batch in batches])
    assert len(x) == len(dataset)
    np.testing.assert_array_equal(y.numpy(), data["train"]["y"])
    np.testing.assert_allclose(x[5].numpy(), dataset[5][0].numpy())


@pytest.mark.slow
def test_a_process_pool_computes_what_this_process_computes(events: Path, tmp_path: Path):
    paths = paths_of(events)[:20]
    pooled = run_extract(paths, tmp_path / "pool", workers=2, context="forkserver")
    inline = run_extract(paths, tmp_path / "inline", workers=0)
    assert pooled.computed == inline.computed == 20
    for index in (0, 7, 19):
        a = np.load(pooled.store.path(pooled.shards[pooled.shard_of[index]]))
        b = np.load(inline.store.path(inline.shards[inline.shard_of[index]]))
        np.testing.assert_array_equal(a[pooled.row_of[index]], b[inline.row_of[index]])


def test_store_is_required_outside_a_run(events: Path) -> None:
    with pytest.raises(ConfigError, match=r"extract_features\.store is needed outside a run"):
        pipeline_data(events, store="")  # type: ignore[arg-type]


def test_the_default_store_is_beside_the_roots_artifact_store(tmp_path: Path) -> None:
    run_dir = tmp_path / "root" / "proj" / "sweep" / "trial-0000"
    for root, expected in ((None, run_dir.parent.parent), (tmp_path / "root", tmp_path / "root")):
        run = RunContext(dir=run_dir, name="trial-0000", project="proj", root=root)
        view = TaskView(State(run=run), "extract_features", ())
        assert _default_store(view) == expected / CACHE_DIR / "features"


@pytest.mark.parametrize(
    ("mod", "message"),
    [
        ("extract_features.shard_size=0", "must be > 0"),
        ("extract_features.workers=-1", "must be >= 0"),
        ("extract_features.verify='sha'", "one of 'stat', 'sha256' (did you mean 'sha256'?)"),
    ],
)
def test_bad_settings_from_a_config_are_one_line_before_any_task(
    toy_project, cli, mod: str, message: str
) -> None:
    result = cli("run", "configs/base", "data/audio", "models/audio_cnn", "--mod", mod)
    assert result.exit_code == 2, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert f"{mod}: " in line and line.endswith(message)
    assert not toy_project.root.exists()  # no run directory, no cache: nothing ran


# --- per-item cache ------------------------------------------------------------------------


def test_adding_one_percent_of_files_computes_one_percent(tmp_path: Path) -> None:
    labels_csv = write_events(tmp_path / "events", 202)
    paths = paths_of(labels_csv)
    directory = tmp_path / "features"
    first = run_extract(paths[:200], directory, shard_size=16)
    assert (first.computed, first.reused) == (200, 0)
    again = run_extract(paths, directory, shard_size=16)
    assert (again.computed, again.reused) == (2, 200)
    unchanged = run_extract(paths, directory, shard_size=16)
    assert (unchanged.computed, unchanged.reused) == (0, 202)


def test_a_changed_file_or_function_is_computed_again(events: Path, tmp_path: Path) -> None:
    paths = paths_of(events)[:16]
    directory = tmp_path / "features"
    run_extract(paths, directory)
    stat = os.stat(paths[3])
    os.utime(paths[3], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert run_extract(paths, directory).computed == 1
    decoder = callables.to_spec(DECODER, "d")
    other = callables.to_spec(LogMel(sample_rate=RATE, n_fft=256, hop_length=128, n_mels=8), "f")
    assert feature_key(decoder, other) != feature_key(decoder, callables.to_spec(FEATURE, "f"))


def test_a_truncated_shard_is_reported_and_recomputed_never_read(
    events: Path, tmp_path: Path, warnings: list[str]
) -> None:
    paths = paths_of(events)[:24]
    directory = tmp_path / "features"
    first = run_extract(paths, directory)
    victim = first.store.path(first.shards[1])
    with open(victim, "r+b") as f:
        f.truncate(victim.stat().st_size // 2)
    again = run_extract(paths, directory)
    assert again.computed == 8 and again.reused == 16
    assert len(warnings) == 1
    assert f"feature shard '{victim}' is not usable: it is truncated" in warnings[0]
    for index in range(len(paths)):  # every item readable and right
        stored = np.load(again.store.path(again.shards[again.shard_of[index]]))
        np.testing.assert_allclose(stored[again.row_of[index]], expected(paths[index]), atol=1e-4)


def test_a_shard_altered_in_place_fails_its_checksum(
    events: Path, tmp_path: Path, warnings: list[str]
) -> None:
    paths = paths_of(events)[:16]
    directory = tmp_path / "features"
    first = run_extract(paths, directory)
    victim = first.store.path(first.shards[0])
    data = bytearray(victim.read_bytes())
    data[-4:] = b"\x00\x00\xc0\x7f"  # same size, one value now NaN
    victim.write_bytes(bytes(data))
    assert run_extract(paths, directory).computed == 8
    assert "does not match its checksum" in warnings[0]


def test_sha256_verification_hashes_every_shard(events: Path, tmp_path: Path) -> None:
    paths = paths_of(events)[:16]
    directory = tmp_path / "features"
    run_extract(paths, directory)
    store = ShardStore(directory)
    victim = store.path(store.scan()[0])
    stat = victim.stat()
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # disguise the rewrite
    assert len(store.scan("stat")) == 2  # size and mtime match: not hashed
    assert len(store.scan("sha256")) == 1


# --- bad input -----------------------------------------------------------------------------


def test_a_failing_feature_function_names_the_item(events: Path, tmp_path: Path) -> None:
    paths = paths_of(events)[:10]
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(RATE // 4, np.float32), RATE)
    spec = (callables.to_spec(DECODER, "d"), callables.to_spec(refuses_silence, "f"))
    with pytest.raises(DataError) as error:
        extract([*paths, str(silent)], tmp_path / "f", *spec, shard_size=4, workers=0)
    message = str(error.value)
    assert "\n" not in message
    assert f"feature function refuses_silence failed on '{silent}': ValueError: silent" in message
    # the shards finished before the failure are kept
    assert len(ShardStore(tmp_path / "f").scan()) == 2


def test_items_of_different_shapes_are_refused(events: Path, tmp_path: Path) -> None:
    paths = paths_of(events)[:6]
    spec = (callables.to_spec(AudioDecoder(), "d"), callables.to_spec(FEATURE, "f"))
    with pytest.raises(DataError, match=r"features differ in shape: .*audio_decoder\.duration"):
        extract(paths, tmp_path / "f", *spec, shard_size=8, workers=0, progress=False)


def test_an_undecodable_file_is_named(events: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF....WAVE")
    with pytest.raises(DataError, match=rf"cannot read audio '{junk}'"):
        run_extract([*paths_of(events)[:3], str(junk)], tmp_path / "f")


# --- fast features: decoded per item in the workers -----------------------------------------


def test_make_features_decodes_audio_per_item_with_a_transform(events: Path) -> None:
    state = State()
    steps = [
        (load_table, (), {"path": str(events), "extra_columns": ["group"], "decoder": DECODER}),
        (split_dataset, ("dataset",), {"method": "group", "column": "group"}),
        (make_features, ("dataset", "splits"), {"item_transform": FEATURE, "stats_sample": 8}),
    ]
    for task, reads, params in steps:
        for key, value in task(TaskView(state, task.__name__, reads), **params).items():
            state.set(key, value)
    data = state["data"]
    assert data["kind"] == "files" and data["input_shape"] == SHAPE
    x, _ = make_dataset(data, "test")[0]
    direct = expected(str(data["test"]["path"][0]))
    norm = data["normalize"]
    np.testing.assert_allclose(x.numpy(), (direct - norm["mean"]) / norm["std"], atol=1e-4)
