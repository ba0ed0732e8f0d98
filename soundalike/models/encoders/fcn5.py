"""FCN-5 (Choi, Fazekas and Sandler, 2016): five 3x3 conv layers, each with BN, ReLU and max-pooling, until
the map is a few cells; average pool, dense, L2 norm. Narrower than the paper's, for a laptop CPU."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from soundalike.errors import ParameterError
from soundalike.models.encoders.base import MelConfig, MelEncoder, conv_pool_stages
from soundalike.models.registry import register_encoder


@register_encoder("fcn5", description="FCN-5: five conv + max-pool layers, 128-d (~0.6M params)")
class FCN5(MelEncoder):
    """Five conv layers; pools (2,2) four times, then (4,4)."""

    @dataclass(frozen=True)
    class Config(MelConfig):
        channels: tuple[int, ...] = (32, 64, 128, 128, 256)

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = c = config or self.Config()
        if len(c.channels) != 5:
            raise ParameterError("fcn5 needs 5 conv widths")
        if c.n_mels < 64:
            raise ParameterError(f"fcn5 needs n_mels >= 64, got {c.n_mels}")
        self.stages = nn.Sequential(*conv_pool_stages(c.channels, ((2, 2), (2, 2), (2, 2), (2, 2), (4, 4)),
                                                       ceil_mode=True))
        self.fc = nn.Linear(c.channels[-1], c.embed_dim)
        self.init_song_pool()
