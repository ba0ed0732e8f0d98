"""Contrastive training: a solver with named stages (load data, train, valid, export).

Two views per track: a random chunk with Gaussian noise in the dB domain, and
a *different* chunk of the same track with its own noise. InfoNCE with in-batch
negatives. Checkpoints hold model, optimiser, scheduler and RNG state, so a
killed run resumes where it stopped and reaches the same weights.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import AudioDecodeError, ConfigError
from soundalike.features.mel import FrontendConfig, MelFrontend
from soundalike.train.args import TrainConfig


@dataclass
class TrackMels:
    """Log10-power mels of one training track, kept in dB (float16) before per-chunk referencing."""

    path: str
    group: str  # tracks of one group (a work) land in the same split
    db: np.ndarray  # float16 [shape=(n_mels, t)], 10*log10(max(power, amin)), unreferenced


def load_tracks(cfg: TrainConfig, frontend: FrontendConfig, *, progress: bool = False) -> list[TrackMels]:
    """Decode every audio file under ``cfg.data`` and compute its mel (dB, unreferenced)."""
    import torch

    from soundalike.audio.io import decode
    from soundalike.index.catalog import read_manifest, walk_audio

    if not cfg.data:
        raise ConfigError("no training data: set `data` to one or more folders of audio")
    groups = {}
    if cfg.manifest:
        groups = {p: str(row.get("work") or row.get("group") or p) for p, row in read_manifest(cfg.manifest).items()}
    files = list(walk_audio(cfg.data))
    if not files:
        raise ConfigError(f"no audio files under {cfg.data}")
    mel = MelFrontend(frontend)
    out: list[TrackMels] = []
    it: Any = files
    if progress:
        from tqdm import tqdm

        it = tqdm(files, unit="file", desc="loading audio", dynamic_ncols=True)
    skipped = 0
    for f in it:
        try:
            audio = decode(f, sr=frontend.sample_rate, duration=None, max_duration=None)
        except AudioDecodeError:
            skipped += 1
            continue
        y = audio.samples[: int(cfg.max_track_seconds * frontend.sample_rate)]
        if len(y) < frontend.chunk_samples:
            skipped += 1
            continue
        with torch.inference_mode():
            power = mel(y)
            db = 10.0 * torch.log10(torch.clamp(power, min=frontend.amin))
        out.append(TrackMels(str(f), groups.get(str(f), str(f)), db.numpy().astype(np.float16)))
    if len(out) < 2:
        raise ConfigError(f"need at least 2 usable tracks of >= {frontend.chunk_seconds:.1f} s, found {len(out)}")
    return out


def split_tracks(tracks: list[TrackMels], fraction: float, seed: int) -> tuple[list[TrackMels], list[TrackMels]]:
    """Hold out whole groups (works), never chunks of a training track."""
    groups = sorted({t.group for t in tracks})
    rng = np.random.default_rng(seed)
    rng.shuffle(groups)
    n_valid = int(round(len(groups) * fraction))
    if fraction > 0 and len(groups) > 2:
        n_valid = max(1, min(n_valid, len(groups) - 2))
    else:
        n_valid = 0
    held = set(groups[:n_valid])
    train = [t for t in tracks if t.group not in held]
    valid = [t for t in tracks if t.group in held]
    return train, valid


class PairSampler:
    """Batches of two views of ``batch_size`` distinct tracks."""

    def __init__(self, tracks: list[TrackMels], frontend: FrontendConfig, *, noise_db: float) -> None:
        self.tracks = tracks
        self.fe = frontend
        self.noise_db = noise_db
        self.lengths = np.array([t.db.shape[1] for t in tracks])

    def _chunk(self, t: TrackMels, start: int) -> np.ndarray:
        c = t.db[:, start : start + self.fe.chunk_frames].astype(np.float32)
        c = c - c.max()  # ref = this chunk's maximum
        return np.maximum(c, -self.fe.top_db)

    def batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Two arrays [shape=(B, n_mels, chunk_frames)] of dB chunks: view a and view b."""
        n = min(batch_size, len(self.tracks))
        # longer tracks are drawn more often, but never twice in one batch
        p = self.lengths / self.lengths.sum()
        idx = rng.choice(len(self.tracks), size=n, replace=False, p=p)
        F = self.fe.chunk_frames
        va, vb = [], []
        for i in idx:
            t = self.tracks[i]
            last = t.db.shape[1] - F
            a = int(rng.integers(0, last + 1))
            b = int(rng.integers(0, last + 1))
            if last >= F:  # a different chunk: at least half a chunk away
                while abs(a - b) < F // 2:
                    b = int(rng.integers(0, last + 1))
            va.append(self._chunk(t, a))
            vb.append(self._chunk(t, b))
        xa, xb = np.stack(va), np.stack(vb)
        if self.noise_db > 0:
            xa = xa + rng.normal(0.0, self.noise_db, xa.shape).astype(np.float32)
            xb = xb + rng.normal(0.0, self.noise_db, xb.shape).astype(np.float32)
        lo = -self.fe.top_db
        return np.clip(xa, lo, 0.0), np.clip(xb, lo, 0.0)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr_min_ratio * lr`` at ``steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    floor = cfg.lr * cfg.lr_min_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class ContrastiveSolver:
    """Stages: ``setup`` (data, model, optimiser, resume), ``train``, ``valid``, ``export``."""

    def __init__(self, cfg: TrainConfig, *, log: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.log = log or (lambda msg: None)
        self.step = 0
        self.history: list[dict[str, Any]] = []

    # -------------------------------------------------------------- setup
    def setup(self, *, tracks: list[TrackMels] | None = None, progress: bool = False) -> None:
        import torch

        from soundalike.models.factory import create_encoder

        cfg = self.cfg
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.frontend = FrontendConfig().replace(**cfg.frontend)
        self.encoder = create_encoder(cfg.encoder, frontend=self.frontend, **cfg.encoder_config)
        if cfg.model_name:
            self.encoder.name = cfg.model_name
        self.net = self.encoder.net
        self.net.to(memory_format=torch.channels_last)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        all_tracks = tracks if tracks is not None else load_tracks(cfg, self.frontend, progress=progress)
        self.train_tracks, self.valid_tracks = split_tracks(all_tracks, cfg.valid_fraction, cfg.seed)
        self.train_sampler = PairSampler(self.train_tracks, self.frontend, noise_db=cfg.noise_db)
        self.valid_sampler = (PairSampler(self.valid_tracks, self.frontend, noise_db=cfg.noise_db)
                              if len(self.valid_tracks) >= 2 else None)
        self.rng = np.random.default_rng(cfg.seed)
        self.out.mkdir(parents=True, exist_ok=True)
        self._resume()
        self.log(f"{len(self.train_tracks)} training tracks, {len(self.valid_tracks)} held out; "
                 f"{sum(p.numel() for p in self.net.parameters())} parameters; starting at step {self.step}")

    @property
    def ckpt_path(self) -> Path:
        return self.out / "last.ckpt"

    def _resume(self) -> None:
        import torch

        if not self.ckpt_path.exists():
            return
        state = torch.load(self.ckpt_path, map_location="cpu", weights_only=True)
        if state.get("config") != json.dumps(self._resumable_config(), sort_keys=True):
            raise ConfigError(f"{self.ckpt_path} was written by a run with other settings; "
                              "use a new --out folder, or delete the checkpoint to start over")
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.rng.bit_generator.state = json.loads(state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.history = json.loads(state["history"])

    def _resumable_config(self) -> dict[str, Any]:
        d = self.cfg.to_dict()
        for k in ("steps", "out", "checkpoint_every", "valid_every", "threads"):
            d.pop(k)
        return d

    def save_checkpoint(self) -> None:
        import torch

        state = {
            "model": self.net.state_dict(),
            "optimizer": self.opt.state_dict(),
            "step": self.step,
            "numpy_rng": json.dumps(self.rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
            "history": json.dumps(self.history),
            "config": json.dumps(self._resumable_config(), sort_keys=True),
        }
        tmp = self.ckpt_path.with_name(".last.ckpt.tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.ckpt_path)

    # -------------------------------------------------------------- stages
    def train_step(self) -> dict[str, float]:
        import torch

        from soundalike.losses.infonce import info_nce

        self.net.train()
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.step, self.cfg)
        xa, xb = self.train_sampler.batch(self.rng, self.cfg.batch_size)
        x = torch.from_numpy(np.concatenate([xa, xb]))
        z = self.net(x)
        za, zb = z[: len(xa)], z[len(xa):]
        loss, acc = info_nce(za, zb, temperature=self.cfg.temperature)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return {"loss": float(loss.detach()), "acc": float(acc), "lr": self.opt.param_groups[0]["lr"]}

    def valid(self) -> dict[str, float] | None:
        import torch

        from soundalike.losses.infonce import info_nce

        if self.valid_sampler is None:
            return None
        self.net.eval()
        rng = np.random.default_rng(self.cfg.seed + 1)  # the same valid batches every time
        losses, accs = [], []
        with torch.inference_mode():
            for _ in range(self.cfg.valid_batches):
                xa, xb = self.valid_sampler.batch(rng, self.cfg.batch_size)
                loss, acc = info_nce(self.net(torch.from_numpy(xa)), self.net(torch.from_numpy(xb)),
                                     temperature=self.cfg.temperature)
                losses.append(float(loss))
                accs.append(float(acc))
        return {"valid_loss": float(np.mean(losses)), "valid_acc": float(np.mean(accs))}

    def run(self, *, progress: bool = False) -> dict[str, Any]:
        cfg = self.cfg
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=cfg.steps, initial=self.step, unit="step", desc="training", dynamic_ncols=True)
        t0 = time.perf_counter()
        start_step = self.step
        last: dict[str, float] = {}
        while self.step < cfg.steps:
            last = self.train_step()
            if bar is not None:
                bar.set_postfix(loss=f"{last['loss']:.3f}", acc=f"{last['acc']:.2f}")
                bar.update(1)
            if self.step % cfg.valid_every == 0 or self.step == cfg.steps:
                v = self.valid() or {}
                rec = {"step": self.step, **last, **v}
                self.history.append(rec)
                self.log(json.dumps(rec))
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                self.save_checkpoint()
        if bar is not None:
            bar.close()
        elapsed = time.perf_counter() - t0
        return {"steps": self.step, "trained_steps": self.step - start_step, "seconds": round(elapsed, 1),
                "last": last, "history": self.history}

    def export(self, path: str | Path | None = None) -> Path:
        """Write the trained model (safetensors + JSON with front-end and training record)."""
        import torch

        self.net.eval()
        self.net.to(memory_format=torch.contiguous_format)
        self.encoder.invalidate_fingerprint()
        hours = sum(t.db.shape[1] for t in self.train_tracks) * self.frontend.hop_length / self.frontend.sample_rate / 3600
        self.encoder.metadata = {
            "training": {
                "objective": "infonce",
                "steps": self.step,
                "batch_size": self.cfg.batch_size,
                "temperature": self.cfg.temperature,
                "noise_db": self.cfg.noise_db,
                "train_tracks": len(self.train_tracks),
                "valid_tracks": len(self.valid_tracks),
                "train_hours": round(hours, 3),
                "data": [os.path.basename(os.path.normpath(d)) for d in self.cfg.data],
                "seed": self.cfg.seed,
                "final": self.history[-1] if self.history else {},
            }
        }
        return self.encoder.save(path or (self.out / "model"))


def train(cfg: TrainConfig, *, progress: bool = False, log: Callable[[str], None] | None = None,
          tracks: list[TrackMels] | None = None) -> tuple[Path, dict[str, Any]]:
    """Set up, train to ``cfg.steps`` (resuming a checkpoint in ``cfg.out``), export. Returns (model path, report)."""
    solver = ContrastiveSolver(cfg, log=log)
    solver.setup(tracks=tracks, progress=progress)
    report = solver.run(progress=progress)
    path = solver.export()
    report["model"] = str(path)
    report["train_tracks"] = len(solver.train_tracks)
    report["valid_tracks"] = len(solver.valid_tracks)
    return path, report
