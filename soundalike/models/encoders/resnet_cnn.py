"""A residual 2-D CNN: a conv stem, then four residual blocks (two 3x3 convs and a skip each), two of them
halving the map; global average pool, dense, L2 norm."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from soundalike.errors import ParameterError
from soundalike.models.encoders.base import MelConfig, MelEncoder, conv_bn_relu
from soundalike.models.registry import register_encoder


class StridedPointwise(nn.Conv2d):
    """A 1x1 convolution with a stride, computed as a subsample then a stride-1 1x1 convolution: the same
    parameters and the same output, but not oneDNN's strided 1x1 weight-gradient kernel, which crashes
    (SIGSEGV in ``jit_avx512_common_1x1_convolution_bwd_weights_t``) on AVX-512 machines for small maps
    (torch 2.13's CPU wheel)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__(cin, cout, 1, bias=False)
        self.step = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x[..., :: self.step, :: self.step], self.weight)


class ResidualBlock(nn.Module):
    """conv3x3 + BN + ReLU + conv3x3 + BN, plus the input (1x1 conv when the shape changes), ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(*conv_bn_relu(cin, cout, stride=stride),
                                  nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        self.skip: nn.Module = (nn.Identity() if cin == cout and stride == 1 else
                                nn.Sequential(StridedPointwise(cin, cout, stride), nn.BatchNorm2d(cout)))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


@register_encoder("resnet_cnn", description="residual 2-D CNN: stem + 4 residual blocks, 128-d (~0.64M params)")
class ResNetCNN(MelEncoder):
    """Stem (conv 3x3, 2x2 max-pool), residual blocks with the given channels and strides, average pool, dense."""

    @dataclass(frozen=True)
    class Config(MelConfig):
        stem: int = 32  # stem channels
        channels: tuple[int, ...] = (32, 64, 128, 128)  # residual block widths
        strides: tuple[int, ...] = (1, 2, 2, 1)  # their strides

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = c = config or self.Config()
        if len(c.channels) != len(c.strides) or not c.channels:
            raise ParameterError("channels and strides need the same, non-zero length")
        stages: list[nn.Module] = [nn.Sequential(*conv_bn_relu(1, c.stem), nn.MaxPool2d(2))]
        cin = c.stem
        for cout, s in zip(c.channels, c.strides, strict=True):
            stages.append(ResidualBlock(cin, cout, s))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, c.embed_dim)
        self.init_song_pool()
