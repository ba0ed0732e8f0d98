"""The reference contrastive CNN.

conv 3x3 (32) + BN + ReLU + max-pool 2 -> conv 3x3 (64) + BN + ReLU + max-pool 2
-> conv 3x3 (128) + BN + ReLU -> global average pool -> dense (128) -> L2-normalise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from soundalike.models.encoders.blocks import conv_blocks
from soundalike.models.registry import register_encoder


@register_encoder("contrastive_cnn", description="reference 3-block CNN, 128-d L2-normalised (~110k params)")
class ContrastiveCNN(nn.Module):
    """Three conv blocks, global average pool, dense, L2 norm."""

    @dataclass(frozen=True)
    class Config:
        channels: tuple[int, ...] = (32, 64, 128)  # output channels per conv block
        pool: tuple[bool, ...] = (True, True, False)  # 2x2 max-pool after each block?
        embed_dim: int = 128  # output embedding size
        n_mels: int = 128  # input mel bands (must match the front-end)
        db_range: float = 80.0  # input dB lie in [-db_range, 0]; scaled to [-1, 1]

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = c = config or self.Config()
        self.blocks = conv_blocks(c.channels, c.pool)
        self.fc = nn.Linear(c.channels[-1], c.embed_dim)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def trunk(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """x: (B, n_mels, T) dB in [-db_range, 0] -> the output map of each conv block [(B, C_i, M_i, T_i)]
        (only the first ``upto`` blocks when given): what tag heads read, from the embedding's own pass."""
        half = self.config.db_range / 2
        h = ((x + half) / half).unsqueeze(1)  # (B, 1, M, T) in [-1, 1]
        maps = []
        for block in list(self.blocks)[:upto]:
            h = block(h)
            maps.append(h)
        return maps

    def embed_maps(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """The embedding from :meth:`trunk`'s maps: (B, embed_dim), unit rows."""
        return F.normalize(self.fc(maps[-1].mean(dim=(-2, -1))), dim=-1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, n_mels, T) dB in [-db_range, 0] -> pooled features (B, C_last)."""
        return self.trunk(x)[-1].mean(dim=(-2, -1))  # (B, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, n_mels, T) log-mel chunks -> (B, embed_dim) unit-norm embeddings."""
        return self.embed_maps(self.trunk(x))


@register_encoder("contrastive_cnn_small", description="same family at 1/4 width, 64-d; for quick experiments and tests")
class ContrastiveCNNSmall(ContrastiveCNN):
    """The reference CNN at a quarter of its width (8-16-32 channels, 64-d)."""

    @dataclass(frozen=True)
    class Config(ContrastiveCNN.Config):
        channels: tuple[int, ...] = (8, 16, 32)
        embed_dim: int = 64
