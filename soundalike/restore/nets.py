"""The restoration networks (torch modules), by name: see :mod:`soundalike.restore.model`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn


class _Down(nn.Module):
    """A 3x3 convolution that halves the frequency axis (stride 2 over bins, 1 over frames), BatchNorm, ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, (3, 3), stride=(2, 1), padding=(1, 1))
        self.norm = nn.BatchNorm2d(cout)
        self.act = nn.ReLU()

    def forward(self, x: Any) -> Any:
        return self.act(self.norm(self.conv(x)))


class _Up(nn.Module):
    """Back up to the skip's bins (nearest), concatenated with the encoder's skip, then a convolution over
    three bins (time context comes from the bottleneck)."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin + cskip, cout, (3, 1), padding=(1, 0))
        self.norm = nn.BatchNorm2d(cout)
        self.act = nn.ReLU()

    def forward(self, x: Any, skip: Any) -> Any:
        import torch

        up = x.repeat_interleave(2, dim=2)[:, :, : skip.shape[2]]
        return self.act(self.norm(self.conv(torch.cat([up, skip], dim=1))))


class _TimeBlock(nn.Module):
    """A residual block at the bottleneck: a 3x3 convolution dilated over frames, then a 1x1."""

    def __init__(self, ch: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, (3, 3), padding=(1, dilation), dilation=(1, dilation))
        self.norm = nn.BatchNorm2d(ch)
        self.mix = nn.Conv2d(ch, ch, 1)
        self.act = nn.ReLU()

    def forward(self, x: Any) -> Any:
        return x + self.mix(self.act(self.norm(self.conv(x))))


class MaskUNet(nn.Module):
    """A U-Net over the STFT (Jansson et al., 2017, at a laptop's size) that predicts a complex mask.

    Input (B, bins, T): the loudness-normalised log magnitude ``log1p(c |X|)``. The network adds a second
    channel, the local noise floor: each bin's minimum over :attr:`Config.floor_frames` frames (a
    minimum-statistics estimate, Martin 2001), so a stationary hiss or hum is visible from any frame.
    The encoder halves the bins at each level; the bottleneck's residual blocks are dilated over time;
    the decoder goes back up with skips; a 1x1 convolution of the level and the floor is added at the end
    (a Wiener-like gain per bin is one step away). Output (B, 2, bins, T): the mask's magnitude logit and
    its phase turn (:func:`soundalike.restore.model.apply_mask`); zeros pass the audio through unchanged,
    and the last layers start at zero."""

    @dataclass(frozen=True)
    class Config:
        n_bins: int = 513
        channels: tuple[int, ...] = (12, 16, 24, 24)  # per encoder level, each halving the bins
        top_channels: int = 8  # the full-resolution decoder layer's
        time_dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32)  # the bottleneck's blocks
        floor_frames: int = 171  # the noise floor's window (about 2 s at 86 frames/s); odd

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = c = config or self.Config()
        if c.floor_frames % 2 == 0 or c.floor_frames < 1:
            raise ValueError("floor_frames must be odd")
        # a running minimum over floor_frames frames in two cheap passes: over q frames, then over the
        # reach + 1 of those q apart (q + q * reach = floor_frames)
        q = next(k for k in (9, 7, 5, 3, 1) if (c.floor_frames - k) % k == 0)
        self.floor_pools = (nn.MaxPool2d((1, q), stride=1),
                            nn.MaxPool2d((1, (c.floor_frames - q) // q + 1), stride=1, dilation=(1, q)))
        chans = (2, *c.channels)
        self.down = nn.ModuleList(_Down(a, b) for a, b in zip(chans[:-1], chans[1:], strict=True))
        self.mid = nn.Sequential(*[_TimeBlock(c.channels[-1], d) for d in c.time_dilations])
        ups = []
        for i in range(len(c.channels) - 1, 0, -1):
            ups.append(_Up(c.channels[i], c.channels[i - 1], c.channels[i - 1]))
        self.up = nn.ModuleList(ups)
        self.top = _Up(c.channels[0], 2, c.top_channels)
        self.out = nn.Conv2d(c.top_channels, 2, (1, 1))
        # a direct path from each bin's level and noise floor: a Wiener-like gain is one step away
        self.direct = nn.Conv2d(2, 2, (1, 1))
        for layer in (self.out, self.direct):
            nn.init.zeros_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def forward(self, spec: Any) -> Any:
        import torch

        x = spec[:, None]
        half = self.config.floor_frames // 2
        low = torch.nn.functional.pad(-x, (half, half), value=-1e4)  # padding never wins the maximum
        for pool in self.floor_pools:
            low = pool(low)
        x = torch.cat([x, -low], dim=1)
        direct = self.direct(x)
        skips = [x]
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = self.mid(x)
        for layer, skip in zip(self.up, skips[-2:0:-1], strict=True):
            x = layer(x, skip)
        x = self.top(x, skips[0])
        return self.out(x) + direct


NETS: dict[str, type[Any]] = {"mask_unet": MaskUNet}
