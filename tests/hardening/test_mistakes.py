"""Mistakes said in one line: an error inside a DataLoader worker is the worker's own line
(not a wrapped traceback), a refused request leaves no run directory, and a garbage
checkpoint's message never suggests ``weights_only=False``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harden_helpers import assert_one_line_error

from ginpipe.base.errors import CheckpointError


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

MLP = ("configs/base", "models/mlp", "--name", "r")


def refused(toy_project, result, *needles: str) -> str:
    """Exit 2, one error line holding ``needles``, no task ran, no run directory left."""
    assert result.exit_code == 2, result.output
    line = assert_one_line_error(result.output, *needles)
    assert "running" not in result.output
    assert not toy_project.root.exists()
    return line


@pytest.mark.parametrize(
    ("mod", "needles"),
    [
        ("Trainer.max_epochs='abc'", ("Trainer.max_epochs='abc'", "expected int or None")),
        ("AdamW.lr='abc'", ("AdamW.lr='abc'", "expected float")),
        ("fit.batch_size=0", ("fit.batch_size=0", "must be > 0")),
        ("Trainer.max_epochs=-3", ("Trainer.max_epochs=-3", "must be >= -1")),
        ("Trainer.enable_progress_bar='False'", ("enable_progress_bar", "expected bool")),
        ("fit.monitor_mode='maximum'", ("fit.monitor_mode", "one of 'min', 'max'")),
        ("LR='fast'", ("AdamW.lr=%LR='fast'", "expected float")),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_before_any_task(
    toy_project, cli, mod: str, needles: tuple[str, ...]
) -> None:
    result = cli("run", *MLP, "--mod", mod)
    refused(toy_project, result, "--mod", *needles)


def test_the_error_names_the_file_and_line_that_set_the_value(toy_project, cli) -> None:
    toy_project.write("long.gin", "# train longer\n\nTrainer.max_epochs = 'ten'\n")
    result = cli("run", "configs/base", "models/mlp", "long.gin")
    refused(toy_project, result, "long.gin:3: Trainer.max_epochs='ten'", "expected int or None")


@pytest.mark.parametrize(
    "mod",
    [
        "Trainer.max_epochs=-1",
        "Trainer.max_epochs=None",
        "Trainer.precision='16-mixed'",
        "Trainer.precision=32",
        "Trainer.devices=[0]",
        "Trainer.deterministic='warn'",
        "Trainer.limit_train_batches=0.5",
        "Trainer.max_time={'minutes': 5}",
        "Trainer.gradient_clip_val=1",
        "AdamW.lr=1",
        "AdamW.betas=(0.9, 0.99)",
        "fit.multiprocessing_context='spawn'",
        "fit.checkpoint_every_n_steps=None",
        "fit.save_top_k=-1",
        "fit.monitor='epoch'",
    ],
)
def test_valid_values_pass(toy_project, cli, mod: str) -> None:
    result = cli("config", "configs/base", "models/mlp", "--mod", mod)
    assert result.exit_code == 0, result.output


def test_every_shipped_model_config_passes_the_checks(toy_project, cli) -> None:
    for model in ("mlp", "resnet", "logreg", "random_forest", "audio_cnn"):
        data = ("data/audio",) if model == "audio_cnn" else ()
        result = cli("config", "configs/base", *data, f"models/{model}")
        assert result.exit_code == 0, (model, result.output)


@pytest.mark.parametrize("loader", ["load_table", "load_folder"])
def test_a_required_parameter_without_default_is_reported_up_front(
    toy_project, cli, loader: str
) -> None:
    result = cli(
        "run", "configs/base", "models/logreg", "--mod", f"run.tasks=[@seed_everything, @{loader}]"
    )
    refused(toy_project, result, f"{loader}.path is required but not set")


def test_an_unknown_main_metric_is_refused(toy_project, cli) -> None:
    result = cli("run", "configs/base", "models/logreg", "--mod", "run.main_metric='acuracy'")
    line = refused(toy_project, result, "run.main_metric='acuracy'", "did you mean 'accuracy'")
    assert "--mod" in line
    ok = cli("config", "configs/base", "models/logreg", "--mod", "run.main_metric='recall/0'")
    assert ok.exit_code == 0, ok.output


def test_an_unknown_monitor_is_refused_at_its_line(toy_project, cli) -> None:
    toy_project.write("watch.gin", "fit.monitor = 'val_accuracy'\n")
    result = cli("run", "configs/base", "models/mlp", "watch.gin")
    refused(toy_project, result, "watch.gin:1: fit.monitor='val_accuracy'", "val_acc")


def test_a_lightning_module_may_monitor_what_it_logs(toy_project, cli, monkeypatch) -> None:
    """Metrics of a user's LightningModule cannot be known up front: not refused."""
    monkeypatch.syspath_prepend(str(toy_project.path))
    toy_project.write(
        "litmon.py",
        "import pytorch_lightning as pl\n\n"
        "class LitMon(pl.LightningModule):\n"
        "    def __init__(self, num_classes=2, input_shape=(1,)):\n"
        "        super().__init__()\n",
    )
    mods = ["--mod", "fit.model=@litmon.LitMon", "--mod", "fit.monitor='my_score'"]
    result = cli("config", "configs/base", "trainer/cpu", *mods)
    assert result.exit_code == 0, result.output


def test_a_missing_optional_dependency_is_refused_with_the_extra(toy_project, cli) -> None:
    import importlib.util

    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        pytest.skip("tensorboard is installed")
    result = cli("run", "configs/base", "models/mlp", "loggers/tensorboard", "--name", "r")
    refused(
        toy_project,
        result,
        "tensorboard_training_logger needs 'tensorboard'",
        'ginpipe-ml[tensorboard]"',
    )
    assert "tensorboard.gin:9" in result.output


def test_a_requirement_of_ones_own_callable_is_checked(toy_project, cli, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(toy_project.path))
    toy_project.write(
        "needsit.py",
        "import gin\nfrom ginpipe import requires\n\n"
        "@gin.configurable\ndef special_bonus(x=1):\n    return x\n\n"
        "requires(special_bonus, 'ginpipe_module_nobody_has')\n",
    )
    toy_project.write("b.gin", "import needsit\nreport.bonus = @special_bonus()\n")
    result = cli("run", "base.gin", "b.gin")
    refused(toy_project, result, "b.gin:2: special_bonus needs 'ginpipe_module_nobody_has'")
