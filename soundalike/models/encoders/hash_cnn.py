"""The hash-CNN: FCN-5 feature maps -> stacked recurrent net -> relaxed hash layer -> softmax.

Input: a 29.12 s clip as log-mel dB, (B, 96, 1366) at 12 kHz, n_fft 512, hop 256,
padded with silence to 1400 frames (the reference layout).

- Backbone, FCN-5 (Choi et al. 2016): five blocks of 3x3 conv + BN + ReLU +
  max-pool with pools (2,4) (2,4) (2,4) (3,5) (4,4), channels
  (128, 256, 512, 1024, 2048) times ``width`` (1/8 by default, so it trains on a
  CPU). It is pre-trained alone as a classifier (global average pool -> dense ->
  softmax over the labels), then frozen.
- Feature maps: the output of each block in ``layers`` is resized to a common
  (F, T) = ``map_size`` with anti-aliased bilinear interpolation, flattened, and
  projected by a per-layer dense layer to ``step_dim`` (the layers have different
  channel counts, so a common spatial size alone does not give equal-sized steps).
- ``features="sequence"`` (the reference): the projected maps, one step per layer
  from shallow to deep, go through a stacked recurrent net (``rnn`` = lstm, gru or
  rnn; ``rnn_layers`` 1 or 2); the last hidden state of the top layer is ``h``.
  ``features="concat"`` concatenates every layer's flattened map, and
  ``features="layerK"`` takes block K alone; both then use one dense + ReLU layer
  of ``hidden`` units for ``h`` (the comparisons of the experiments).
- Hash layer: q = tanh(W^T h + v), ``bits`` wide; a softmax classifier sits on q.
  Training minimises cross-entropy + ``quant_weight`` * mean((|q| - 1)^2) +
  ``balance_weight`` * mean over bits of (batch mean of q)^2. The code is sign(q).
  With ``bits=0`` there is no hash layer: the classifier sits on ``h`` and
  the float ``h`` is the embedding (the ceiling the codes are measured against).

``forward`` returns q (or h when ``bits=0``); ``outputs`` returns every stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from soundalike.errors import ParameterError
from soundalike.models.registry import register_encoder

FCN5_CHANNELS = (128, 256, 512, 1024, 2048)
FCN5_POOLS = ((2, 4), (2, 4), (2, 4), (3, 5), (4, 4))
RNN_UNITS = ("lstm", "gru", "rnn")


def feature_modes(n_layers: int = 5) -> tuple[str, ...]:
    """Every valid ``features`` setting: sequence, concat, layer1..layerN."""
    return ("sequence", "concat", *(f"layer{i}" for i in range(1, n_layers + 1)))


class FCN5(nn.Module):
    """Five conv blocks; ``forward`` returns every block's output, (B, C_k, F_k, T_k)."""

    def __init__(self, channels: tuple[int, ...], pools: tuple[tuple[int, int], ...]) -> None:
        super().__init__()
        blocks = []
        cin = 1
        for cout, pool in zip(channels, pools, strict=True):
            blocks.append(nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                                        nn.ReLU(inplace=True), nn.MaxPool2d(pool)))
            cin = cout
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        return maps


@register_encoder("hash_cnn", description="FCN-5 maps -> stacked LSTM -> binary hash codes, 29.12 s clips (~1M params)")
class HashCNN(nn.Module):
    """FCN-5 backbone, per-layer map summaries, recurrent summary, relaxed hash layer, classifier."""

    unit_norm = False  # forward gives relaxed codes in (-1, 1), not unit vectors
    training_only_modules = ("classifier", "backbone_classifier")  # softmax heads; forward does not use them
    #: its antialiased resize has no ONNX operator: inference stays in eager torch (a hash code per track is cheap)
    onnx_exportable = False

    @dataclass(frozen=True)
    class Config:
        n_mels: int = 96  # input mel bands (the front-end's)
        pad_frames: int = 1400  # clips are padded (silence) or cut to this many frames
        db_range: float = 80.0  # input dB lie in [-db_range, 0]; scaled to [-1, 1]
        width: float = 0.125  # multiplier on FCN-5's (128, 256, 512, 1024, 2048) channels
        n_classes: int = 16  # softmax outputs (labels of the training data)
        layers: tuple[int, ...] = (1, 2, 3, 4, 5)  # blocks whose maps feed the head (1 = shallowest)
        map_size: tuple[int, int] = (4, 4)  # common (mel, time) size after bilinear interpolation
        features: str = "sequence"  # sequence | concat | layer1 .. layer5
        step_dim: int = 64  # per-layer projection, the recurrent net's input size
        rnn: str = "lstm"  # lstm | gru | rnn
        rnn_layers: int = 2  # stacked recurrent layers (the reference: two LSTMs)
        hidden: int = 128  # recurrent / dense hidden size (h)
        bits: int = 64  # code length; 0: no hash layer (float h is the embedding)
        quant_weight: float = 0.1  # pulls q to +-1
        balance_weight: float = 0.01  # pushes each bit's batch mean to 0
        dropout: float = 0.0  # on each layer's flattened map, while training the head

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = c = config or self.Config()
        if c.rnn not in RNN_UNITS:
            raise ParameterError(f"rnn must be one of {RNN_UNITS}, got {c.rnn!r}")
        if c.features not in feature_modes(len(FCN5_CHANNELS)):
            raise ParameterError(f"features must be one of {feature_modes()}, got {c.features!r}")
        if c.bits < 0 or c.bits % 8:
            raise ParameterError(f"bits must be a multiple of 8 (or 0 for a float head), got {c.bits}")
        if not c.layers or any(not 1 <= k <= len(FCN5_CHANNELS) for k in c.layers):
            raise ParameterError(f"layers must name blocks 1..{len(FCN5_CHANNELS)}, got {c.layers}")
        if c.width <= 0 or c.n_classes < 2 or c.rnn_layers < 1:
            raise ParameterError("width must be positive, n_classes >= 2 and rnn_layers >= 1")
        chans = tuple(max(4, round(ch * c.width)) for ch in FCN5_CHANNELS)
        self.channels = chans
        self.backbone = FCN5(chans, FCN5_POOLS)
        self.backbone_classifier = nn.Linear(chans[-1], c.n_classes)  # pre-training only
        cells = c.map_size[0] * c.map_size[1]
        if c.features == "sequence":
            self.project = nn.ModuleList(nn.Linear(chans[k - 1] * cells, c.step_dim) for k in c.layers)
            unit = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[c.rnn]
            self.recurrent = unit(c.step_dim, c.hidden, num_layers=c.rnn_layers, batch_first=True)
        else:
            picked = c.layers if c.features == "concat" else (int(c.features[5:]),)
            self.dense = nn.Sequential(nn.Linear(sum(chans[k - 1] for k in picked) * cells, c.hidden),
                                       nn.ReLU(inplace=True))
        self.drop = nn.Dropout(c.dropout)
        self.hash = nn.Linear(c.hidden, c.bits) if c.bits else None
        self.classifier = nn.Linear(c.bits or c.hidden, c.n_classes)

    @property
    def embed_dim(self) -> int:
        return self.config.bits or self.config.hidden

    # ------------------------------------------------------------ stages
    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) dB -> (B, 1, n_mels, pad_frames) in [-1, 1], silence-padded or cut."""
        c = self.config
        if x.ndim != 3 or x.shape[1] != c.n_mels:
            raise ParameterError(f"expected log-mel clips of shape (B, {c.n_mels}, T), got {tuple(x.shape)}")
        x = x[..., : c.pad_frames]
        if x.shape[-1] < c.pad_frames:
            x = F.pad(x, (0, c.pad_frames - x.shape[-1]), value=-c.db_range)
        half = c.db_range / 2
        return ((x + half) / half).unsqueeze(1)

    def maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Log-mel clips -> the head's inputs: one (B, C_k, *map_size) tensor per block in ``layers``."""
        out = self.backbone(self._input(x))
        size = self.config.map_size
        return [F.interpolate(out[k - 1], size=size, mode="bilinear", align_corners=False,
                              antialias=out[k - 1].shape[-2] > size[0] or out[k - 1].shape[-1] > size[1])
                for k in self.config.layers]

    def backbone_logits(self, x: torch.Tensor, *, dropout: float = 0.0) -> torch.Tensor:
        """Pre-training path: FCN-5 -> global average pool -> dropout (while training) -> dense -> class logits
        (B, n_classes)."""
        pooled = self.backbone(self._input(x))[-1].mean(dim=(-2, -1))  # (B, C5)
        return self.backbone_classifier(F.dropout(pooled, dropout, training=self.training))

    def head(self, maps: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-layer maps (from :meth:`maps`) -> {"h", "q" (absent when bits=0), "logits"}."""
        c = self.config
        if c.features == "sequence":
            steps = torch.stack([p(self.drop(m.flatten(1))) for p, m in zip(self.project, maps, strict=True)],
                                dim=1)  # (B, L, D)
            seq, _ = self.recurrent(steps)
            h = seq[:, -1]  # (B, hidden): the top layer's last hidden state
        elif c.features == "concat":
            h = self.dense(self.drop(torch.cat([m.flatten(1) for m in maps], dim=1)))
        else:
            h = self.dense(self.drop(maps[c.layers.index(int(c.features[5:]))].flatten(1)))
        out = {"h": h}
        if self.hash is not None:
            out["q"] = torch.tanh(self.hash(h))
        out["logits"] = self.classifier(out.get("q", h))
        return out

    def outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.maps(x))

    def loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cross-entropy + quantisation + bit balance (the last two only with a hash layer)."""
        c = self.config
        ce = F.cross_entropy(out["logits"], labels)
        terms = {"ce": ce}
        if "q" in out:
            q = out["q"]
            terms["quant"] = (q.abs() - 1).square().mean()
            terms["balance"] = q.mean(dim=0).square().mean()
            terms["loss"] = ce + c.quant_weight * terms["quant"] + c.balance_weight * terms["balance"]
        else:
            terms["loss"] = ce
        return terms

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, n_mels, T) log-mel dB -> (B, bits) relaxed codes q in (-1, 1) (sign(q) is the code);
        with bits=0, (B, hidden) float embeddings h."""
        out = self.outputs(x)
        return out.get("q", out["h"])
