"""A dilated CNN for long time context: a 2-D front end collapses the mel axis, then residual 1-D convolutions
over time with dilations 1, 2, 4, 8 (a receptive field of most of the chunk); average pool, dense, L2 norm."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from soundalike.errors import ParameterError
from soundalike.models.encoders.base import MelConfig, MelEncoder, conv_pool_stages
from soundalike.models.registry import register_encoder


class CollapseFrequency(nn.Module):
    """(B, C, M, T) -> (B, C, T): max over what is left of the mel axis."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=2)


class DilatedBlock(nn.Module):
    """Residual 1-D conv over time: conv k3 (dilation d) + BN + ReLU + conv 1x1 + BN, plus the input, ReLU."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm1d(channels), nn.ReLU(inplace=True),
            nn.Conv1d(channels, channels, 1, bias=False), nn.BatchNorm1d(channels))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + x)


@register_encoder("dilated_cnn", description="2-D front end + dilated residual 1-D convs over time, 128-d (~0.4M params)")
class DilatedCNN(MelEncoder):
    """Front: conv 3x3 blocks pooling (2,2), (4,1), (4,1); frequency collapsed; dilated 1-D residual blocks."""

    @dataclass(frozen=True)
    class Config(MelConfig):
        front: tuple[int, ...] = (32, 64, 128)  # 2-D front-end channels
        dilations: tuple[int, ...] = (1, 2, 4, 8)  # one residual 1-D block per dilation

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = c = config or self.Config()
        if len(c.front) != 3 or not c.dilations:
            raise ParameterError("dilated_cnn needs 3 front-end widths and at least one dilation")
        stages = conv_pool_stages(c.front, ((2, 2), (4, 1), (4, 1)))
        cin = c.front[-1]
        stages[-1] = nn.Sequential(stages[-1], CollapseFrequency())
        stages += [DilatedBlock(cin, d) for d in c.dilations]
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, c.embed_dim)
        self.init_song_pool()
