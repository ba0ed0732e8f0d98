"""The reference contrastive CNN.

conv 3x3 (32) + BN + ReLU + max-pool 2 -> conv 3x3 (64) + BN + ReLU + max-pool 2
-> conv 3x3 (128) + BN + ReLU -> global average pool -> dense (128) -> L2-normalise.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from soundalike.models.encoders.base import MelEncoder
from soundalike.models.encoders.blocks import conv_blocks
from soundalike.models.registry import register_encoder


@register_encoder("contrastive_cnn", description="reference 3-block CNN, 128-d L2-normalised (~110k params)")
class ContrastiveCNN(MelEncoder):
    """Three conv blocks, global average pool, dense, L2 norm."""

    @dataclass(frozen=True)
    class Config:
        channels: tuple[int, ...] = (32, 64, 128)  # output channels per conv block
        pool: tuple[bool, ...] = (True, True, False)  # 2x2 max-pool after each block?
        embed_dim: int = 128  # output embedding size
        n_mels: int = 128  # input mel bands (must match the front-end)
        db_range: float = 80.0  # input dB lie in [-db_range, 0]; scaled to [-1, 1]
        song_pool: str = "mean"  # song embedding from chunk embeddings: mean or a learnt attention pool

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = c = config or self.Config()
        self.blocks = conv_blocks(c.channels, c.pool)
        self.fc = nn.Linear(c.channels[-1], c.embed_dim)
        self.init_song_pool()

    def stage_modules(self) -> list[nn.Module]:
        return list(self.blocks)


@register_encoder("contrastive_cnn_small", description="same family at 1/4 width, 64-d; for quick experiments and tests")
class ContrastiveCNNSmall(ContrastiveCNN):
    """The reference CNN at a quarter of its width (8-16-32 channels, 64-d)."""

    @dataclass(frozen=True)
    class Config(ContrastiveCNN.Config):
        channels: tuple[int, ...] = (8, 16, 32)
        embed_dim: int = 64
