"""The events networks (torch modules), by name: see :mod:`soundalike.events.model` for the model around them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from soundalike.events.model import OUTPUTS


class TCNBlock(nn.Module):
    """A residual dilated 1-D convolution over time."""

    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=dilation * (kernel // 2), dilation=dilation)
        self.norm = nn.BatchNorm1d(channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Any) -> Any:  # (B, C, T)
        return x + self.drop(nn.functional.elu(self.norm(self.conv(x))))


class EventsTCN(nn.Module):
    """Multi-resolution mel CNN + dilated TCN, one sigmoid output per event kind, 100 frames/s."""

    @dataclass(frozen=True)
    class Config:
        n_inputs: int = 3  # input channels (one per STFT size)
        n_mels: int = 80
        conv_channels: tuple[int, ...] = (12, 24, 32)  # per CNN block; each pools frequency
        freq_pools: tuple[int, ...] = (3, 3, 0)  # 0: pool what is left of frequency
        tcn_channels: int = 32
        kernel: int = 5
        dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 1, 4)
        dropout: float = 0.1
        outputs: tuple[str, ...] = OUTPUTS

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        cfg = self.config = config or self.Config()
        layers: list[Any] = []
        cin, bands = cfg.n_inputs, cfg.n_mels
        for cout, pool in zip(cfg.conv_channels, cfg.freq_pools, strict=True):
            p = pool or bands
            layers += [nn.Conv2d(cin, cout, (3, 3), padding=(1, 1)), nn.BatchNorm2d(cout), nn.ELU(),
                       nn.MaxPool2d((p, 1))]
            cin, bands = cout, bands // p
        self.cnn = nn.Sequential(*layers)
        self.proj = nn.Conv1d(cin * bands, cfg.tcn_channels, 1)
        self.tcn = nn.Sequential(*[TCNBlock(cfg.tcn_channels, cfg.kernel, d, cfg.dropout) for d in cfg.dilations])
        self.head = nn.Conv1d(cfg.tcn_channels, len(cfg.outputs), 1)

    def forward(self, x: Any) -> Any:  # (B, C, F, T) -> logits (B, outputs, T)
        h = self.cnn(x)  # (B, C', F', T)
        h = self.proj(h.flatten(1, 2))
        return self.head(self.tcn(h))


NETS: dict[str, type[nn.Module]] = {"events_tcn": EventsTCN}
