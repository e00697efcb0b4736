"""Mistakes said in one line: an error inside a DataLoader worker is the worker's own line
(not a wrapped traceback), a refused request leaves no run directory, and a garbage
checkpoint's message never suggests ``weights_only=False``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harden_helpers import assert_one_line_error

from ginpipe.errors import CheckpointError


@pytest.mark.parametrize("extra", [[], ["--name", "x"]])
def test_unknown_rerun_leaves_no_run_directory(toy_project, cli, extra: list[str]) -> None:
    result = cli("run", "base.gin", "--rerun", "nosuch", *extra)
    assert result.exit_code == 2
    assert_one_line_error(result.output, "nosuch")
    assert not toy_project.root.exists()


def test_garbage_checkpoint_message_does_not_suggest_unsafe_loading(tmp_path: Path) -> None:
    from ginpipe.tasks.lightning.checkpoints import read_checkpoint

    for name, data in (("random.ckpt", os.urandom(4096)), ("empty.ckpt", b"")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CheckpointError) as caught:
            read_checkpoint(path)
        message = str(caught.value)
        assert str(path) in message and "\n" not in message
        assert "weights_only" not in message


@pytest.mark.slow
def test_a_corrupt_image_in_a_worker_is_one_line_naming_the_file(tmp_path: Path) -> None:
    from files_run import CONFIGS, SMALL, make_dataset, run

    make_dataset(tmp_path)
    base = [*CONFIGS, *SMALL, "--root", "exp"]
    data_only = "run.tasks=[@seed_everything, @load_table, @split_dataset, @make_features]"
    assert run(tmp_path, "run", *base, "--mod", data_only).returncode == 0
    # The data steps are cached now; every image goes bad, so fit's workers hit one.
    for image in (tmp_path / "data" / "generated" / "digits_png" / "images").rglob("*.png"):
        image.write_bytes(b"not a png")
    done = run(tmp_path, "run", *base)
    assert done.returncode == 2, done.stderr
    line = assert_one_line_error(done.stderr, "cannot read image", ".png")
    assert "DataLoader worker" not in line and "Original Traceback" not in done.stderr


# -- values, required parameters, metrics and modules checked before any task runs ---------


def refused(toy_project, result, *needles: str) -> str:
    """Exit 2, one error line holding ``needles``, no task ran, no run directory left."""
    assert result.exit_code == 2, result.output
    line = assert_one_line_error(result.output, *needles)
    assert "running" not in result.output
    assert not toy_project.root.exists()
    return line


@pytest.mark.parametrize("loader", ["load_table", "load_folder"])
def test_a_required_parameter_without_default_is_reported_up_front(
    toy_project, cli, loader: str
) -> None:
    result = cli(
        "run", "configs/base", "models/logreg", "--mod", f"run.tasks=[@seed_everything, @{loader}]"
    )
    refused(toy_project, result, f"{loader}.path is required but not set")
