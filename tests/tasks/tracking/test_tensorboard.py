"""``loggers/tensorboard``, read back with TensorBoard's own event reader: a run folder named
after the run, the bindings as hparams with the main metric (the HPARAMS tab), the learning
rate, the training curves and the test metrics; a scikit-learn run gets its hparams and test
metrics too. Both runs use the real ``ginpipe`` console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")

pytestmark = pytest.mark.slow

NET = ("base", "models/resnet", "debug/fast", "loggers/tensorboard")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``experiments/proj/net`` (ResNet, 2 short epochs) and ``experiments/proj/lin``
    (logistic regression), started together."""
    work = tmp_path_factory.mktemp("tb") / "proj"
    work.mkdir()
    script = str(Path(sys.executable).with_name("ginpipe"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GINPIPE_")}
    commands = [
        ["run", *NET, "--name", "net", "-m", "Trainer.max_epochs=2"],
        ["run", "base", "models/logreg", "loggers/tensorboard", "--name", "lin"],
    ]
    procs = [
        subprocess.Popen(
            [script, *args],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for args in commands
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
    return work / "experiments" / "proj"


def events(folder: Path) -> Any:
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(
        str(folder), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    return accumulator


def hparams_of(accumulator: Any) -> tuple[list[str], dict[str, Any]]:
    """The HPARAMS tab's metric tags and this run's hparam values."""
    from tensorboard.plugins.hparams import metadata

    content = accumulator.PluginTagToContent(metadata.PLUGIN_NAME)
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    values = {}
    for key, value in start.hparams.items():
        kind = value.WhichOneof("kind")
        values[key] = getattr(value, kind)
    return [m.name.tag for m in experiment.metric_infos], values


def test_the_run_folder_is_named_after_the_run(runs) -> None:
    assert [p.name for p in (runs / "net" / "logs" / "tensorboard").iterdir()] == ["net"]
    assert [p.name for p in (runs / "lin" / "logs" / "tensorboard").iterdir()] == ["lin"]


def test_hparams_are_the_bindings_with_the_main_metric(runs) -> None:
    folder = runs / "net" / "logs" / "tensorboard" / "net"
    metrics, values = hparams_of(events(folder))
    assert metrics == ["test/accuracy"]
    assert values["LR"] == pytest.approx(0.01)
    assert values["AdamW.lr"] == pytest.approx(0.01)
    assert values["fit.model"] == "@ResNet"
    saved = yaml.safe_load((folder / "hparams.yaml").read_text())
    assert saved["Trainer.max_epochs"] == 2
    assert saved["fit.model"] == "@ResNet"


def test_curves_learning_rate_and_test_metrics(runs) -> None:
    accumulator = events(runs / "net" / "logs" / "tensorboard" / "net")
    tags = set(accumulator.Tags()["scalars"])
    assert {"train_loss", "val_loss", "val_acc", "test/accuracy", "test/f1_macro"} <= tags
    assert [t for t in tags if t.startswith("lr-")], tags  # LearningRateMonitor
    assert len(accumulator.Scalars("val_loss")) == 2
    record = json.loads((runs / "net" / "run.json").read_text())
    (test_accuracy,) = accumulator.Scalars("test/accuracy")
    assert test_accuracy.value == pytest.approx(record["metrics"]["accuracy"])


def test_a_run_that_does_not_train_gets_hparams_and_test_metrics(runs) -> None:
    accumulator = events(runs / "lin" / "logs" / "tensorboard" / "lin")
    metrics, values = hparams_of(accumulator)
    assert metrics == ["test/accuracy"]
    assert values["LogisticRegression.C"] == pytest.approx(1.0)
    record = json.loads((runs / "lin" / "run.json").read_text())
    (accuracy,) = accumulator.Scalars("test/accuracy")
    assert accuracy.value == pytest.approx(record["metrics"]["accuracy"])
