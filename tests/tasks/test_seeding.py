"""seed_everything: one value makes Python, NumPy and torch random streams repeat."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from ginpipe.base.errors import ConfigError
from ginpipe.core.state import State, TaskView
from ginpipe.tasks.seeding import seed_everything


def seed(**params) -> dict:
    return seed_everything(TaskView(State(), "seed_everything", ()), **params)


def draws() -> tuple[float, list[float], list[float]]:
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()


@pytest.mark.parametrize("value", [0, 1234])
def test_same_seed_repeats_every_generator(value: int) -> None:
    assert seed(seed=value) == {"seed": value}
    first = draws()
    seed(seed=value)
    assert draws() == first


def test_different_seeds_differ() -> None:
    seed(seed=0)
    first = draws()
    seed(seed=1)
    assert draws() != first


@pytest.mark.parametrize("value", [-1, 2**32, 1.5, True, "0"])
def test_invalid_seed_is_a_config_error(value: object) -> None:
    with pytest.raises(ConfigError, match=r"seed_everything\.seed"):
        seed(seed=value)


def test_deterministic_mode_is_switched_on_and_off() -> None:
    try:
        seed(seed=0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic
        seed(seed=0, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
