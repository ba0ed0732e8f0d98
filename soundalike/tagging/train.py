"""Training tag heads on a frozen encoder's chunk features.

:func:`chunk_features` runs the encoder once over a waveform's chunks (every
``hop_frames``: 64 frames = 1.49 s for the default model) and keeps the pooled
features the embedding is made from. :func:`distillation_set` pairs each
chunk with the teacher's score row covering the chunk's centre;
:func:`train_tag_head` fits a :class:`~soundalike.models.heads.TagMLP` with
binary cross-entropy on soft targets (multi-label) or cross-entropy (one
label per item).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from soundalike.errors import ParameterError

TIMELINE_HOP_FRAMES = 64  # 64 x 512 / 22050 = 1.49 s between chunk starts for the default front-end


@dataclass(frozen=True)
class TagTrainConfig:
    steps: int = 2000
    batch: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    hidden: int = 256
    dropout: float = 0.2
    seed: int = 0
    threads: int = 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def chunk_features(encoder: Any, samples: np.ndarray, *, hop_frames: int = TIMELINE_HOP_FRAMES,
                   batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Pooled encoder features of every chunk [shape=(n, d)] and each chunk's centre time in seconds [shape=(n,)].

    ``samples`` must be at the encoder's sample rate.
    """
    from soundalike.features.mel import log_mel_chunks

    fe = encoder.frontend
    chunks = log_mel_chunks(np.asarray(samples, dtype=np.float32), fe, hop_frames=hop_frames)
    feats = encoder.chunk_features(chunks, batch_size=batch_size)
    centres = (np.arange(len(feats)) * hop_frames + (fe.chunk_frames - 1) / 2) * fe.hop_length / fe.sample_rate
    return feats, centres


def align_rows(centres: np.ndarray, row_seconds: float, n_rows: int) -> np.ndarray:
    """Index of the teacher row (one per ``row_seconds``) covering each chunk centre, clipped to the last row."""
    if row_seconds <= 0 or n_rows < 1:
        raise ParameterError("row_seconds must be positive and there must be at least one row")
    return np.minimum((np.asarray(centres) // row_seconds).astype(np.int64), n_rows - 1)


def distillation_set(encoder: Any, teacher: Any, *, hop_frames: int = TIMELINE_HOP_FRAMES,
                     paths: list[str] | None = None, max_seconds: float = 600.0
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features (N, d), teacher scores (N, n_tags), track index (N,)) for the teacher's files (or ``paths``)."""
    from soundalike.audio.io import decode

    wanted = paths if paths is not None else sorted(teacher.scores)
    xs, ys, ts = [], [], []
    for i, path in enumerate(wanted):
        rows = teacher.scores[path]
        audio = decode(path, sr=encoder.frontend.sample_rate, duration=max_seconds, max_duration=None)
        feats, centres = chunk_features(encoder, audio.samples, hop_frames=hop_frames)
        xs.append(feats)
        ys.append(rows[align_rows(centres, teacher.chunk_seconds, len(rows))])
        ts.append(np.full(len(feats), i))
    return np.concatenate(xs), np.concatenate(ys).astype(np.float32), np.concatenate(ts)


def train_tag_head(x: np.ndarray, y: np.ndarray, cfg: TagTrainConfig, *, multi_label: bool = True) -> Any:
    """Fit a TagMLP on features x [shape=(n, d)] and targets y: soft scores [shape=(n, n_tags)] (multi-label)
    or class indices [shape=(n,)] with ``multi_label=False`` (then ``n_tags`` = y.max() + 1)."""
    import torch
    import torch.nn.functional as F

    from soundalike.models.heads import TagMLP

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    if multi_label:
        yt = torch.as_tensor(np.asarray(y), dtype=torch.float32)
        n_tags = yt.shape[1]
    else:
        yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
        n_tags = int(yt.max()) + 1
    mu, sd = xt.mean(dim=0), xt.std(dim=0) + 1e-6
    net = TagMLP(TagMLP.Config(in_dim=xt.shape[1], hidden=cfg.hidden, n_tags=n_tags, dropout=cfg.dropout))
    with torch.no_grad():  # fold feature standardisation into the first layer, so the head reads raw features
        first: Any = net.net[0]
        first.weight.data /= sd
        first.bias.data -= (first.weight.data * mu).sum(dim=1)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.steps, 1))
    net.train()
    for _ in range(cfg.steps):
        b = torch.from_numpy(rng.integers(0, len(xt), size=min(cfg.batch, len(xt))))
        logits = net(xt[b])
        loss = (F.binary_cross_entropy_with_logits(logits, yt[b]) if multi_label
                else F.cross_entropy(logits, yt[b]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()
