"""The transcription networks (torch modules), by name: see :mod:`soundalike.transcribe.model`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from soundalike.transcribe.model import HEADS, N_PITCHES


def _block(cin: int, cout: int, kernel: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> list[nn.Module]:
    pad = (dilation[0] * (kernel[0] // 2), dilation[1] * (kernel[1] // 2))
    return [nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation), nn.BatchNorm2d(cout), nn.ReLU()]


class HarmonicStack(nn.Module):
    """(B, bands, T) -> (B, len(shifts), n_out, T): channel h at band b holds band b + shifts[h] (zero where
    that is off the spectrogram), so a pitch's band lines up with its harmonics' (Bittner et al., 2022). A
    gather: no weights, and in the network (not the front-end) so ONNX Runtime does it with the rest."""

    def __init__(self, shifts: tuple[int, ...], n_in: int, n_out: int) -> None:
        import torch

        super().__init__()
        self.shape = (len(shifts), n_out)
        idx = [[b + s if 0 <= b + s < n_in else n_in for b in range(n_out)] for s in shifts]  # n_in: a zero row
        self.register_buffer("index", torch.tensor(idx, dtype=torch.long).flatten(), persistent=False)

    def forward(self, spec: Any) -> Any:
        import torch

        padded = torch.cat([spec, torch.zeros_like(spec[:, :1])], dim=1)
        index: Any = self.index
        return padded.index_select(1, index).unflatten(1, self.shape)


class NotesHCNN(nn.Module):
    """A harmonic-stack CNN: the log-frequency spectrogram stacked by harmonic (:class:`HarmonicStack`),
    convolutions over (band, frame) at two bands per semitone, one over about an octave of bands, a pooling
    to one row per key, then dilated convolutions over time per key, and the four heads (onset, frame,
    offset, velocity logits). Input (B, spectrogram bands, T); output (B, 4, 88, T)."""

    @dataclass(frozen=True)
    class Config:
        # the stacking: each harmonic's offset in bands (round(12 x bins per semitone x log2 h) for h = 0.5, 1,
        # 2, ..., 6), the spectrogram's bands (A0 to 8 kHz at 16 kHz) and the stack's (the 88 keys)
        harmonic_shifts: tuple[int, ...] = (-24, 0, 24, 38, 48, 56, 62)
        spectrogram_bands: int = 197
        bins_per_semitone: int = 2
        channels: int = 16
        first_kernel: tuple[int, int] = (3, 3)  # (bands, frames) of the first convolution
        wide_taps: int = 13  # the band-wise kernel of the third block, dilated: 13 taps 2 bands apart span
        wide_dilation: int = 2  # 25 bands, an octave at two bands per semitone
        time_dilations: tuple[int, ...] = (1, 2, 4, 8)
        heads: tuple[str, ...] = HEADS

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        cfg = self.config = config or self.Config()
        c = cfg.channels
        bps = cfg.bins_per_semitone
        self.stack = HarmonicStack(tuple(cfg.harmonic_shifts), cfg.spectrogram_bands, N_PITCHES * bps)
        n_in = len(cfg.harmonic_shifts)
        self.local = nn.Sequential(*_block(n_in, c, (cfg.first_kernel[0], cfg.first_kernel[1])), *_block(c, c, (3, 3)),
                                   *_block(c, c, (cfg.wide_taps, 1), (cfg.wide_dilation, 1)))
        self.to_keys = nn.Sequential(nn.Conv2d(c, c, (2 * bps - 1 if bps > 1 else 1, 1), stride=(bps, 1),
                                               padding=((2 * bps - 1) // 2 if bps > 1 else 0, 0)),
                                     nn.BatchNorm2d(c), nn.ReLU())
        self.time = nn.ModuleList([nn.Sequential(*_block(c, c, (1, 3), (1, d))) for d in cfg.time_dilations])
        self.head = nn.Conv2d(c, len(cfg.heads), 1)

    def forward(self, x: Any) -> Any:  # (B, spectrogram bands, T) -> (B, heads, keys, T)
        h = self.to_keys(self.local(self.stack(x)))
        for block in self.time:
            h = h + block(h)
        return self.head(h)


NETS: dict[str, type[nn.Module]] = {"notes_hcnn": NotesHCNN}
