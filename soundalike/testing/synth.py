"""Generated, seeded audio for tests: tones, chirps, noise, and little 'tracks'."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tone(freq: float, *, sr: int = 22050, duration: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    """A sine at ``freq`` Hz. Returns float32 [shape=(round(sr * duration),)]."""
    t = np.arange(int(round(sr * duration))) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chirp(fmin: float, fmax: float, *, sr: int = 22050, duration: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    """An exponential sweep from ``fmin`` to ``fmax`` Hz."""
    t = np.arange(int(round(sr * duration))) / sr
    k = np.log(fmax / fmin) / duration
    phase = 2 * np.pi * fmin * (np.exp(k * t) - 1) / k
    return (amplitude * np.sin(phase)).astype(np.float32)


def noise(*, sr: int = 22050, duration: float = 1.0, amplitude: float = 0.1, seed: int = 0) -> np.ndarray:
    return (amplitude * np.random.default_rng(seed).standard_normal(int(round(sr * duration)))).astype(np.float32)


def synth_track(seed: int, *, sr: int = 22050, duration: float = 30.0) -> np.ndarray:
    """A 'track' with its own scale, timbre, tempo and drum pattern, fixed by ``seed``.

    Different seeds sound clearly different; excerpts of one seed share its character.
    """
    rng = np.random.default_rng(seed)
    n = int(round(sr * duration))
    y = np.zeros(n, np.float64)
    tempo = rng.uniform(70, 160)
    beat = 60.0 / tempo
    root = rng.uniform(110, 440)
    scale = root * 2 ** (np.array(sorted(rng.choice(12, size=5, replace=False))) / 12)
    harmonics = rng.uniform(0, 1, size=6) ** 2
    bright = rng.uniform(0.5, 3.0)
    t_note = np.arange(int(beat * sr)) / sr
    env = np.exp(-t_note * rng.uniform(2, 8))
    for i in range(int(duration / beat)):
        f = scale[rng.integers(len(scale))] * (2 if rng.random() < 0.3 else 1)
        note = sum(h * np.sin(2 * np.pi * f * (k + 1) * t_note) / (k + 1) ** bright for k, h in enumerate(harmonics))
        s = int(i * beat * sr)
        e = min(n, s + len(note))
        y[s:e] += (note * env)[: e - s]
    if rng.random() < 0.7:  # drums
        hit = rng.standard_normal(int(0.05 * sr)) * np.exp(-np.arange(int(0.05 * sr)) / (0.01 * sr))
        every = int(rng.choice([1, 2]))
        for i in range(0, int(duration / beat), every):
            s = int(i * beat * sr)
            e = min(n, s + len(hit))
            y[s:e] += 0.5 * hit[: e - s]
    y /= max(1e-9, np.abs(y).max())
    return (0.8 * y).astype(np.float32)


def write_tracks(folder: str | Path, seeds: list[int], *, sr: int = 22050, duration: float = 30.0,
                 suffix: str = ".wav") -> list[Path]:
    """Write :func:`synth_track` for each seed as ``folder/track_SEED.suffix``."""
    from soundalike.audio.io import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [save(folder / f"track_{s:03d}{suffix}", synth_track(s, sr=sr, duration=duration), sr) for s in seeds]
