"""A small residual network for image classification, sized for 8x8 to 64x64 inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import gin
from torch import Tensor, nn

from ginpipe import ConfigError, Positive

# Inputs at least this large get a strided stem; smaller ones keep every pixel for the stages.
STEM_DOWNSAMPLE_MIN_SIZE = 64


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut; the shortcut projects when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        # Starting each residual branch at zero makes the initial network close to the
        # identity, which lets deeper stacks train with larger learning rates.
        nn.init.zeros_(self.bn2.weight)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


@gin.configurable
class ResNet(nn.Module):
    """ResNet: a 3x3 stem, stages of basic blocks, global average pooling, a linear head.

    Each stage after the first halves the resolution and doubles the channels. Adaptive
    pooling makes the head independent of the input size, so one architecture serves 8x8
    digits and 64x64 photos; only inputs of 64 px or more are downsampled in the stem,
    since tiny images have no pixels to spare.

    Args:
        num_classes: output logits (given by ``fit`` from the data).
        input_shape: ``(channels, height, width)`` (given by ``fit`` from the data).
        width: channels of the first stage.
        blocks_per_stage: the number of blocks in each stage; its length is the stage count.
        downsample_stem: force the strided stem on or off; ``None`` decides by input size.
    """

    def __init__(
        self,
        num_classes: int,
        input_shape: Sequence[int],
        *,
        width: Annotated[int, Positive] = 32,
        blocks_per_stage: Sequence[int] = (2, 2, 2),
        downsample_stem: bool | None = None,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(
                f"ResNet needs image input (channels, height, width), got input_shape "
                f"{list(input_shape)}; use MLP for tabular data"
            )
        if not blocks_per_stage or min(blocks_per_stage) < 1:
            raise ConfigError(f"ResNet.blocks_per_stage needs counts >= 1, got {blocks_per_stage}")
        channels, height, width_px = input_shape
        if downsample_stem is None:
            downsample_stem = min(height, width_px) >= STEM_DOWNSAMPLE_MIN_SIZE
        stem_stride = 2 if downsample_stem else 1
        self.stem = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride=stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        stages = []
        in_channels = width
        for index, num_blocks in enumerate(blocks_per_stage):
            out_channels = width * 2**index
            first_stride = 1 if index == 0 else 2
            blocks = [BasicBlock(in_channels, out_channels, first_stride)]
            blocks += [BasicBlock(out_channels, out_channels) for _ in range(num_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(in_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        features = self.pool(self.stages(self.stem(x)))
        return self.head(features.flatten(1))
