"""Building blocks shared by the encoders."""

from __future__ import annotations

from torch import nn

from soundalike.errors import ParameterError


def conv_blocks(channels: tuple[int, ...], pool: tuple[bool, ...]) -> nn.Sequential:
    """3x3 conv (no bias) + BN + ReLU per entry of ``channels``, then a 2x2 max-pool where ``pool`` says so.

    The input has one channel (a log-mel image); the output has ``channels[-1]``.
    """
    if len(channels) != len(pool) or not channels:
        raise ParameterError("channels and pool need the same, non-zero length")
    blocks: list[nn.Module] = []
    cin = 1
    for cout, p in zip(channels, pool, strict=True):
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                                   nn.ReLU(inplace=True)]
        if p:
            layers.append(nn.MaxPool2d(2))
        blocks.append(nn.Sequential(*layers))
        cin = cout
    return nn.Sequential(*blocks)
