"""Model shapes, and rebuilding a network from its storable record."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from ginpipe.base.errors import CheckpointError, ConfigError
from ginpipe.tasks.models import build_model, factory_name, model_record
from ginpipe.tasks.models.mlp import MLP
from ginpipe.tasks.models.resnet import ResNet


@pytest.mark.parametrize("size", [8, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_resnet_gives_one_logit_per_class_for_any_supported_image_size(size, channels):
    network = ResNet(num_classes=5, input_shape=(channels, size, size), width=8)
    logits = network(torch.randn(2, channels, size, size))
    assert logits.shape == (2, 5)


def test_resnet_depth_and_width_follow_the_config():
    network = ResNet(num_classes=3, input_shape=(1, 8, 8), width=4, blocks_per_stage=(1, 2, 1))
    assert [len(stage) for stage in network.stages] == [1, 2, 1]
    assert network.head.in_features == 4 * 2**2


def test_only_large_inputs_get_a_strided_stem():
    assert ResNet(2, (3, 32, 32), width=4).stem[0].stride == (1, 1)
    assert ResNet(2, (3, 64, 64), width=4).stem[0].stride == (2, 2)


def test_resnet_refuses_tabular_input():
    with pytest.raises(ConfigError, match="image input"):
        ResNet(num_classes=3, input_shape=(13,))


@pytest.mark.parametrize("input_shape", [(13,), (1, 8, 8)])
def test_mlp_flattens_any_input(input_shape):
    network = MLP(num_classes=3, input_shape=input_shape, hidden_sizes=(16, 8))
    assert network(torch.randn(4, *input_shape)).shape == (4, 3)


def test_mlp_without_hidden_layers_is_a_linear_classifier():
    network = MLP(num_classes=3, input_shape=(5,), hidden_sizes=())
    assert [type(layer).__name__ for layer in network.layers] == ["Flatten", "Linear"]


def test_a_record_rebuilds_the_same_network():
    torch.manual_seed(0)
    network = MLP(num_classes=3, input_shape=(5,), hidden_sizes=(8,)).eval()
    record = model_record(
        factory_name(MLP),
        {"num_classes": 3, "input_shape": [5], "hidden_sizes": [8]},
        network.state_dict(),
        None,
        1,
    )
    assert record["factory"] == "ginpipe.tasks.models.mlp.MLP"
    x = torch.randn(4, 5)
    assert torch.equal(build_model(record)(x), network(x))


def test_weights_of_another_shape_raise_checkpoint_error():
    network = MLP(num_classes=3, input_shape=(5,), hidden_sizes=(8,))
    record = model_record(
        factory_name(MLP),
        {"num_classes": 3, "input_shape": [6], "hidden_sizes": [8]},
        network.state_dict(),
        None,
        1,
    )
    with pytest.raises(CheckpointError, match="size mismatch"):
        build_model(record)


def test_a_model_class_the_config_does_not_name_is_a_config_error():
    with pytest.raises(ConfigError, match="a model class named in the config"):
        factory_name(torch.nn.Linear)


@pytest.mark.slow
def test_predicting_with_a_plain_network_never_imports_lightning():
    """``ginpipe predict`` of a plain network must not pay Lightning's import (seconds)."""
    code = (
        "import sys, torch\n"
        "from ginpipe.inference.predicting import predict_to_csv\n"
        "from ginpipe.tasks.models import logits\n"
        "scores = logits(torch.nn.Linear(2, 3), torch.zeros(4, 2))\n"
        "assert scores.shape == (4, 3)\n"
        "print('pytorch_lightning' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
