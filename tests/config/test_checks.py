# ruff: noqa: UP007, UP045  (typing.Union and Optional on purpose: libraries write them)
"""Values against type hints and constraints: refuse what the callee would refuse, never a
value it accepts, and skip what cannot be known."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, TypeVar, Union

import pytest

from ginpipe.config.checks import AtLeast, Positive, describe, install_hint, parameters, problem


class Tensorish:
    """Stands for a class no gin literal can be (torch.Tensor)."""


T = TypeVar("T")


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        (3, float),
        (True, int),
        (None, Optional[int]),
        (0.5, Union[int, float, None]),
        ("cpu", Union[str, Tensorish]),
        ("x.csv", Path),
        ("x.csv", Union[str, Path]),
        ([0, 1], Union[list[int], str, int]),
        ((0.9, 0.99), tuple[float, float]),
        ([0.9, 0.99], tuple[float, float]),
        ({"minutes": 5}, Union[str, dict[str, int]]),
        ("warn", Optional[Union[bool, Literal["warn"]]]),
        ("abc", Any),
        ("abc", T),
        ("abc", "NotResolvable"),
        ("abc", Tensorish),  # a bare class: maybe it parses strings; not refused
        ("relu", Callable[..., Any]),
        ("ab", Sequence[str]),  # a str is a Sequence[str] to the type system
        (1, Annotated[int, Positive]),
        (-1, Annotated[int, AtLeast(-1)]),
        (None, Annotated[int, Positive] | None),
    ],
)
def test_values_the_callee_accepts_pass(value: Any, hint: Any) -> None:
    assert problem(value, hint) is None


@pytest.mark.parametrize(
    ("value", "hint", "message"),
    [
        ("abc", Optional[int], "expected int or None"),
        (3.0, int, "expected int"),
        ("abc", Union[float, Tensorish], "expected float or Tensorish"),
        ("False", Optional[bool], "expected bool or None"),
        ("max", Literal["min", "max", "mean"] | None, None),
        ("maximum", Literal["min", "max"], "expected one of 'min', 'max' (did you mean 'max'?)"),
        ("mean", Literal["min", "max"], "expected one of 'min', 'max'"),
        (3, Literal["min", "max"], "expected one of 'min', 'max'"),
        (
            "spwan",
            Annotated[Literal["spawn", "fork"], "doc"] | None,
            "expected one of 'spawn', 'fork' or None (did you mean 'spawn'?)",
        ),
        ((0.9,), tuple[float, float], "expected tuple[float, float]"),
        ([1, "a"], list[int], "expected list[int]"),
        (2.5, Union[list[int], str, int], "expected list[int] or str or int"),
        (0, Annotated[int, Positive], "must be > 0"),
        (-3, Annotated[int, AtLeast(-1, "-1: no limit")], "must be >= -1 (-1: no limit)"),
        (0, Annotated[int, Positive] | None, "must be > 0"),
    ],
)
def test_values_the_callee_refuses_fail(value: Any, hint: Any, message: str | None) -> None:
    assert problem(value, hint) == message


def test_lightning_trainer_hints() -> None:
    pl = pytest.importorskip("pytorch_lightning")
    hints = {name: p.hint for name, p in parameters(pl.Trainer).items()}
    assert problem("abc", hints["max_epochs"]) == "expected int or None"
    assert problem("bogus", hints["precision"]).startswith("expected one of")
    for name, value in [
        ("accelerator", "gpu"),
        ("strategy", "ddp"),
        ("devices", "auto"),
        ("precision", "bf16-mixed"),
        ("max_time", "00:12:00:00"),
        ("val_check_interval", 0.25),
        ("logger", False),
        ("profiler", "simple"),
        ("default_root_dir", "runs"),
    ]:
        assert problem(value, hints[name]) is None, name
    assert describe(hints["accelerator"]) == "str or Accelerator"


def test_a_signature_with_an_unresolvable_hint_keeps_the_others() -> None:
    namespace: dict[str, Any] = {}
    exec(
        "from __future__ import annotations\ndef f(a: NotImported, b: int = 1, **kw: int): ...\n",
        namespace,
    )
    found = parameters(namespace["f"])
    assert set(found) == {"b"} and found["b"].hint is int


def test_the_install_hint_names_ginpipes_extra() -> None:
    assert install_hint("tensorboard") == ' (pip install "ginpipe-ml[tensorboard]")'
    assert install_hint("mlflow.tracking") == ' (pip install "ginpipe-ml[mlflow]")'
    assert install_hint("somethingelse") == " (pip install somethingelse)"


# -- choices of the task library, refused from a config before any task runs ---------------

MLP = ("configs/base", "models/mlp")
AUDIO = ("configs/base", "data/audio", "models/audio_cnn")


@pytest.mark.parametrize(
    ("configs", "mod", "suggestion"),
    [
        (MLP, "fit.scheduler_interval='steps'", "step"),
        (MLP, "fit.monitor_mode='maximum'", "max"),
        (MLP, "fit.multiprocessing_context='spwan'", "spawn"),
        (MLP, "split_dataset.method='stratifed'", "stratified"),
        (MLP, "load_sklearn.name='digts'", "digits"),
        (AUDIO, "extract_features.multiprocessing_context='forking'", "fork"),
        (AUDIO, "extract_features.verify='sha'", "sha256"),
    ],
)
def test_a_choice_the_task_does_not_offer_is_one_line_before_any_task(
    toy_project, cli, configs: tuple[str, ...], mod: str, suggestion: str
) -> None:
    result = cli("run", *configs, "--mod", mod)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert f"{mod}: expected one of " in line
    assert line.endswith(f"(did you mean '{suggestion}'?)")
    assert "running" not in result.output
    assert not toy_project.root.exists()  # no run directory, no cache: nothing ran
