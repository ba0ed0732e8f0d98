"""A fingerprint encoder: one ~1 s log-mel window -> 128 numbers whose signs are the binary code.

Four conv blocks (3x3 conv + BN + ReLU, 2x2 max-pool after the first three)
shrink a (64 mel x 51 frame) window to (C, 8, 6); the time axis is averaged
away while the frequency axis is kept (where energy sits matters to a
fingerprint), and a dense layer gives the embedding, L2-normalised.
Training pulls a window and its degraded copy (noise, codec, pitch, tempo,
speed, reverb) together against every other window in the batch (InfoNCE);
the index stores only the signs, 128 bits per window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from soundalike.errors import ParameterError
from soundalike.models.encoders.blocks import conv_blocks
from soundalike.models.registry import register_encoder


@register_encoder("fingerprint_cnn", description="1 s windows -> 128-bit codes for excerpt identification (~0.4M params)")
class FingerprintCNN(nn.Module):
    """Conv blocks, time-average keeping frequency, dense, L2 norm."""

    @dataclass(frozen=True)
    class Config:
        channels: tuple[int, ...] = (32, 64, 128, 128)
        pool: tuple[bool, ...] = (True, True, True, False)
        embed_dim: int = 128  # also the number of bits of the code
        n_mels: int = 64
        db_range: float = 80.0

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = c = config or self.Config()
        self.blocks = conv_blocks(c.channels, c.pool)
        bands = c.n_mels // 2 ** sum(c.pool)
        if bands < 1:
            raise ParameterError(f"n_mels={c.n_mels} is too few for {sum(c.pool)} poolings")
        self.fc = nn.Linear(c.channels[-1] * bands, c.embed_dim)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, n_mels, T) dB in [-db_range, 0] -> (B, embed_dim) unit-norm embeddings."""
        half = self.config.db_range / 2
        h = self.blocks(((x + half) / half).unsqueeze(1))  # (B, C, M', T')
        h = h.mean(dim=-1).flatten(1)  # (B, C * M')
        return F.normalize(self.fc(h), dim=-1)
