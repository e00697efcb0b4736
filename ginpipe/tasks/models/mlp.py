"""A multilayer perceptron for tabular features (any input is flattened first)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import gin
from torch import Tensor, nn


@gin.configurable
class MLP(nn.Module):
    """Linear layers with an activation and dropout between them, then a linear head.

    Args:
        num_classes: output logits (given by ``fit`` from the data).
        input_shape: shape of one example (given by ``fit``); its product is the input size.
        hidden_sizes: width of each hidden layer; empty gives multinomial logistic regression.
        dropout: dropout probability after each hidden activation.
        activation: a factory of activation modules, e.g. ``@GELU`` in a config.
    """

    def __init__(
        self,
        num_classes: int,
        input_shape: Sequence[int],
        *,
        hidden_sizes: Sequence[int] = (128, 64),
        dropout: float = 0.1,
        activation: Callable[[], nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        in_features = math.prod(input_shape)
        for size in hidden_sizes:
            layers += [nn.Linear(in_features, size), activation(), nn.Dropout(dropout)]
            in_features = size
        layers.append(nn.Linear(in_features, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
