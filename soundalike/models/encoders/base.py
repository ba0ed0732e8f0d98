"""What every log-mel encoder family shares: input scaling, block maps, the chunk embedding, the song pooling.

An encoder maps log-mel chunks (B, n_mels, T) in dB ([-db_range, 0]) to unit
chunk embeddings (B, D). Its ``trunk`` gives the output map of each stage
(what tag heads read, from the embedding's own pass); ``features`` is the
last map averaged over everything but channels; the embedding is a dense
layer on it, L2-normalised.

A track's song embedding pools its chunk embeddings: ``song_pool="mean"``
(their re-normalised mean, what every model before issue 19 did) or
``"attention"``: a learnt :class:`SongPool` (attention weights over the
chunks, then a linear map), trained at song level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from soundalike.errors import ParameterError

SONG_POOLS = ("mean", "attention")


@dataclass(frozen=True)
class MelConfig:
    """Settings every log-mel family has; a family's ``Config`` subclasses it and adds its own."""

    embed_dim: int = 128  # output embedding size
    n_mels: int = 128  # input mel bands (must match the front-end)
    db_range: float = 80.0  # input dB lie in [-db_range, 0]; scaled to [-1, 1]
    song_pool: str = "attention"  # song embedding from chunk embeddings: a learnt attention pool, or mean


class SongPool(nn.Module):
    """Attention pooling of chunk embeddings into one song embedding.

    weights = softmax over chunks of ``v . tanh(W e)``; song = normalise(A (sum_i w_i e_i)).
    ``A`` starts as the identity and the scores as zero, so an untrained pool is the plain mean.
    """

    def __init__(self, dim: int, hidden: int = 64) -> None:
        super().__init__()
        last = nn.Linear(hidden, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), last)
        self.out = nn.Linear(dim, dim)
        with torch.no_grad():
            self.out.weight.copy_(torch.eye(dim))
            self.out.bias.zero_()

    def forward(self, chunks: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """chunks (B, N, D) [mask (B, N) bool, True = a real chunk] -> (B, D) unit rows."""
        s = self.score(chunks).squeeze(-1)  # (B, N)
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        w = torch.softmax(s, dim=-1).unsqueeze(-1)
        return F.normalize(self.out((w * chunks).sum(dim=1)), dim=-1)


class MelEncoder(nn.Module):
    """Base of the log-mel families. Subclasses set ``self.stages`` (a sequence of modules, each mapping the
    previous map to the next) and ``self.fc``; they may override :meth:`pool` for maps that are not (B, C, ...)."""

    config: Any
    stages: nn.Module
    fc: nn.Linear
    #: modules the chunk forward pass does not use (the song pool runs on chunk embeddings, in :meth:`song`)
    training_only_modules = ("song_head",)

    def init_song_pool(self) -> None:
        """Call at the end of ``__init__``: builds the learnt song pool when the config asks for it."""
        pool = getattr(self.config, "song_pool", "mean")
        if pool not in SONG_POOLS:
            raise ParameterError(f"song_pool must be one of {', '.join(SONG_POOLS)}, got {pool!r}")
        self.song_head = SongPool(self.embed_dim) if pool == "attention" else None

    @property
    def embed_dim(self) -> int:
        return int(self.config.embed_dim)

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """dB in [-db_range, 0] -> [-1, 1]."""
        half = self.config.db_range / 2
        return (x + half) / half

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """The scaled chunk as the first stage reads it; 2-D families add a channel axis."""
        return self.scale(x).unsqueeze(1)

    def trunk(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """x: (B, n_mels, T) dB -> the output map of each stage (only the first ``upto`` when given)."""
        h = self.stem(x)
        maps = []
        for stage in self.stage_modules()[:upto]:
            h = stage(h)
            maps.append(h)
        return maps

    def stage_modules(self) -> list[nn.Module]:
        """The stages in order (``self.stages`` unless a family keeps them under another name)."""
        return list(self.stages.children())

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        """A stage map (B, C, ...) -> (B, C): the mean over every axis after the channels."""
        return h.flatten(2).mean(dim=-1)

    def embed_maps(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """The embedding from :meth:`trunk`'s maps: (B, embed_dim), unit rows."""
        return F.normalize(self.fc(self.pool(maps[-1])), dim=-1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, n_mels, T) dB -> pooled features of the last stage (B, C)."""
        return self.pool(self.trunk(x)[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, n_mels, T) log-mel chunks -> (B, embed_dim) unit-norm embeddings."""
        return self.embed_maps(self.trunk(x))

    def song(self, chunks: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Chunk embeddings (B, N, D) (or (N, D) for one track) -> unit song embeddings (B, D) (or (D,))."""
        one = chunks.ndim == 2
        c = chunks.unsqueeze(0) if one else chunks
        if self.song_head is not None:
            out = self.song_head(c, mask)
        else:
            m = c if mask is None else c * mask.unsqueeze(-1)
            out = F.normalize(m.sum(dim=1), dim=-1)
        return out[0] if one else out


def conv_bn_relu(cin: int, cout: int, kernel: int | tuple[int, int] = 3, *, dilation: int = 1,
                 stride: int | tuple[int, int] = 1) -> list[nn.Module]:
    """A 2-D conv without bias + BN + ReLU ('same' padding)."""
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    pad = (dilation * (k[0] - 1) // 2, dilation * (k[1] - 1) // 2)
    return [nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def conv_pool_stages(channels: tuple[int, ...], pools: tuple[tuple[int, int], ...], *,
                     ceil_mode: bool = False) -> list[nn.Module]:
    """One stage per entry: 3x3 conv + BN + ReLU, then a max-pool of that entry's size; the input has one channel."""
    stages: list[nn.Module] = []
    cin = 1
    for cout, p in zip(channels, pools, strict=True):
        stages.append(nn.Sequential(*conv_bn_relu(cin, cout), nn.MaxPool2d(p, ceil_mode=ceil_mode)))
        cin = cout
    return stages
