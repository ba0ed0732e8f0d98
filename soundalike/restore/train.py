"""Train the restoration network on real music with generated noises and clipping.

Music: excerpts of the training packages' tracks (``soundalike datasets debian-music``), decoded once into
a cache (:func:`build_music_cache`: 44.1 kHz mono, float16, a few excerpts per track). Whole packages
(:data:`soundalike.data.debian.VALID_PACKAGES`) are kept for validation; the benchmark's music comes from
other packages altogether (:data:`soundalike.data.debian.EVAL_PACKAGES`).

Every example (:func:`degrade`): a random excerpt at a random level; one or two of the training noises
(:data:`soundalike.restore.noises.TRAIN_NOISES`) at -5 to 20 dB SNR; hard clipping at 15-70 % of the peak
or a soft (tanh) saturation; or nothing (the network must pass clean music through). The loss is the
negative SDR of the restored waveform (capped at 30 dB), after the declipping projection where the input
is clipped, so the network learns what to put into clipped samples as inference uses it. A clipped
example's SDR gain counts three times: its gains are smaller than a noisy one's, and at equal weight the
network learnt to denoise but not to declip. A compressed spectral loss (:func:`compressed_spectral_loss`)
joins it at the start, fading out over 2,000 steps: its dense per-bin gradients make the start much faster
than the SDR alone (measured: overfitting 8 examples for 60 steps, +0.6 dB against +7), but it weighs
noise so heavily that it drowns the declipping signal later.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import DatasetError
from soundalike.models.framewise import loudness_gain
from soundalike.restore.model import (
    RestorationModel,
    RestoreFrontend,
    RestoreSettings,
    apply_mask,
    build_net,
    clipped_samples,
    istft,
    network_input,
    stft,
)
from soundalike.restore.noises import TRAIN_NOISES, add_at_snr, hard_clip, make_noise, soft_clip
from soundalike.train.base import ModelSolver, warmup_cosine

VALID_SEED0 = 10_000_000  # validation examples' seeds; training seeds stay below
TEST_SEED0 = 20_000_000  # the benchmark's
DEFAULT_CACHE = Path("data/restore-cache")


# ----------------------------------------------------------------------------------------- the music


def build_music_cache(music: str | Path, out: str | Path = DEFAULT_CACHE, *, sr: int = 44100,
                      excerpt_seconds: float = 12.0, per_track: int = 2, seed: int = 0,
                      progress: Callable[[int, int], None] | None = None) -> Path:
    """Decode ``per_track`` excerpts of ``excerpt_seconds`` from every track of ``music``'s manifest
    (``soundalike datasets debian-music``) into ``out/music.npy`` (float16, 44.1 kHz mono, one after the
    other) and ``out/index.json`` (each excerpt's start, length, package and track). Already there: reused."""
    from soundalike.audio.io import decode
    from soundalike.errors import AudioDecodeError

    out = Path(out)
    index_path = out / "index.json"
    if index_path.is_file():
        return out
    manifest = Path(music) / "manifest.jsonl"
    if not manifest.is_file():
        raise DatasetError(f"{manifest.name} is missing from {Path(music).name}: fetch the music first "
                           "(soundalike datasets debian-music DIR)")
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    pieces: list[np.ndarray] = []
    index: list[dict[str, Any]] = []
    at = 0
    for i, row in enumerate(rows):
        dur = float(row.get("duration") or 0.0)
        for k in range(per_track):
            start = float(rng.uniform(0, max(0.0, dur - excerpt_seconds))) if dur > excerpt_seconds else 0.0
            try:
                y = decode(Path(music) / row["path"], sr=sr, offset=start, duration=excerpt_seconds).samples
            except AudioDecodeError:
                continue
            if len(y) < sr or float(np.sqrt(np.mean(y**2))) < 1e-3:
                continue
            pieces.append(y.astype(np.float16))
            index.append({"start": at, "length": len(y), "label": row.get("label", ""), "track": i, "excerpt": k})
            at += len(y)
        if progress is not None:
            progress(i + 1, len(rows))
    if not pieces:
        raise DatasetError(f"no decodable music in {Path(music).name}")
    np.save(out / "music.npy", np.concatenate(pieces))
    index_path.write_text(json.dumps({"sample_rate": sr, "excerpts": index}))
    return out


@functools.lru_cache(maxsize=4)
def _load_cache(path: str) -> tuple[np.ndarray, list[dict[str, Any]]]:
    p = Path(path)
    if not (p / "index.json").is_file():
        raise DatasetError(f"no music cache in {p.name}: build it with `soundalike train-restore` "
                           "(it decodes the music once)")
    index = json.loads((p / "index.json").read_text())
    return np.load(p / "music.npy", mmap_mode="r"), index["excerpts"]


def music_excerpt(cache: str | Path, rng: np.random.Generator, n: int, *, valid: bool) -> np.ndarray:
    """``n`` samples of cached music from a training (or, ``valid``, a validation) package, not quiet."""
    from soundalike.data.debian import VALID_PACKAGES

    audio, index = _load_cache(str(cache))
    pool = [e for e in index if (e["label"] in VALID_PACKAGES) == valid and e["length"] > n]
    if not pool:
        raise DatasetError("the music cache holds no excerpts for " + ("validation" if valid else "training"))
    for _ in range(20):
        e = pool[int(rng.integers(0, len(pool)))]
        a = e["start"] + int(rng.integers(0, e["length"] - n))
        y = np.asarray(audio[a: a + n], np.float32)
        if float(np.sqrt(np.mean(y**2))) > 3e-3:
            return y
    return y


# ----------------------------------------------------------------------------------------- degradation


@dataclass
class Degradation:
    """What :func:`degrade` did: noises and SNR (dB), clipping kind and level."""

    noises: list[str] = field(default_factory=list)
    snr_db: float | None = None
    clip: str | None = None  # "hard" or "soft"
    clip_level: float | None = None  # hard: fraction of the peak; soft: drive in dB

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def degrade(clean: np.ndarray, sr: int, rng: np.random.Generator, *, p_clean: float = 0.1, p_noise: float = 0.75,
            p_clip: float = 0.5, snr_range: tuple[float, float] = (-5.0, 20.0)) -> tuple[np.ndarray, Degradation]:
    """A training degradation of ``clean``: noise (one or two training noises) then clipping, or nothing."""
    d = Degradation()
    y = np.asarray(clean, np.float32)
    if rng.random() < p_clean:
        return y.copy(), d
    noisy = rng.random() < p_noise
    clipped = rng.random() < p_clip or not noisy
    if noisy:
        names = list(TRAIN_NOISES)
        picks = [str(n) for n in rng.choice(names, size=1 if rng.random() < 0.7 else 2, replace=False)]
        noise = sum(rng.uniform(0.3, 1.0) * make_noise(n, len(y), sr, rng) for n in picks)
        d.noises, d.snr_db = picks, float(rng.uniform(*snr_range))
        y = add_at_snr(y, np.asarray(noise, np.float32), d.snr_db)
    if clipped:
        if rng.random() < 0.8:
            d.clip, d.clip_level = "hard", float(rng.uniform(0.15, 0.7))
            y = hard_clip(y, d.clip_level)
        else:
            d.clip, d.clip_level = "soft", float(rng.uniform(6.0, 20.0))
            y = soft_clip(y, d.clip_level)
    return y, d


def make_example(seed: int, *, cache: str, sr: int, seconds: float, valid: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(degraded waveform, targets [shape=(2, n)]: the clean waveform and each sample's clipping side: +1
    stuck at the top, -1 at the bottom, 0 free). Both at a random level (peak -1 to -20 dBFS before any
    noise)."""
    rng = np.random.default_rng([seed, 23])
    n = int(seconds * sr)
    clean = music_excerpt(cache, rng, n, valid=valid)
    clean = clean / max(float(np.max(np.abs(clean))), 1e-6) * np.float32(10 ** (-rng.uniform(1, 20) / 20))
    y, _ = degrade(clean, sr, rng)
    peak = float(np.max(np.abs(y)))
    if peak > 0.999:  # the mixture stays inside full scale (the clipping is the simulated one)
        scale = np.float32(0.999 / peak)
        y, clean = y * scale, clean * scale
    side = np.zeros(n, np.float32)
    clip = clipped_samples(y)
    if clip is not None:
        side[clip.top], side[clip.bottom] = 1.0, -1.0
    return y.astype(np.float32), np.stack([clean.astype(np.float32), side])


# ----------------------------------------------------------------------------------------- training


def sdr_db(est: Any, ref: Any, cap_db: float = 30.0) -> Any:
    """Per example SDR in dB of ``est`` against ``ref`` (B, n) tensors, softly capped at ``cap_db``."""
    import torch

    num = (ref**2).sum(-1)
    den = ((est - ref) ** 2).sum(-1) + 10 ** (-cap_db / 10) * num + 1e-9
    return 10 * torch.log10(num / den + 1e-12)


def compressed_spectral_loss(est: Any, ref: Any, fe: RestoreFrontend, power: float = 0.3) -> Any:
    """Mean squared difference of power-compressed STFT magnitudes plus 0.3 x that of the compressed complex
    spectra (each example scaled by its reference's mean compressed magnitude): dense per-bin gradients
    that speed the start of training, where the SDR alone moves slowly."""

    def comp(x: Any) -> tuple[Any, Any]:
        spec = stft(x, fe)
        mag = spec.abs().clamp_min(1e-8)
        return mag**power, spec * mag ** (power - 1)

    (me, ce), (mr, cr) = comp(est), comp(ref)
    scale = mr.mean(dim=(1, 2), keepdim=True).clamp_min(1e-6)
    return ((me - mr) / scale).pow(2).mean() + 0.3 * ((ce - cr) / scale).abs().pow(2).mean()


def si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al., 2019)."""
    est, ref = np.asarray(est, np.float64), np.asarray(ref, np.float64)
    alpha = float(est @ ref) / max(float(ref @ ref), 1e-20)
    target = alpha * ref
    return float(10 * np.log10(max(float(target @ target), 1e-20) / max(float((est - target) @ (est - target)), 1e-20)))


def sdr(est: np.ndarray, ref: np.ndarray) -> float:
    """SDR in dB (no rescaling): what declipping is measured by."""
    est, ref = np.asarray(est, np.float64), np.asarray(ref, np.float64)
    return float(10 * np.log10(max(float(ref @ ref), 1e-20) / max(float((est - ref) @ (est - ref)), 1e-20)))


@dataclass
class RestoreTrainConfig:
    """A restoration training run."""

    out: str = "runs/restore"
    music: str = "data/debian-train"  # soundalike datasets debian-music DIR
    cache: str = str(DEFAULT_CACHE)
    steps: int = 4000
    batch: int = 6
    seconds: float = 2.0
    lr: float = 2e-3
    weight_decay: float = 1e-5
    warmup: int = 100
    seed: int = 0
    workers: int = 1
    threads: int = 2
    valid_examples: int = 48
    valid_every: int = 250
    checkpoint_every: int = 50
    net_config: dict[str, Any] = field(default_factory=dict)
    frontend: dict[str, Any] = field(default_factory=dict)
    name: str = "restore_unet-music"
    spectral_weight: float = 0.5  # of compressed_spectral_loss beside the negative SDR (dB), from the start ...
    spectral_final: float = 0.05  # ... down to this by spectral_decay steps (the dense gradients help the start)
    spectral_decay: int = 2000
    clip_weight: float = 3.0  # a clipped example's SDR gain counts this many times (its gains are smaller)


class RestoreSolver(ModelSolver):
    desc = "restore"

    def __init__(self, cfg: RestoreTrainConfig, *, log: Callable[[str], None] | None = None) -> None:
        super().__init__(cfg, log=log)
        self.frontend = RestoreFrontend.from_dict(cfg.frontend)
        self.settings = RestoreSettings()
        self._valid: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None

    def resumable_config(self) -> dict[str, Any]:
        d = asdict(self.cfg)
        # the loss weights may change when a run resumes (the shipped run's did at step 1,700)
        for k in ("steps", "valid_every", "checkpoint_every", "workers", "threads", "out", "valid_examples",
                  "music", "cache", "spectral_weight", "spectral_final", "spectral_decay", "clip_weight"):
            d.pop(k)
        return d

    def build(self) -> None:
        import torch

        build_music_cache(self.cfg.music, self.cfg.cache, sr=self.frontend.sample_rate)
        self.net = build_net("mask_unet", {"n_bins": self.frontend.n_bins, **self.cfg.net_config})
        self.features = self.net_input
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: warmup_cosine(s, steps=self.cfg.steps, warmup=self.cfg.warmup, floor=0.05))

    def make_example(self) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
        return functools.partial(make_example, cache=self.cfg.cache, sr=self.frontend.sample_rate,
                                 seconds=self.cfg.seconds)

    def net_input(self, y: Any) -> Any:
        """Network inputs of waveforms (B, n): each at its own loudness gain, as inference does."""
        import torch

        gains = torch.tensor([loudness_gain(v, self.frontend) for v in y.numpy()], dtype=torch.float32)
        return network_input(stft(y, self.frontend), gains, self.frontend)

    def forward(self, y: Any, side: Any) -> Any:
        """The restored waveforms (B, n) of degraded ones, projected where they are clipped."""
        import torch

        fe = self.frontend
        spec = stft(y, fe)
        raw = self.net(self.net_input(y))
        est = istft(apply_mask(spec, raw, max_gain=self.settings.max_gain), fe, y.shape[-1])
        high, low = y.amax(-1, keepdim=True), y.amin(-1, keepdim=True)
        est = torch.where(side > 0, torch.maximum(est, high), est)
        return torch.where(side < 0, torch.minimum(est, low), est)

    def train_step(self) -> dict[str, float]:
        self.net.train()
        y, t = next(self.batches(VALID_SEED0))
        est = self.forward(y, t[:, 1])
        gains = sdr_db(est, t[:, 0]) - sdr_db(y, t[:, 0])
        weights = 1.0 + (self.cfg.clip_weight - 1.0) * (t[:, 1] != 0).any(dim=-1).float()
        gain = (gains * weights).sum() / weights.sum()
        c = self.cfg
        spectral = c.spectral_weight + (c.spectral_final - c.spectral_weight) * min(1.0, self.step / max(1, c.spectral_decay))
        loss = -gain + spectral * compressed_spectral_loss(est, t[:, 0], self.frontend)
        self.optimise(loss)
        return {"loss": float(loss.detach()), "sdr_gain": float(gains.mean().detach())}

    def _valid_set(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        if self._valid is None:
            self._valid = []
            for k in range(self.cfg.valid_examples):
                y, t = make_example(VALID_SEED0 + k, cache=self.cfg.cache, sr=self.frontend.sample_rate,
                                    seconds=4.0, valid=True)
                self._valid.append((y, t[0], t[1]))
        return self._valid

    def model(self) -> RestorationModel:
        return RestorationModel(self.net, name=self.cfg.name, frontend=self.frontend, settings=self.settings,
                                runtime="torch", metadata={"steps": self.step, "music": Path(self.cfg.music).name})

    def valid(self) -> dict[str, float] | None:
        """Mean SI-SDR gain (dB) on noisy examples, SDR gain on clipped ones, and the SI-SDR of clean ones
        passed through (an untouched example has no finite gain: it is reported apart)."""
        import torch

        self.recalibrate()
        gains, clip_gains, clean = [], [], []
        with torch.no_grad():
            for y, ref, side in self._valid_set():
                est = self.forward(torch.from_numpy(y)[None], torch.from_numpy(side)[None])[0].numpy()
                if np.array_equal(y, ref):
                    clean.append(si_sdr(est, ref))
                elif side.any():
                    clip_gains.append(sdr(est, ref) - sdr(y, ref))
                else:
                    gains.append(si_sdr(est, ref) - si_sdr(y, ref))
        mean = lambda v: round(float(np.mean(v)), 3) if v else 0.0  # noqa: E731
        return {"si_sdr_gain": mean(gains), "declip_gain": mean(clip_gains), "clean_si_sdr": mean(clean)}


def train_restore(cfg: RestoreTrainConfig, *, progress: bool = False,
                  log: Callable[[str], None] | None = None) -> tuple[RestoreSolver, Path]:
    """Train (resuming ``cfg.out``'s checkpoint when there is one), then export the model there."""
    solver, path = RestoreSolver.train_and_export(cfg, progress=progress, log=log)
    return solver, path
