"""The decoder of the autoencoder objective: embedding -> log-mel chunk.

Dense to a (C, n_mels/8, frames/8) map, three up-sampling conv blocks, and a
crop to (n_mels, frames). Used only in training; the exported model is the
encoder, whose bottleneck (the embedding) the decoder had to reconstruct from.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MelDecoder(nn.Module):
    def __init__(self, embed_dim: int, n_mels: int, frames: int, channels: tuple[int, ...] = (64, 32, 16)) -> None:
        super().__init__()
        self.n_mels, self.frames = n_mels, frames
        self.h0, self.w0 = math.ceil(n_mels / 8), math.ceil(frames / 8)
        self.fc = nn.Linear(embed_dim, channels[0] * self.h0 * self.w0)
        blocks: list[nn.Module] = []
        cin = channels[0]
        for cout in (*channels[1:], channels[-1]):
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.up = nn.Sequential(*blocks)
        self.out = nn.Conv2d(cin, 1, 3, padding=1)
        self.c0 = channels[0]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, embed_dim) -> (B, 1, n_mels, frames) in [-1, 1]."""
        h = F.relu(self.fc(z)).view(len(z), self.c0, self.h0, self.w0)
        h = self.out(self.up(h))
        return torch.tanh(h[..., : self.n_mels, : self.frames])
