"""A convolutional-recurrent hybrid (CRNN): 2-D conv blocks reduce the mel axis, a bidirectional GRU reads
the frames in order; average over time, dense, L2 norm."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from soundalike.errors import ParameterError
from soundalike.models.encoders.base import MelConfig, MelEncoder, conv_pool_stages
from soundalike.models.registry import register_encoder


class FramesGRU(nn.Module):
    """(B, C, M, T) -> (B, 2 * hidden, T): mel bands and channels flattened per frame, a linear map, a BiGRU."""

    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_features, 2 * hidden)
        self.gru = nn.GRU(2 * hidden, hidden, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, m, t = x.shape
        seq = self.proj(x.permute(0, 3, 1, 2).reshape(b, t, c * m))
        out, _ = self.gru(torch.relu(seq))
        return out.transpose(1, 2)


@register_encoder("crnn", description="3 conv blocks + bidirectional GRU over frames, 128-d (~0.27M params)")
class CRNN(MelEncoder):
    """Conv blocks pooling (2,2), (4,2), (4,2); a BiGRU over the remaining frames."""

    @dataclass(frozen=True)
    class Config(MelConfig):
        channels: tuple[int, ...] = (32, 64, 128)
        hidden: int = 64  # GRU units per direction

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = c = config or self.Config()
        if len(c.channels) != 3:
            raise ParameterError("crnn needs 3 conv widths")
        stages = conv_pool_stages(c.channels, ((2, 2), (4, 2), (4, 2)))
        cin = c.channels[-1]
        bands = c.n_mels // 32
        if bands < 1:
            raise ParameterError(f"crnn needs n_mels >= 32, got {c.n_mels}")
        stages.append(FramesGRU(cin * bands, c.hidden))
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(2 * c.hidden, c.embed_dim)
        self.init_song_pool()
