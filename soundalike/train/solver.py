"""Training the encoder: a :class:`~soundalike.train.base.Solver` with named stages (build, train, valid, export).

Objective ``infonce`` (default): two augmented chunks per track (see
:class:`~soundalike.train.data.PairSampler`), InfoNCE with in-batch negatives.
Objective ``song``: tracks drawn several per group (package, work), each
seen as two bags of chunks; chunk-level InfoNCE on one chunk pair per track
(excerpt robustness), song-level InfoNCE between the two pooled bags of a
track, and supervised-contrastive loss over groups on the pooled songs (the
encoder's ``song`` pooling, learnt when its config says ``song_pool:
attention``). Objective ``autoencoder``: a decoder reconstructs each chunk from its
embedding (the bottleneck), for comparison. Checkpoints hold model,
optimiser and RNG state, so a killed run resumes where it stopped and reaches
the same weights.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.augment.chain import AugmentConfig
from soundalike.errors import ConfigError
from soundalike.features.mel import FrontendConfig
from soundalike.train.args import TrainConfig
from soundalike.train.base import Solver, warmup_cosine
from soundalike.train.data import PairSampler, TrackMels, load_sources, split_tracks

__all__ = ["ContrastiveSolver", "PairSampler", "TrackMels", "lr_at", "split_tracks", "train", "warmup_cosine"]


def resolve_device(name: str) -> Any:
    """``auto``: the first CUDA device when torch sees one, else the CPU; otherwise that torch device."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device {name!r} is not a torch device (auto, cpu, cuda, cuda:N)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: this torch sees no CUDA GPU; use --device cpu (or auto)")
    return dev


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr_min_ratio * lr`` at ``steps``."""
    return cfg.lr * warmup_cosine(step, steps=cfg.steps, warmup=cfg.warmup_steps, floor=cfg.lr_min_ratio)


class ContrastiveSolver(Solver):
    """Stages: ``build`` (data, model, optimiser, resume), ``train_step``, ``valid``, ``export``."""

    def __init__(self, cfg: TrainConfig, *, log: Callable[[str], None] | None = None) -> None:
        super().__init__(steps=cfg.steps, seed=cfg.seed, threads=cfg.threads, out=cfg.out,
                         valid_every=cfg.valid_every, checkpoint_every=cfg.checkpoint_every, log=log)
        self.cfg = cfg
        self._tracks: list[TrackMels] | None = None
        self._progress = False

    def setup(self, *, tracks: list[TrackMels] | None = None, progress: bool = False) -> None:
        """:meth:`build` with these tracks (already loaded) or a progress bar for loading them."""
        self._tracks, self._progress = tracks, progress
        self.prepare()

    # -------------------------------------------------------------- build
    def build(self) -> None:
        import torch

        from soundalike.models.factory import create_encoder

        tracks, progress = self._tracks, self._progress
        cfg = self.cfg
        self.frontend = FrontendConfig().replace(**cfg.frontend)
        self.augment = AugmentConfig.from_dict(cfg.augment)
        if cfg.init_from:
            from soundalike.models.factory import load_encoder

            init = load_encoder(cfg.init_from)
            if init.encoder != cfg.encoder:
                raise ConfigError(f"init_from {cfg.init_from} is a {init.encoder} model, not {cfg.encoder}")
            if init.frontend.to_dict() != self.frontend.to_dict():
                raise ConfigError(f"init_from {cfg.init_from} has another front-end than this run")
            self.encoder = create_encoder(cfg.encoder, frontend=self.frontend, **cfg.encoder_config)
            try:
                self.encoder.net.load_state_dict(init.net.state_dict())
            except RuntimeError as exc:
                raise ConfigError(f"init_from {cfg.init_from}: its layers differ from this run's encoder_config "
                                  f"({str(exc).splitlines()[0]})") from exc
            self.init_fingerprint: str | None = init.fingerprint
        else:
            self.encoder = create_encoder(cfg.encoder, frontend=self.frontend, **cfg.encoder_config)
            self.init_fingerprint = None
        if cfg.model_name:
            self.encoder.name = cfg.model_name
        self.net = self.encoder.net
        self.device = resolve_device(cfg.device)
        self.net.to(self.device, memory_format=torch.channels_last)
        params = list(self.net.parameters())
        self.decoder = None
        if cfg.objective == "autoencoder":
            from soundalike.models.decoder import MelDecoder

            self.decoder = MelDecoder(self.net.embed_dim, self.frontend.n_mels, self.frontend.chunk_frames)
            self.decoder.to(self.device)
            params += list(self.decoder.parameters())
        self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if tracks is None:
            tracks = load_sources(cfg.data_sources(), self.frontend, self.augment, seed=cfg.seed,
                                  max_seconds=cfg.max_track_seconds, cache_dir=cfg.cache_dir, jobs=cfg.jobs,
                                  progress=progress)
        self.train_tracks, self.valid_tracks = split_tracks(tracks, cfg.valid_fraction, cfg.seed,
                                                            valid_groups=cfg.valid_groups)
        weights = [s.weight for s in cfg.data_sources()] if (cfg.sources or cfg.data) else None
        self.train_sampler = PairSampler(self.train_tracks, self.frontend, self.augment, source_weights=weights,
                                         noise_db=cfg.noise_db, group_positive_p=cfg.group_positive_p,
                                         repeat_tracks=cfg.repeat_tracks)
        # validation pairs are always two versions of one track: the same yardstick whatever the run
        self.valid_sampler = (PairSampler(self.valid_tracks, self.frontend, self.augment, source_weights=weights,
                                          noise_db=cfg.noise_db) if len(self.valid_tracks) >= 2 else None)
        self.rng = np.random.default_rng(cfg.seed)
        self.out.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        self.resume()
        self.log(f"{len(self.train_tracks)} training tracks, {len(self.valid_tracks)} held out; "
                 f"{sum(p.numel() for p in self.net.parameters())} parameters; starting at step {self.step}")

    def resumable_config(self) -> dict[str, Any]:
        d = self.cfg.to_dict()
        for k in ("steps", "out", "checkpoint_every", "valid_every", "threads", "device", "jobs"):
            d.pop(k)
        return d

    def checkpoint_state(self) -> dict[str, Any]:
        return {"decoder": self.decoder.state_dict()} if self.decoder is not None else {}

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        if self.decoder is not None:
            self.decoder.load_state_dict(state["decoder"])

    def postfix(self, metrics: dict[str, float]) -> dict[str, str]:
        return {"loss": f"{metrics['loss']:.3f}", "acc": f"{metrics['acc']:.2f}"}

    # -------------------------------------------------------------- stages
    def train_step(self) -> dict[str, float]:
        import torch

        from soundalike.losses.infonce import info_nce

        self.net.train()
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.step, self.cfg)
        acc: Any
        if self.cfg.objective == "song":
            loss, acc = self._song_loss(self.train_sampler, self.rng)
            self.optimise(loss)
            return {"loss": float(loss.detach()), "acc": float(acc), "lr": self.opt.param_groups[0]["lr"]}
        xa, xb, groups = self.train_sampler.batch(self.rng, self.cfg.batch_size)
        if self.decoder is not None:
            self.decoder.train()
            loss, acc = self._reconstruction(torch.from_numpy(xa).to(self.device))
        else:
            x = torch.from_numpy(np.concatenate([xa, xb])).to(self.device)
            z = self.net(x)
            za, zb = z[: len(xa)], z[len(xa):]
            loss, acc = info_nce(za, zb, temperature=self.cfg.temperature,
                                 groups=torch.from_numpy(groups).to(self.device) if self.cfg.mask_group_negatives
                                 else None)
        self.optimise(loss)
        return {"loss": float(loss.detach()), "acc": float(acc), "lr": self.opt.param_groups[0]["lr"]}

    def _song_loss(self, sampler: PairSampler, rng: np.random.Generator) -> tuple[Any, float]:
        """The song objective on one bag batch: (weighted loss, song-level instance accuracy)."""
        import torch

        from soundalike.losses import info_nce, sup_con

        cfg = self.cfg
        xa, xb, groups = sampler.bags(rng, cfg.batch_size, per_group=cfg.tracks_per_group, bag=cfg.bag_chunks)
        b, k = xa.shape[:2]
        x = torch.from_numpy(np.concatenate([xa, xb]).reshape(2 * b * k, *xa.shape[2:])).to(self.device)
        z = self.net(x).view(2, b, k, -1)
        chunk, _ = info_nce(z[0, :, 0], z[1, :, 0], temperature=cfg.temperature)
        sa, sb = self.net.song(z[0]), self.net.song(z[1])
        song, acc = info_nce(sa, sb, temperature=cfg.temperature)
        g = torch.from_numpy(groups).to(self.device)
        group = sup_con(torch.cat([sa, sb]), torch.cat([g, g]), temperature=cfg.temperature)
        loss = cfg.chunk_loss * chunk + cfg.song_loss * song + cfg.group_loss * group
        return loss, float(acc)

    def _reconstruction(self, x: Any) -> tuple[Any, float]:
        """Autoencoder loss: MSE between the chunk (scaled to [-1, 1]) and its reconstruction.

        The second value is the share of variance explained (1 - MSE / Var), for the log.
        """
        assert self.decoder is not None
        half = self.frontend.top_db / 2
        target = ((x + half) / half).unsqueeze(1)
        recon = self.decoder(self.net(x))
        loss = ((recon - target) ** 2).mean()
        explained = 1.0 - float(loss.detach()) / max(float(target.var()), 1e-9)
        return loss, explained

    def valid(self) -> dict[str, float] | None:
        import torch

        from soundalike.losses.infonce import info_nce

        if self.valid_sampler is None:
            return None
        self.net.eval()
        rng = np.random.default_rng(self.cfg.seed + 1)  # the same valid batches every time
        losses, accs = [], []
        acc: Any
        with torch.inference_mode():
            for _ in range(self.cfg.valid_batches):
                if self.cfg.objective == "song":
                    loss, acc = self._song_loss(self.valid_sampler, rng)
                    losses.append(float(loss))
                    accs.append(float(acc))
                    continue
                xa, xb, _ = self.valid_sampler.batch(rng, self.cfg.batch_size)
                if self.decoder is not None:
                    self.decoder.eval()
                    loss, acc = self._reconstruction(torch.from_numpy(xa).to(self.device))
                else:
                    loss, acc = info_nce(self.net(torch.from_numpy(xa).to(self.device)),
                                         self.net(torch.from_numpy(xb).to(self.device)),
                                         temperature=self.cfg.temperature)
                losses.append(float(loss))
                accs.append(float(acc))
        return {"valid_loss": float(np.mean(losses)), "valid_acc": float(np.mean(accs))}

    def export(self, path: str | Path | None = None) -> Path:
        """Write the trained model (safetensors + JSON with front-end and training record)."""
        import torch

        self.net.eval()
        self.net.to("cpu", memory_format=torch.contiguous_format)
        self.encoder.invalidate_fingerprint()
        hours = sum(t.db.shape[1] for t in self.train_tracks) * self.frontend.hop_length / self.frontend.sample_rate / 3600
        self.encoder.metadata = {
            "training": {
                "objective": self.cfg.objective,
                "steps": self.step,
                "batch_size": self.cfg.batch_size,
                "temperature": self.cfg.temperature,
                "group_positive_p": self.cfg.group_positive_p,
                **({"tracks_per_group": self.cfg.tracks_per_group, "bag_chunks": self.cfg.bag_chunks,
                    "loss_weights": {"chunk": self.cfg.chunk_loss, "song": self.cfg.song_loss,
                                     "group": self.cfg.group_loss}} if self.cfg.objective == "song" else {}),
                "mask_group_negatives": self.cfg.mask_group_negatives,
                "repeat_tracks": self.cfg.repeat_tracks,
                "noise_db": self.cfg.noise_db,
                "augment": self.augment.to_dict(),
                "init_from": self.init_fingerprint,
                "train_tracks": len(self.train_tracks),
                "valid_tracks": len(self.valid_tracks),
                "train_groups": sorted({t.group for t in self.train_tracks})[:64],
                "valid_groups": sorted({t.group for t in self.valid_tracks})[:64],
                "train_hours": round(hours, 3),
                "data": [os.path.basename(os.path.normpath(d)) for s in self.cfg.data_sources() for d in s.data],
                "seed": self.cfg.seed,
                "seconds": round(self.elapsed, 1),
                "device": str(self.device),
                "final": self.history[-1] if self.history else {},
            }
        }
        return self.encoder.save(path or (Path(self.cfg.out) / "model"))


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
