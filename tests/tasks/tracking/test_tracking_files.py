"""What a tracker reads from a run directory: bindings with macros resolved, the run's place
(plain or in a sweep), the training log, and MLflow's param limits."""

from __future__ import annotations

import json
from pathlib import Path

from ginpipe.tasks.tracking import MAX_PARAM_VALUE, param_value
from ginpipe.tasks.tracking_files import (
    artifact_paths,
    final_metrics,
    place_of,
    resolved_bindings,
    training_history,
)

RESOLVED = """\
# Macros:
# ==============================================================================
LR = 0.01
OTHER = %LR

# Parameters for AdamW:
# ==============================================================================
AdamW.lr = %LR
AdamW.betas = (0.9, 0.999)

# Parameters for run:
# ==============================================================================
run.name_text = 'a # not a comment'
run.bracket = 'a(b['
run.tasks = \\
    [@seed_everything,
     @load_sklearn,
     @fit]
Trainer.max_epochs = 3
"""


def test_every_binding_is_read_with_macros_resolved(tmp_path: Path) -> None:
    (tmp_path / "resolved.gin").write_text(RESOLVED)
    assert resolved_bindings(tmp_path) == {
        "LR": "0.01",
        "OTHER": "0.01",
        "AdamW.lr": "0.01",
        "AdamW.betas": "(0.9, 0.999)",
        "run.name_text": "'a # not a comment'",
        "run.bracket": "'a(b['",
        "run.tasks": "[@seed_everything, @load_sklearn, @fit]",
        "Trainer.max_epochs": "3",
    }


def test_a_run_in_a_sweep_knows_its_project_root_and_sweep(tmp_path: Path) -> None:
    sweep = tmp_path / "root" / "proj" / "sweep-1"
    (sweep / "trial-0003").mkdir(parents=True)
    (sweep / "sweep.json").write_text("{}")
    place = place_of(sweep / "trial-0003")
    assert (place.name, place.project, place.root, place.sweep) == (
        "trial-0003",
        "proj",
        (tmp_path / "root").absolute(),
        sweep.absolute(),
    )
    plain = place_of(tmp_path / "root" / "proj" / "run-a")
    assert (plain.project, plain.root, plain.sweep) == ("proj", (tmp_path / "root"), None)


def test_the_training_log_becomes_steps_of_metrics(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "metrics.csv").write_text(
        "epoch,lr-AdamW,step,train_acc,train_loss,val_acc,val_loss\n"
        ",0.008,2,,,,\n"
        "0,,2,,,0.1,2.3\n"
        "0,,2,0.14,2.29,,\n"
        "1,,5,,,nan,2.2\n"
    )
    assert training_history(tmp_path) == [
        (2, {"lr-AdamW": 0.008}),
        (2, {"epoch": 0.0, "val_acc": 0.1, "val_loss": 2.3}),
        (2, {"epoch": 0.0, "train_acc": 0.14, "train_loss": 2.29}),
        (5, {"epoch": 1.0, "val_loss": 2.2}),
    ]


def test_final_metrics_add_per_class_entries_and_drop_non_numbers(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text(json.dumps({"accuracy": 0.5, "recall/a": 1.0}))
    outcome = {"metrics": {"accuracy": 0.5, "loss": float("nan")}}
    assert final_metrics(tmp_path, outcome) == {"accuracy": 0.5, "recall/a": 1.0}
    assert final_metrics(tmp_path, {"status": "failed"}) == {}


def test_artifacts_are_the_run_files_and_plots_that_exist(tmp_path: Path) -> None:
    for name in ("config.gin", "metrics.json", "plots/a.png", "plots/more/b.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    found = [(str(p.relative_to(tmp_path)), folder) for p, folder in artifact_paths(tmp_path)]
    assert found == [
        ("config.gin", ""),
        ("metrics.json", ""),
        ("plots/a.png", "plots"),
        ("plots/more/b.png", "plots/more"),
    ]


def test_a_long_value_is_cut_to_mlflows_limit_and_says_so() -> None:
    assert param_value("short") == "short"
    cut = param_value("x" * (MAX_PARAM_VALUE + 10))
    assert len(cut) == MAX_PARAM_VALUE
    assert cut.endswith("...")
