"""The environment lock a run records (``RUN/environment.txt``): exact pins, where local
versions come from, how ginpipe was installed, and the run's own modules."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
from pathlib import Path
from typing import Any

import pytest

import ginpipe
from ginpipe.runs import provenance
from ginpipe.runs.provenance import (
    Locked,
    environment_lock,
    local_version_sources,
    pip_sources,
    read_lock,
    source_digest,
)

TOY_MODULE = Path(__file__).resolve().parents[1] / "toy" / "toytasks.py"


@pytest.fixture(scope="module")
def lock_text() -> str:
    return environment_lock()


def test_every_installed_distribution_is_pinned_at_its_version(lock_text: str, tmp_path) -> None:
    path = tmp_path / "environment.txt"
    path.write_text(lock_text)
    lock = read_lock(path)
    assert lock.pin("torch") == f"torch=={importlib.metadata.version('torch')}"
    assert lock.pin("pytorch_lightning") is not None  # any spelling of the name
    for line in lock.pins:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(==\S+| @ \S+)", line), line
    assert lock.pin("pip") is None  # every venv brings its own
    assert lock.pin("ginpipe-ml") is None and lock.pin("ginpipe") is None
    assert lock_text.count("torch==") == 1


def test_ginpipe_from_this_checkout_is_recorded_with_commit_dirty_flag_and_digest(
    lock_text: str, tmp_path
) -> None:
    (tmp_path / "environment.txt").write_text(lock_text)
    origin = read_lock(tmp_path / "environment.txt").record["ginpipe"]
    root = Path(ginpipe.__file__).resolve().parents[1]
    assert origin["kind"] == "checkout" and origin["path"] == str(root)
    assert origin["version"] == ginpipe.__version__
    assert origin["source_sha256"] == source_digest(root)
    assert isinstance(origin["dirty"], bool)
    assert re.fullmatch(r"[0-9a-f]{40}", origin["commit"])
    assert f"# ginpipe: ginpipe-ml {ginpipe.__version__} from the checkout {root} at " in lock_text


def test_the_source_digest_follows_content_not_timestamps(tmp_path: Path) -> None:
    (tmp_path / "ginpipe" / "configs").mkdir(parents=True)
    (tmp_path / "ginpipe" / "a.py").write_text("x = 1\n")
    (tmp_path / "ginpipe" / "configs" / "b.gin").write_text("X = 1\n")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    (tmp_path / "notes.txt").write_text("not part of the wheel\n")
    before = source_digest(tmp_path)
    (tmp_path / "ginpipe" / "a.py").write_text("x = 1\n")  # rewritten, same content
    (tmp_path / "notes.txt").write_text("edited\n")
    assert source_digest(tmp_path) == before
    (tmp_path / "ginpipe" / "configs" / "b.gin").write_text("X = 2\n")
    assert source_digest(tmp_path) != before


def test_a_local_version_names_the_folder_this_machine_installs_it_from(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    dists = [Locked("torch", "2.13.0+cpu", "torch==2.13.0+cpu"), Locked("six", "1.0", "six==1.0")]
    found = local_version_sources(dists, {"find-links": [str(wheels)]})
    assert found == {
        "torch": {
            "version": "2.13.0+cpu",
            "options": [f"--find-links {wheels}"],
            "public": "--extra-index-url https://download.pytorch.org/whl/cpu",
        }
    }


def test_a_local_file_index_holding_the_wheel_is_named(tmp_path: Path) -> None:
    page = tmp_path / "simple" / "torchvision"
    page.mkdir(parents=True)
    (page / "index.html").write_text(
        '<a href="../../files/torchvision-0.29.0+cu126-cp311-cp311-linux_x86_64.whl">x</a>'
    )
    index = f"file://{tmp_path / 'simple'}"
    dists = [Locked("torchvision", "0.29.0+cu126", "torchvision==0.29.0+cu126")]
    found = local_version_sources(dists, {"extra-index-url": ["https://pypi.org/simple", index]})
    assert found["torchvision"]["options"] == [f"--extra-index-url {index}"]


def test_without_a_local_source_pytorchs_index_for_the_label_is_used() -> None:
    dists = [
        Locked("torch", "2.13.0+cu126", "torch==2.13.0+cu126"),
        Locked("mylib", "1.0+local", "mylib==1.0+local"),
    ]
    found = local_version_sources(dists, {"find-links": ["/nonexistent/wheels"]})
    assert found["torch"]["options"] == ["--extra-index-url https://download.pytorch.org/whl/cu126"]
    assert found["mylib"] == {"version": "1.0+local", "options": [], "public": None}


def test_pip_configuration_is_read_from_its_files_and_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(provenance, "_GLOBAL_PIP_FILES", ())
    (tmp_path / "xdg" / "pip").mkdir(parents=True)
    (tmp_path / "xdg" / "pip" / "pip.conf").write_text(
        "[global]\nfind-links = /srv/wheels\nextra-index-url = file:///srv/a file:///srv/b\n"
    )
    assert pip_sources() == {
        "find-links": ["/srv/wheels"],
        "extra-index-url": ["file:///srv/a", "file:///srv/b"],
    }
    user = tmp_path / "config" / "pip" / "pip.conf"
    user.parent.mkdir(parents=True)
    user.write_text("[install]\nindex-url = https://mirror.example/simple\n")
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/a /opt/b")
    assert pip_sources() == {
        "find-links": ["/opt/a", "/opt/b"],
        "extra-index-url": ["file:///srv/a", "file:///srv/b"],
        "index-url": ["https://mirror.example/simple"],
    }


class FakeDist:
    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def read_text(self, name: str) -> str | None:
        return self.files.get(name)


@pytest.mark.parametrize(
    ("direct", "installed", "line", "note"),
    [
        (None, True, "demo==1.0", ""),
        (None, False, None, "metadata in /src, not an installed package"),
        ({"url": "file:///src/demo", "dir_info": {"editable": True}}, True, None, "editable"),
        ({"url": "https://h/d.whl", "archive_info": {}}, True, "demo @ https://h/d.whl", ""),
        (
            {"url": "https://g/demo", "vcs_info": {"vcs": "git", "commit_id": "abc"}},
            True,
            "demo @ git+https://g/demo@abc",
            "",
        ),
    ],
)  # fmt: skip
def test_how_each_distribution_is_locked(
    direct: dict | None, installed: bool, line: str | None, note: str
) -> None:
    files = {"direct_url.json": json.dumps(direct)} if direct else {}
    dist: Any = FakeDist(files)
    locked = provenance._locked(dist, "demo", "1.0", "/src", installed)
    assert locked.line == line
    assert note in locked.note


def test_a_run_records_the_modules_its_code_came_from(toy_project, cli) -> None:
    assert cli("run", "base.gin", "--name", "first").exit_code == 0
    run_dir = toy_project.run_dir("first")
    lock = read_lock(run_dir / "environment.txt")
    (module,) = [m for m in lock.record["modules"] if m["module"] == "toytasks"]
    assert module["path"] == str(TOY_MODULE)
    assert module["relative"] == "toytasks.py"
    assert module["sha256"] == hashlib.sha256(TOY_MODULE.read_bytes()).hexdigest()
    assert not any("/ginpipe/" in m["path"] for m in lock.record["modules"])
    text = (run_dir / "environment.txt").read_text()
    assert f"# user module toytasks: {TOY_MODULE} (sha256 {module['sha256']})" in text
