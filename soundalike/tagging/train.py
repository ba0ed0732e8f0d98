"""Training a tag head on a frozen encoder.

The head reads :class:`~soundalike.tagging.data.TagData` inputs (computed once
by the frozen encoder). Multi-label sets train with binary cross-entropy on
soft targets (the teacher's scores); single-label sets with cross-entropy.
Conv heads see random frequency and time bands of their input map zeroed
(SpecAugment on the map); MLP heads get feature standardisation folded into
their first layer, so they read raw features at inference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from soundalike.errors import ParameterError
from soundalike.tagging.data import TagData
from soundalike.train.base import Solver


@dataclass(frozen=True)
class TagTrainConfig:
    head: str = "tag_conv"  # registered head (soundalike.models.heads.HEADS)
    steps: int = 2000
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    warmup: float = 0.1  # fraction of steps spent warming up (one-cycle schedule)
    hidden: int = 256
    dropout: float = 0.3
    tap: int | None = None  # encoder block the head reads (None: the head's default: 1 for tag_conv, -1 for tag_mlp)
    mask: float = 0.2  # conv heads: zero one frequency and one time band of up to this fraction of the map
    balance: bool = True  # single-label: sample classes equally often
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1 or self.lr <= 0 or not 0 <= self.mask < 1 or not 0 <= self.warmup < 1:
            raise ParameterError(f"bad training settings {self}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_head(encoder: Any, cfg: TagTrainConfig, n_tags: int, **overrides: Any) -> Any:
    """A fresh registered head sized for ``encoder``'s block maps."""
    import torch

    from soundalike.models.heads import HEADS, head_config

    if cfg.head not in HEADS:
        raise ParameterError(f"unknown head {cfg.head!r}; registered: {', '.join(sorted(HEADS))}")
    values: dict[str, Any] = {"n_tags": n_tags, "hidden": cfg.hidden, "dropout": cfg.dropout, **overrides}
    probe = HEADS[cfg.head](head_config(cfg.head, {k: v for k, v in overrides.items() if k == "tap"}))
    encoder._prepare()
    with torch.inference_mode():
        x = torch.full((1, encoder.frontend.n_mels, encoder.frontend.chunk_frames), -40.0)
        shape = probe.head_input(encoder.net.trunk(x)).shape
    key = "in_dim" if len(shape) == 2 else "in_channels"
    values[key] = int(shape[1])
    torch.manual_seed(cfg.seed)
    return HEADS[cfg.head](head_config(cfg.head, values))


def _fold_standardisation(net: Any, x: Any) -> None:
    """For an MLP head: scale its first layer so it reads raw features as if they were z-scored."""
    import torch

    first = net.net[0]
    mu, sd = x.mean(dim=0), x.std(dim=0) + 1e-6
    with torch.no_grad():
        first.weight.data /= sd
        first.bias.data -= (first.weight.data * mu).sum(dim=1)


class TagHeadSolver(Solver):
    """A tag head on frozen encoder features or block maps: balanced batches (single-label), band masking on
    maps, one-cycle learning rate."""

    desc = "training head"

    def __init__(self, net: Any, data: TagData, cfg: TagTrainConfig) -> None:
        if len(data) == 0:
            raise ParameterError("no training rows")
        super().__init__(steps=cfg.steps, seed=cfg.seed, threads=cfg.threads)
        self.net, self.data, self.cfg = net, data, cfg

    def build(self) -> None:
        import torch

        cfg, data = self.cfg, self.data
        self.xs = torch.from_numpy(np.ascontiguousarray(data.inputs))
        dtype = torch.float32 if data.multi_label else torch.long
        self.yt = torch.as_tensor(np.asarray(data.targets), dtype=dtype)
        self.conv = self.xs.ndim == 4
        if not self.conv:
            _fold_standardisation(self.net, self.xs.float())
        self.by_class = ([np.flatnonzero(data.targets == c) for c in np.unique(data.targets)]
                         if cfg.balance and not data.multi_label else None)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=cfg.lr, total_steps=cfg.steps,
                                                         pct_start=max(cfg.warmup, 1.0 / cfg.steps))
        self.net.train()
        self.bs = min(cfg.batch, len(self.xs))

    def train_step(self) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        rng, bs, by_class = self.rng, self.bs, self.by_class
        if by_class is not None:
            cls = rng.integers(0, len(by_class), size=bs)
            idx = np.array([by_class[c][rng.integers(0, len(by_class[c]))] for c in cls])
        else:
            idx = rng.integers(0, len(self.xs), size=bs)
        b = torch.from_numpy(idx)
        x = self.xs[b].float()
        if self.conv and self.cfg.mask > 0:
            _mask_bands(x, rng, self.cfg.mask)
        logits = self.net(x)
        y = self.yt[b]
        loss = F.binary_cross_entropy_with_logits(logits, y) if self.data.multi_label else F.cross_entropy(logits, y)
        self.optimise(loss)
        return {"loss": float(loss.detach())}


def train_head(net: Any, data: TagData, cfg: TagTrainConfig, *, progress: bool = False) -> Any:
    """Fit ``net`` (a fresh head, see :func:`new_head`) to ``data``; returns it in eval mode."""
    TagHeadSolver(net, data, cfg).run(progress=progress)
    return net.eval()


def _mask_bands(x: Any, rng: np.random.Generator, frac: float) -> None:
    """Zero one random frequency band and one time band per map of x [shape=(B, C, F, T)], in place."""
    n, _, nf, nt = x.shape
    wf = rng.integers(0, max(1, int(frac * nf)) + 1, size=n)
    wt = rng.integers(0, max(1, int(frac * nt)) + 1, size=n)
    f0 = rng.integers(0, nf, size=n)
    t0 = rng.integers(0, nt, size=n)
    for i in range(n):
        x[i, :, f0[i] : f0[i] + wf[i]] = 0
        x[i, :, :, t0[i] : t0[i] + wt[i]] = 0


def predict(net: Any, inputs: np.ndarray, *, multi_label: bool, batch_size: int = 256) -> np.ndarray:
    """Scores of a trained head for precomputed inputs [shape=(n, n_tags)]."""
    import torch

    from soundalike.models.heads import activate

    out = []
    with torch.inference_mode():
        for i in range(0, len(inputs), batch_size):
            logits = net(torch.from_numpy(np.ascontiguousarray(inputs[i : i + batch_size])).float())
            out.append(activate(logits, multi_label).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


DATASETS = ("teacher", "instruments", "fma")


def load_dataset(dataset: str, encoder: Any, head: Any, *, teacher_dir: str | None = None,
                 teacher_views: int = 0, soundfont: str | None = None, per_program: int = 16, views: int = 2,
                 fma_root: str | None = None,
                 metadata: str | None = None, subset: str | None = None, progress: bool = False) -> TagData:
    """The training set ``dataset`` for ``head`` on ``encoder`` (see :mod:`soundalike.tagging.data`).

    teacher: a folder written by ``soundalike teacher-tags``; instruments: ``per_program`` clips per General
    MIDI program rendered with ``soundfont`` (default TimGM6mb), each also in ``views`` copies with varied
    timbre, tags ``family/NAME``; fma: ``tracks.csv`` + MP3s, tags ``genre/NAME``.
    """
    from soundalike.errors import DatasetError
    from soundalike.tagging import data as tdata

    if dataset == "teacher":
        from soundalike.tagging.teacher import check_teacher, load_teacher

        if not teacher_dir:
            raise ParameterError("--dataset teacher needs --teacher-dir (a folder from `soundalike teacher-tags`)")
        teacher = load_teacher(teacher_dir)
        check_teacher(teacher)
        return tdata.teacher_data(encoder, head, teacher, views=teacher_views, progress=progress)
    if dataset == "instruments":
        from soundalike.data.instruments import render_instrument_clips

        clips = render_instrument_clips(soundfont=soundfont, per_program=per_program,
                                        sample_rate=encoder.frontend.sample_rate)
        d = tdata.instrument_data(encoder, head, clips, views=views)
        d.tags = tuple(f"family/{t}" for t in d.tags)
        return d
    if dataset == "fma":
        from soundalike.data.fma import read_fma

        if not fma_root or not metadata:
            raise ParameterError("--dataset fma needs --fma-root (the MP3 folders) and --metadata (fma_metadata)")
        fma = read_fma(metadata, fma_root, subset=subset)
        tracks = [t for t in fma.tracks if t.split in ("training", "validation")] or list(fma.tracks)
        if not tracks:
            raise DatasetError("no FMA tracks with a top genre and an MP3 were found")
        d = tdata.fma_data(encoder, head, tracks, progress=progress)
        d.tags = tuple(f"genre/{t}" for t in d.tags)
        d.source["subset"] = subset
        return d
    raise ParameterError(f"unknown data set {dataset!r}; choose one of {', '.join(DATASETS)}")


def fit_head(dataset: str, out: str, *, model: Any = None, cfg: TagTrainConfig | None = None,
             name: str | None = None, progress: bool = False, **data_args: Any) -> tuple[Any, dict[str, Any]]:
    """Load ``dataset``, train a head on ``model``'s frozen features, save it at ``out``;
    returns (the HeadModel, a report)."""
    import time

    from soundalike.models.checkpoint import AudioEncoder
    from soundalike.models.factory import load_encoder
    from soundalike.models.heads import HeadModel

    cfg = cfg or TagTrainConfig()
    encoder = model if isinstance(model, AudioEncoder) else load_encoder(model)
    t0 = time.perf_counter()
    taps = {} if cfg.tap is None else {"tap": cfg.tap}
    probe = new_head(encoder, cfg, 1, **taps)
    data = load_dataset(dataset, encoder, probe, progress=progress, **data_args)
    n_tags = len(data.tags)
    net = train_head(new_head(encoder, cfg, n_tags, **taps), data, cfg, progress=progress)
    fit = predict(net, data.inputs, multi_label=data.multi_label)
    report: dict[str, Any] = {"dataset": dataset, "rows": len(data), "groups": len(data.group_names),
                              "tags": n_tags, "multi_label": data.multi_label, "train": cfg.to_dict(),
                              "source": data.source, "encoder": encoder.name,
                              "encoder_fingerprint": encoder.fingerprint}
    if not data.multi_label:
        report["train_accuracy"] = round(float((fit.argmax(1) == data.targets).mean()), 4)
    report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    head = HeadModel(net, head=cfg.head, tags=data.tags, multi_label=data.multi_label,
                     encoder_fingerprint=encoder.fingerprint, name=name or f"{cfg.head}-{dataset}",
                     metadata={"trained_on": report})
    head.save(out)
    report["out"] = str(out)
    return head, report
