"""One typed configuration for every augmentation, and the random chain that applies them.

Training uses augmentations in two places:

* **views** (:func:`augment_waveform`): slow waveform changes (pitch, tempo,
  EQ, reverb, gain, noise, MP3) applied once per track segment when the data
  is prepared and cached;
* **per sample** (:func:`augment_chunk`): chunk position, noise mixed in the
  power-mel domain at a random SNR, time and frequency masking, fresh for
  every training example.

Each probability ``*_p`` can be set to 0 to switch that augmentation off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from soundalike.augment import spec as S
from soundalike.augment import waveform as W
from soundalike.errors import ConfigError


@dataclass
class AugmentConfig:
    # chunk position: positives near the anchor's time (with jitter) or anywhere in the track
    near_p: float = 0.5  # share of positives taken at (about) the anchor's time
    jitter_frames: int = 24  # +- frames around the anchor's time for "near" positives
    # waveform chain, applied to each cached view of a segment
    views: int = 2  # augmented copies per track (0: clean audio only)
    view_seconds: float = 45.0  # length of the segment each view covers
    gain_db: float = 6.0  # +- dB
    pitch_p: float = 0.5
    pitch_semitones: float = 2.0  # +- semitones
    stretch_p: float = 0.5
    stretch_max: float = 0.08  # rate in [1 - x, 1 + x]
    speed_p: float = 0.0  # speed change (resampled: pitch and tempo move together)
    speed_max: float = 0.04  # factor in [1 - x, 1 + x]
    eq_p: float = 0.6
    eq_max_db: float = 12.0
    reverb_p: float = 0.3
    reverb_rt60: tuple[float, float] = (0.2, 1.2)
    reverb_wet: tuple[float, float] = (0.1, 0.5)
    view_noise_p: float = 0.3  # noise before the codec, as a recording would have it
    codec_p: float = 0.7
    codec_kbps: tuple[float, float] = (32.0, 192.0)
    # per sample
    noise_p: float = 0.7
    noise_snr_db: tuple[float, float] = (0.0, 25.0)
    noise_colors: tuple[str, ...] = ("white", "pink")
    time_mask_p: float = 0.3
    time_mask_frames: int = 16
    freq_mask_p: float = 0.3
    freq_mask_bins: int = 16
    extra: dict[str, Any] = field(default_factory=dict)  # reserved for registered extensions

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name.endswith("_p"):
                v = float(getattr(self, f.name))
                if not 0.0 <= v <= 1.0:
                    raise ConfigError(f"augment.{f.name} is a probability: it must be in [0, 1], got {v}")
        for name in ("reverb_rt60", "reverb_wet", "codec_kbps", "noise_snr_db"):
            pair = tuple(float(x) for x in getattr(self, name))
            if len(pair) != 2 or pair[0] > pair[1]:
                raise ConfigError(f"augment.{name} must be a [low, high] pair, got {list(pair)}")
            setattr(self, name, pair)
        self.noise_colors = tuple(self.noise_colors)
        for c in self.noise_colors:
            if c not in ("white", "pink"):
                raise ConfigError(f"augment.noise_colors: unknown color {c!r} (white, pink)")
        if not 0 <= self.stretch_max < 0.5:
            raise ConfigError("augment.stretch_max must be in [0, 0.5)")
        if not 0 <= self.speed_max < 0.5:
            raise ConfigError("augment.speed_max must be in [0, 0.5)")
        if self.views < 0 or self.view_seconds <= 0:
            raise ConfigError("augment.views must be >= 0 and view_seconds > 0")
        if not self.codec_kbps[0] >= 8.0 and self.codec_kbps[1] <= 320.0:
            raise ConfigError("augment.codec_kbps must lie within [8, 320]")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> AugmentConfig:
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown augment settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


def augment_waveform(y: np.ndarray, sr: int, cfg: AugmentConfig, rng: np.random.Generator
                     ) -> tuple[np.ndarray, dict[str, Any]]:
    """One random chain over a waveform: pitch -> tempo -> speed -> EQ -> reverb -> gain -> noise -> codec.

    Returns the new waveform and what was applied (``rate`` is the tempo factor:
    the result is ``len(y) / rate`` samples long).
    """
    p: dict[str, Any] = {"rate": 1.0}
    x = np.asarray(y, dtype=np.float32)
    if cfg.pitch_p and rng.random() < cfg.pitch_p:
        st = float(rng.uniform(-cfg.pitch_semitones, cfg.pitch_semitones))
        x = W.pitch_shift(x, sr, st)
        p["pitch_semitones"] = round(st, 3)
    if cfg.stretch_p and rng.random() < cfg.stretch_p:
        rate = float(rng.uniform(1 - cfg.stretch_max, 1 + cfg.stretch_max))
        x = W.time_stretch(x, rate)
        p["rate"] = rate
    if cfg.speed_p and rng.random() < cfg.speed_p:
        factor = float(rng.uniform(1 - cfg.speed_max, 1 + cfg.speed_max))
        x = W.speed_change(x, sr, factor)
        p["rate"] = p["rate"] * factor
        p["speed"] = round(factor, 4)
    if cfg.eq_p and rng.random() < cfg.eq_p:
        x = W.random_eq(x, sr, rng, max_db=cfg.eq_max_db)
        p["eq"] = True
    if cfg.reverb_p and rng.random() < cfg.reverb_p:
        rt60 = float(rng.uniform(*cfg.reverb_rt60))
        wet = float(rng.uniform(*cfg.reverb_wet))
        x = W.reverb(x, sr, rng, rt60=rt60, wet=wet)
        p["reverb"] = {"rt60": round(rt60, 3), "wet": round(wet, 3)}
    if cfg.gain_db:
        g = float(rng.uniform(-cfg.gain_db, cfg.gain_db))
        x = W.gain(x, g)
        p["gain_db"] = round(g, 2)
    if cfg.view_noise_p and rng.random() < cfg.view_noise_p:
        snr = float(rng.uniform(*cfg.noise_snr_db))
        color = str(rng.choice(list(cfg.noise_colors)))
        x = W.add_noise(x, snr, rng, color)
        p["noise"] = {"snr_db": round(snr, 2), "color": color}
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak > 0.99:  # a limiter, as a mastering chain would have: no clipping in the codec
        x = x * np.float32(0.99 / peak)
    if cfg.codec_p and rng.random() < cfg.codec_p:
        kbps = float(rng.uniform(*cfg.codec_kbps))
        x = W.codec(x, sr, bitrate_kbps=kbps)
        p["codec_kbps"] = round(kbps, 1)
    return x.astype(np.float32), p


class NoiseBank:
    """Mel power of unit-variance white and pink noise, to mix into training chunks at any SNR."""

    def __init__(self, frontend: Any, *, seconds: float = 30.0, seed: int = 1234) -> None:
        import torch

        from soundalike.features.mel import MelFrontend

        rng = np.random.default_rng(seed)
        mel = MelFrontend(frontend)
        n = int(seconds * frontend.sample_rate)
        self.power: dict[str, np.ndarray] = {}
        for color in ("white", "pink"):
            noise = W.colored_noise(n, rng, color)
            with torch.inference_mode():
                self.power[color] = mel(noise).numpy().astype(np.float32)

    def crop(self, color: str, frames: int, rng: np.random.Generator) -> np.ndarray:
        bank = self.power[color]
        s = int(rng.integers(0, bank.shape[1] - frames + 1))
        return bank[:, s : s + frames]


def augment_chunk(db: np.ndarray, signal_power: float, cfg: AugmentConfig, rng: np.random.Generator, *,
                  bank: NoiseBank, top_db: float, amin: float) -> np.ndarray:
    """Per-sample augmentation of one chunk of *unreferenced* dB mels -> a model input
    (referenced to its maximum, floored at ``-top_db``)."""
    x = np.asarray(db, dtype=np.float32)
    if cfg.noise_p and rng.random() < cfg.noise_p:
        snr = float(rng.uniform(*cfg.noise_snr_db))
        color = str(cfg.noise_colors[int(rng.integers(0, len(cfg.noise_colors)))])
        power = np.power(np.float32(10.0), x / np.float32(10.0))
        power = S.mix_noise_power(power, signal_power, bank.crop(color, x.shape[1], rng), snr)
        x = np.float32(10.0) * np.log10(np.maximum(power, np.float32(amin)))
    x = x - x.max()
    x = np.maximum(x, -top_db)
    if cfg.time_mask_p and rng.random() < cfg.time_mask_p:
        x = S.time_mask(x, rng, cfg.time_mask_frames, fill=-top_db)
    if cfg.freq_mask_p and rng.random() < cfg.freq_mask_p:
        x = S.freq_mask(x, rng, cfg.freq_mask_bins, fill=-top_db)
    return x
