"""The artifact store: commits are all-or-nothing, damage is a miss, races end in one entry."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from ginpipe.base.atomic import TMP_PREFIX
from ginpipe.core import store as store_mod
from ginpipe.core.store import ArtifactStore, CorruptArtifact

REPO = Path(__file__).resolve().parents[2]


class Opaque:
    """An output without a safe codec (like a fitted estimator)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque)

    __hash__ = None  # type: ignore[assignment]


def key_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "cache")


def outputs() -> dict[str, Any]:
    return {
        "data": {
            "kind": "arrays",
            "X": np.arange(12.0).reshape(4, 3),
            "y": np.array([0, 1, 0, 1]),
            "classes": ["a", "b"],
            "meta": pd.DataFrame({"id": [1, 2, 3, 4]}),
        },
        "weights": {"w": torch.ones(2, 2), "b": torch.zeros(2)},
        "score": 0.75,
        "model": Opaque(),
    }


def set_last_used(store: ArtifactStore, key: str, when: float) -> None:
    os.utime(store_mod.ArtifactStore._entry_dir(store, key) / "manifest.json", (when, when))


def test_save_lookup_load(store: ArtifactStore) -> None:
    key = key_of("one")
    result = store.save(key, outputs(), task="prepare", meta={"seed": 1})
    assert result.stored == ("data", "weights", "score")
    assert result.transient == ("model",)
    assert result.bytes_written > 0 and not result.reused

    entry = store.lookup(key)
    assert entry is not None
    assert (entry.key, entry.task, entry.meta) == (key, "prepare", {"seed": 1})
    assert entry.names == ("data", "weights", "score")
    assert entry.transient == ("model",)
    assert entry.size == result.bytes_written
    assert store.verify(key)

    data = store.load(key, "data")
    np.testing.assert_array_equal(data["X"], outputs()["data"]["X"])
    pd.testing.assert_frame_equal(data["meta"], outputs()["data"]["meta"])
    assert data["classes"] == ["a", "b"]
    assert torch.equal(store.load(key, "weights")["w"], torch.ones(2, 2))
    assert store.load(key, "score") == 0.75
    with pytest.raises(KeyError):
        store.load(key, "model")


def test_missing_key_is_a_miss(store: ArtifactStore) -> None:
    key = key_of("absent")
    assert store.lookup(key) is None
    assert not store.verify(key)
    assert store.entries() == []
    with pytest.raises(CorruptArtifact):
        store.load(key, "x")


def test_keys_must_be_hex(store: ArtifactStore) -> None:
    for bad in ("../../etc", "ABCDEF0123", "short"):
        with pytest.raises(ValueError):
            store.lookup(bad)


def test_saving_an_existing_key_keeps_the_first(store: ArtifactStore) -> None:
    key = key_of("twice")
    store.save(key, {"v": 1}, task="t")
    again = store.save(key, {"v": 2}, task="t")
    assert again.reused and again.bytes_written == 0
    assert store.load(key, "v") == 1


def test_pickle_only_for_named_outputs(store: ArtifactStore) -> None:
    key = key_of("pickle")
    result = store.save(key, {"model": Opaque(), "other": Opaque()}, task="t", pickle_ok=["model"])
    assert result.stored == ("model",) and result.transient == ("other",)
    assert store.load(key, "model", allow_pickle=True) == Opaque()
    # A reader that may not unpickle cannot use the entry: a miss, removed to be replaced.
    with pytest.raises(CorruptArtifact):
        store.load(key, "model")
    assert store.lookup(key) is None


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_byte_is_corrupt_then_a_miss(store: ArtifactStore) -> None:
    key = key_of("flip")
    store.save(key, {"X": np.arange(100.0)}, task="t")
    entry = store.lookup(key)
    assert entry is not None
    (npy,) = entry.path.glob("*.npy")
    flip_byte(npy)
    assert not store.verify(key)
    with pytest.raises(CorruptArtifact):
        store.load(key, "X")
    assert store.lookup(key) is None
    assert not entry.path.exists()
    assert store.save(key, {"X": np.arange(3.0)}, task="t").stored == ("X",)
    np.testing.assert_array_equal(store.load(key, "X"), np.arange(3.0))


def test_missing_file_is_corrupt(store: ArtifactStore) -> None:
    key = key_of("missing file")
    store.save(key, {"t": torch.ones(3)}, task="t")
    entry = store.lookup(key)
    assert entry is not None
    next(entry.path.glob("*.safetensors")).unlink()
    with pytest.raises(CorruptArtifact):
        store.load(key, "t")
    assert store.lookup(key) is None


@pytest.mark.parametrize("damage", ["truncate", "version", "garbage"])
def test_bad_manifest_is_a_miss_and_replaced(store: ArtifactStore, damage: str) -> None:
    key = key_of(damage)
    store.save(key, {"v": [1, 2]}, task="t")
    manifest = store.lookup(key).path / "manifest.json"  # type: ignore[union-attr]
    text = manifest.read_text()
    if damage == "truncate":
        manifest.write_text(text[: len(text) // 2])
    elif damage == "version":
        manifest.write_text(json.dumps({**json.loads(text), "format": 999}))
    else:
        manifest.write_bytes(b"\xff\x00")
    assert store.lookup(key) is None
    assert store.entries() == []
    assert not store.verify(key)
    with pytest.raises(CorruptArtifact):
        store.load(key, "v")
    result = store.save(key, {"v": [3]}, task="t")
    assert not result.reused
    assert store.load(key, "v") == [3]


def test_leftover_temp_dir_is_ignored_and_cleaned(store: ArtifactStore) -> None:
    key = key_of("kept")
    store.save(key, {"v": 1}, task="t")
    stale = store.root / f"{TMP_PREFIX}{key[:12]}-killed"
    stale.mkdir()
    (stale / "000-v.json").write_text("1")
    fresh = store.root / f"{TMP_PREFIX}{key[:12]}-alive"
    fresh.mkdir()
    old = time.time() - 7200
    os.utime(stale / "000-v.json", (old, old))
    os.utime(stale, (old, old))

    assert [e.key for e in store.entries()] == [key]
    assert store.clean_temp(max_age_s=3600) == [stale]
    assert not stale.exists() and fresh.exists()
    assert store.lookup(key) is not None


def test_crash_before_commit_leaves_no_entry(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: Any) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(store_mod, "_publish", crash)
    key = key_of("crash")
    with pytest.raises(KeyboardInterrupt):
        store.save(key, outputs(), task="t")
    assert store.lookup(key) is None
    assert store.entries() == []
    assert not [p for p in store.root.iterdir() if p.name.startswith(TMP_PREFIX)]


WORKER = """
import sys, time
from pathlib import Path
import numpy as np
from ginpipe.core.store import ArtifactStore

root, key, go, me = sys.argv[1:5]
Path(go + ".ready" + me).touch()
while not Path(go).exists():
    time.sleep(0.001)
value = {"X": np.arange(50_000.0), "meta": {"a": 1}, "names": np.array(["x", "y"])}
result = ArtifactStore(root).save(key, {"data": value, "n": 3}, task="race")
print(result.reused)
"""


@pytest.mark.parametrize("start", ["empty", "corrupt"])
def test_concurrent_writers_of_one_key(tmp_path: Path, start: str) -> None:
    store = ArtifactStore(tmp_path / "cache")
    key = key_of("race")
    if start == "corrupt":
        bad = store.objects / key[:2] / key
        bad.mkdir(parents=True)
        (bad / "manifest.json").write_text("{not json")
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(store.root), key, str(go), str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    start_signal = threading.Event()
    errors: list[BaseException] = []

    def thread_writer() -> None:
        start_signal.wait()
        try:
            value = {"X": np.arange(50_000.0), "meta": {"a": 1}, "names": np.array(["x", "y"])}
            ArtifactStore(store.root).save(key, {"data": value, "n": 3}, task="race")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=thread_writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.time() + 60
    while len(list(tmp_path.glob("go.ready*"))) < len(procs) and time.time() < deadline:
        time.sleep(0.01)
    go.touch()
    start_signal.set()
    for thread in threads:
        thread.join()
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.strip() in ("True", "False")
    assert errors == []

    assert store.verify(key)
    data = store.load(key, "data")
    np.testing.assert_array_equal(data["X"], np.arange(50_000.0))
    assert data["meta"] == {"a": 1} and store.load(key, "n") == 3
    assert [e.key for e in store.entries()] == [key]
    store.clean_temp(max_age_s=0)
    assert sorted(p.name for p in store.root.iterdir()) == ["objects"]


def test_prune_by_age_uses_last_use(store: ArtifactStore) -> None:
    old, used, new = key_of("old"), key_of("used"), key_of("new")
    for key in (old, used, new):
        store.save(key, {"v": key}, task="t")
    long_ago = time.time() - 10_000
    set_last_used(store, old, long_ago)
    set_last_used(store, used, long_ago)
    assert store.lookup(used) is not None  # a lookup counts as a use

    doomed = store.prune(older_than=3600, dry_run=True)
    assert [e.key for e in doomed] == [old]
    assert len(store.entries()) == 3  # a dry run removes nothing
    assert [e.key for e in store.prune(older_than=3600)] == [old]
    assert sorted(e.key for e in store.entries()) == sorted([used, new])


def test_prune_by_size_evicts_least_recently_used(store: ArtifactStore) -> None:
    keys = [key_of(f"size{i}") for i in range(3)]
    for i, key in enumerate(keys):
        store.save(key, {"X": np.zeros(1000)}, task="t")
        set_last_used(store, key, 1_000_000 + i)
    store.load(keys[0], "X")  # now the most recently used
    sizes = {e.key: e.size for e in store.entries()}
    budget = sizes[keys[0]] + sizes[keys[2]]
    removed = store.prune(max_bytes=budget)
    assert [e.key for e in removed] == [keys[1]]
    assert sum(e.size for e in store.entries()) <= budget
    assert store.prune(max_bytes=0) and store.entries() == []


def test_delete(store: ArtifactStore) -> None:
    key = key_of("delete")
    store.save(key, {"v": 1}, task="t")
    assert store.delete(key)
    assert not store.delete(key)
    assert store.lookup(key) is None


def test_store_import_stays_light() -> None:
    code = "import sys, ginpipe.core.store; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- run files kept with an entry ----------------------------------------------------------

KEY = key_of("fit with run files")


def _trained_run(folder: Path) -> Path:
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"weights" * 100)
    (folder / "logs").mkdir()
    (folder / "logs" / "metrics.csv").write_text("epoch,loss\n0,1.0\n")
    (folder / "logs" / f"{TMP_PREFIX}half").write_text("being written")
    (folder / "logs" / "escape").symlink_to(folder.parent / "outside.txt")
    (folder.parent / "outside.txt").write_text("not the run's")
    return folder


def test_run_files_come_with_a_reused_entry_linked_or_copied(store: ArtifactStore, tmp_path):
    trained = _trained_run(tmp_path / "trained")
    files = [
        ("checkpoints", trained / "checkpoints", "link"),
        ("logs", trained / "logs", "copy"),
    ]
    store.save(KEY, {"x": 1}, task="fit", files=files)
    reuser = tmp_path / "reuser"
    reuser.mkdir()
    assert store.restore_run_files(KEY, reuser) == ["checkpoints", "logs"]
    ckpt = reuser / "checkpoints" / "last.ckpt"
    assert ckpt.read_bytes() == b"weights" * 100
    assert ckpt.stat().st_ino == (trained / "checkpoints" / "last.ckpt").stat().st_ino
    log = reuser / "logs" / "metrics.csv"
    assert log.read_text() == "epoch,loss\n0,1.0\n"
    assert log.stat().st_ino != (trained / "logs" / "metrics.csv").stat().st_ino
    # temp files and symlinks (which could lead out of the run) are not carried
    assert sorted(p.name for p in (reuser / "logs").iterdir()) == ["metrics.csv"]
    # appending to the reusing run's log leaves the cache's copy as it was
    with log.open("a") as f:
        f.write("1,0.5\n")
    again = tmp_path / "again"
    again.mkdir()
    store.restore_run_files(KEY, again)
    assert (again / "logs" / "metrics.csv").read_text() == "epoch,loss\n0,1.0\n"


def test_a_run_keeps_its_own_files_over_the_cached_ones(store: ArtifactStore, tmp_path):
    trained = _trained_run(tmp_path / "trained")
    store.save(KEY, {"x": 1}, task="fit", files=[("logs", trained / "logs", "copy")])
    own = tmp_path / "own"
    (own / "logs").mkdir(parents=True)
    (own / "logs" / "metrics.csv").write_text("mine\n")
    assert store.restore_run_files(KEY, own) == []
    assert (own / "logs" / "metrics.csv").read_text() == "mine\n"


def test_run_files_never_land_outside_the_run(store: ArtifactStore, tmp_path):
    trained = _trained_run(tmp_path / "trained")
    store.save(KEY, {"x": 1}, task="fit", files=[("logs", trained / "logs", "copy")])
    run = tmp_path / "run"
    run.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run / "logs").symlink_to(elsewhere)  # a link planted where the files would go
    assert store.restore_run_files(KEY, run) == []
    assert list(elsewhere.iterdir()) == []
