"""FCN-5 (Choi, Fazekas and Sandler, 2016): five 3x3 conv layers, each with BN, ReLU and max-pooling, until
the map is a few cells; average pool, dense, L2 norm. Narrower than the paper's, for a laptop CPU."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from soundalike.errors import ParameterError
from soundalike.models.encoders.base import MelEncoder, conv_bn_relu
from soundalike.models.registry import register_encoder


@register_encoder("fcn5", description="FCN-5: five conv + max-pool layers, 128-d (~0.6M params)")
class FCN5(MelEncoder):
    """Five conv layers; pools (2,2) four times, then (4,4)."""

    @dataclass(frozen=True)
    class Config:
        channels: tuple[int, ...] = (32, 64, 128, 128, 256)
        embed_dim: int = 128
        n_mels: int = 128
        db_range: float = 80.0
        song_pool: str = "attention"

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = c = config or self.Config()
        if len(c.channels) != 5:
            raise ParameterError("fcn5 needs 5 conv widths")
        if c.n_mels < 64:
            raise ParameterError(f"fcn5 needs n_mels >= 64, got {c.n_mels}")
        pools = ((2, 2), (2, 2), (2, 2), (2, 2), (4, 4))
        stages: list[nn.Module] = []
        cin = 1
        for cout, p in zip(c.channels, pools, strict=True):
            stages.append(nn.Sequential(*conv_bn_relu(cin, cout), nn.MaxPool2d(p, ceil_mode=True)))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, c.embed_dim)
        self.init_song_pool()
