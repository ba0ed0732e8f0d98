"""Training the hash-CNN in its two stages, and encoding with it.

1. :func:`pretrain_backbone`: FCN-5 as a classifier on random 29.12 s crops of
   the training tracks (labels drawn evenly, then a track of that label).
2. :func:`extract_maps` runs the frozen backbone once over fixed clips, keeping
   each block's map at the common size; :func:`train_head` then trains the
   recurrent/dense head, hash layer and classifier on those cached maps, so the
   experiments' many heads cost seconds each rather than a backbone pass.

:func:`hash_model` wraps the result as an :class:`~soundalike.models.checkpoint.AudioEncoder`
that indexes like any other model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from soundalike.errors import ParameterError
from soundalike.hashing.data import LabelledTracks, cut_clip, iter_clips
from soundalike.train.base import Solver, warmup_cosine


@dataclass(frozen=True)
class HashTrainConfig:
    """Settings of both stages."""

    backbone_steps: int = 1500  # classifier pre-training steps
    backbone_batch: int = 32
    backbone_lr: float = 1e-3
    backbone_dropout: float = 0.5  # on the pooled features before the pre-training classifier
    time_masks: int = 2  # SpecAugment while pre-training: masks of up to mask_frames frames
    mask_frames: int = 120
    freq_masks: int = 2  # and of up to mask_bands mel bands, set to silence
    mask_bands: int = 12
    head_steps: int = 1500  # head training steps on cached maps
    head_batch: int = 128
    head_lr: float = 2e-3
    weight_decay: float = 1e-4
    map_hop_frames: int = 683  # training clips for the head overlap by half
    map_clips_per_track: int = 12  # at most, spread over the track
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        if min(self.backbone_batch, self.head_batch, self.map_hop_frames, self.map_clips_per_track) <= 0:
            raise ParameterError("batch sizes, map_hop_frames and map_clips_per_track must be positive")
        if self.backbone_steps < 0 or self.head_steps < 0:
            raise ParameterError("step counts cannot be negative")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _warmup_cosine(opt: Any, steps: int, warmup_fraction: float) -> Any:
    """Linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to zero."""
    import torch

    warm = max(1, int(steps * warmup_fraction))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_cosine(step, steps=steps, warmup=warm))


def spec_augment(x: np.ndarray, rng: np.random.Generator, cfg: HashTrainConfig, *, floor: float) -> np.ndarray:
    """Time and frequency masks (set to ``floor`` dB) on clips [shape=(B, n_mels, t)], in place."""
    b, n_mels, t = x.shape
    for i in range(b):
        for _ in range(cfg.time_masks):
            w = int(rng.integers(0, cfg.mask_frames + 1))
            s = int(rng.integers(0, max(1, t - w)))
            x[i, :, s : s + w] = floor
        for _ in range(cfg.freq_masks):
            w = int(rng.integers(0, cfg.mask_bands + 1))
            s = int(rng.integers(0, max(1, n_mels - w)))
            x[i, s : s + w, :] = floor
    return x


class BackboneSolver(Solver):
    """Stage 1: the FCN-5 backbone and its classifier on random crops, balanced over labels, SpecAugment."""

    desc = "pre-training FCN-5"

    def __init__(self, net: Any, tracks: LabelledTracks, train_idx: np.ndarray, cfg: HashTrainConfig, *,
                 log: Callable[[str], None] | None = None) -> None:
        super().__init__(steps=cfg.backbone_steps, seed=cfg.seed, threads=cfg.threads, log=log)
        self.net, self.tracks, self.cfg = net, tracks, cfg
        idx = np.asarray(train_idx)
        self.by_label = {int(lab): idx[tracks.labels[idx] == lab] for lab in np.unique(tracks.labels[idx])}
        self.labs = np.array(sorted(self.by_label))

    def build(self) -> None:
        import torch

        params = list(self.net.backbone.parameters()) + list(self.net.backbone_classifier.parameters())
        self.opt = torch.optim.AdamW(params, lr=self.cfg.backbone_lr, weight_decay=self.cfg.weight_decay)
        self.sched = _warmup_cosine(self.opt, self.cfg.backbone_steps, 0.05)
        self.net.train()

    def train_step(self) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        cfg, rng, fe = self.cfg, self.rng, self.tracks.frontend
        picks = [int(rng.choice(self.by_label[int(rng.choice(self.labs))])) for _ in range(cfg.backbone_batch)]
        clips = []
        for i in picks:
            n = self.tracks.db[i].shape[1]
            s = int(rng.integers(0, max(n - fe.chunk_frames, 0) + 1))
            clips.append(cut_clip(self.tracks.db[i], s, fe.chunk_frames, top_db=fe.top_db))
        x = torch.from_numpy(spec_augment(np.stack(clips), rng, cfg, floor=-fe.top_db))
        y = torch.from_numpy(self.tracks.labels[picks]).long()
        logits = self.net.backbone_logits(x, dropout=cfg.backbone_dropout)
        loss = F.cross_entropy(logits, y)
        self.optimise(loss)
        out = {"loss": float(loss.detach()), "acc": float((logits.argmax(1) == y).float().mean())}
        if self.step % 100 == 0:
            recent = [*self.history[-99:], out]
            self.log(f"backbone step {self.step}: loss {np.mean([h['loss'] for h in recent]):.3f}, "
                     f"train acc {np.mean([h['acc'] for h in recent]):.3f}")
        return out


def pretrain_backbone(net: Any, tracks: LabelledTracks, train_idx: np.ndarray, cfg: HashTrainConfig, *,
                      progress: bool = False, log: Callable[[str], None] | None = None) -> list[dict[str, float]]:
    """Train ``net.backbone`` + ``net.backbone_classifier`` on random crops; returns the loss history."""
    return BackboneSolver(net, tracks, train_idx, cfg, log=log).run(progress=progress)["history"]


def extract_maps(net: Any, tracks: LabelledTracks, idx: np.ndarray, *, hop: int, limit: int | None = None,
                 batch: int = 32, progress: bool = False) -> tuple[list[np.ndarray], np.ndarray]:
    """Frozen-backbone maps of fixed clips: one float32 array (n_clips, C_k, *map_size) per head layer,
    and the track index of each clip."""
    import torch

    net.eval()
    per_layer: list[list[np.ndarray]] = []
    track_of: list[np.ndarray] = []
    total = None
    bar = None
    if progress:
        from tqdm import tqdm

        from soundalike.hashing.data import clip_starts

        fe = tracks.frontend
        total = sum(len(clip_starts(tracks.db[int(i)].shape[1], fe.chunk_frames, hop, limit=limit)) for i in idx)
        bar = tqdm(total=total, desc="feature maps", unit="clip", dynamic_ncols=True)
    with torch.inference_mode():
        for clips, which in iter_clips(tracks, idx, hop=hop, limit=limit, batch=batch):
            maps = net.maps(torch.from_numpy(clips))
            if not per_layer:
                per_layer = [[] for _ in maps]
            for store, m in zip(per_layer, maps, strict=True):
                store.append(m.numpy().copy())
            track_of.append(which)
            if bar is not None:
                bar.update(len(which))
    if bar is not None:
        bar.close()
    return [np.concatenate(s) for s in per_layer], np.concatenate(track_of)


def backbone_accuracy(net: Any, tracks: LabelledTracks, idx: np.ndarray, *, hop: int, limit: int | None = None
                      ) -> float:
    """Share of fixed clips of the tracks ``idx`` that the pre-training classifier labels right."""
    import torch

    net.eval()
    right = total = 0
    with torch.inference_mode():
        for clips, which in iter_clips(tracks, idx, hop=hop, limit=limit):
            pred = net.backbone_logits(torch.from_numpy(clips)).argmax(1).numpy()
            right += int((pred == tracks.labels[which]).sum())
            total += len(which)
    return right / max(total, 1)


def head_net(backbone_net: Any, **changes: Any) -> Any:
    """A fresh :class:`HashCNN` with ``changes`` to the config and the trained backbone's weights."""
    from soundalike.models.encoders.hash_cnn import HashCNN

    net = HashCNN(replace(backbone_net.config, **changes))
    net.backbone.load_state_dict(backbone_net.backbone.state_dict())
    net.backbone_classifier.load_state_dict(backbone_net.backbone_classifier.state_dict())
    net.eval()
    return net


def _head_params(net: Any) -> list[Any]:
    frozen = {id(p) for p in list(net.backbone.parameters()) + list(net.backbone_classifier.parameters())}
    return [p for p in net.parameters() if id(p) not in frozen]


class HeadSolver(Solver):
    """Stage 2: everything after the (frozen) backbone, on cached maps (one array per layer)."""

    desc = "training head"

    def __init__(self, net: Any, maps: list[np.ndarray], labels: np.ndarray, cfg: HashTrainConfig) -> None:
        super().__init__(steps=cfg.head_steps, seed=cfg.seed, threads=cfg.threads)
        self.net, self.maps, self.labels, self.cfg = net, maps, labels, cfg

    def build(self) -> None:
        import torch

        self.xs = [torch.from_numpy(m) for m in self.maps]
        self.y = torch.from_numpy(np.asarray(self.labels)).long()
        self.opt = torch.optim.AdamW(_head_params(self.net), lr=self.cfg.head_lr, weight_decay=self.cfg.weight_decay)
        self.sched = _warmup_cosine(self.opt, self.cfg.head_steps, 0.1)
        self.net.train()
        self.net.backbone.eval()  # frozen, BN statistics included

    def train_step(self) -> dict[str, float]:
        import torch

        y = self.y
        b = torch.from_numpy(self.rng.choice(len(y), size=min(self.cfg.head_batch, len(y)), replace=False))
        terms = self.net.loss(self.net.head([x[b] for x in self.xs]), y[b])
        self.optimise(terms["loss"])
        return {k: float(v.detach()) for k, v in terms.items()}


def train_head(net: Any, maps: list[np.ndarray], labels: np.ndarray, cfg: HashTrainConfig, *,
               progress: bool = False) -> list[dict[str, float]]:
    """Train everything after the backbone on cached maps (one array per layer of ``net.config.layers``)."""
    return HeadSolver(net, maps, labels, cfg).run(progress=progress)["history"]


def head_outputs(net: Any, maps: list[np.ndarray], *, batch: int = 512) -> dict[str, np.ndarray]:
    """Run the head over cached maps: {"h", "q" (with a hash layer), "logits"} as float32 arrays."""
    import torch

    net.eval()
    parts: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for i in range(0, len(maps[0]), batch):
            out = net.head([torch.from_numpy(m[i : i + batch]) for m in maps])
            for k, v in out.items():
                parts.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def select_layers(maps: list[np.ndarray], all_layers: tuple[int, ...], wanted: tuple[int, ...]) -> list[np.ndarray]:
    """The cached maps of ``wanted`` blocks, from maps cached for ``all_layers``."""
    return [maps[all_layers.index(k)] for k in wanted]


def hash_model(net: Any, *, name: str, label_names: tuple[str, ...], frontend: Any,
               metadata: dict[str, Any] | None = None) -> Any:
    """Wrap a trained :class:`HashCNN` as an AudioEncoder carrying its front-end and labels."""
    from soundalike.models.checkpoint import AudioEncoder

    if len(label_names) != net.config.n_classes:
        raise ParameterError(f"{len(label_names)} label names for a {net.config.n_classes}-class model")
    return AudioEncoder(net.eval(), encoder="hash_cnn", frontend=frontend, name=name, labels=label_names,
                        metadata=metadata or {})
