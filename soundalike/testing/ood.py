"""Generated audio that is in no catalog: what `identify` must answer "no match" to.

Each kind is a family of signals a fingerprinter meets in the wild and must not claim as a catalog track:
test tones, sweeps, steady chords, generated chord songs (harmonic-tone chords and noise-burst drums with
their own tempo, roots and timbre), drum loops, speech-like noise and silence with hiss. :func:`ood_clip`
makes one clip of a kind from a seed; :func:`chord_song` is also a catalog-side generator (index some seeds,
query others).
"""

from __future__ import annotations

import numpy as np

OOD_KINDS: tuple[str, ...] = ("tone", "sweep", "chord", "chord_song", "drum_loop", "speech_noise", "hiss")


def _harmonic(f: float, t: np.ndarray, weights: np.ndarray, bright: float) -> np.ndarray:
    return np.sum([w * np.sin(2 * np.pi * f * (k + 1) * t) / (k + 1) ** bright for k, w in enumerate(weights)], axis=0)


def _finish(y: np.ndarray, rng: np.random.Generator, peak: float = 0.8) -> np.ndarray:
    y = np.asarray(y, np.float64)
    m = float(np.abs(y).max())
    return (peak * y / m if m > 0 else y).astype(np.float32)


def chord_song(seed: int, *, sr: int = 22050, duration: float = 30.0) -> np.ndarray:
    """A generated 'song': sustained chords of harmonic tones (a I-IV-V-I or I-vi-IV-V progression, a bar
    each, in one of twelve keys, its own timbre) over noise-burst drums on every beat at its own tempo.
    Different seeds are different songs of one narrow style: many share a key and a progression, which is
    what makes one easy to mistake for another."""
    rng = np.random.default_rng(seed)
    n = int(round(sr * duration))
    t = np.arange(n) / sr
    y = np.zeros(n, np.float64)
    beat = 60.0 / rng.uniform(80, 150)
    bar = 4 * beat
    key = float(rng.uniform(110.0, 220.0))
    prog = (0, 5, 7, 0) if rng.random() < 0.5 else (0, 9, 5, 7)
    weights = rng.uniform(0.2, 1.0, size=6) ** 2
    for i in range(int(np.ceil(duration / bar))):
        s, e = int(i * bar * sr), min(n, int((i + 1) * bar * sr))
        if s >= n:
            break
        tt = t[s:e] - t[s]
        root = key * 2 ** (prog[i % 4] / 12)
        y[s:e] += sum(_harmonic(root * 2 ** (iv / 12), tt, weights, 1.0) for iv in (0, 4, 7))
    y /= max(1e-9, float(np.abs(y).max()))
    hit = rng.standard_normal(int(0.05 * sr)) * np.exp(-np.arange(int(0.05 * sr)) / (0.01 * sr))
    for i in range(int(duration / beat)):
        s = int(i * beat * sr)
        e = min(n, s + len(hit))
        y[s:e] += 0.5 * hit[: e - s]
    return _finish(y, rng)


def ood_clip(kind: str, seed: int, *, sr: int = 22050, duration: float = 5.0) -> np.ndarray:
    """One clip of ``kind`` (one of :data:`OOD_KINDS`), ``duration`` seconds, deterministic for ``seed``."""
    rng = np.random.default_rng([seed, OOD_KINDS.index(kind)] if kind in OOD_KINDS else seed)
    n = int(round(sr * duration))
    t = np.arange(n) / sr
    if kind == "tone":
        f = float(rng.choice([440.0, 1000.0, 60.0, 3000.0, rng.uniform(100, 4000)]))
        return _finish(np.sin(2 * np.pi * f * t), rng, peak=float(rng.uniform(0.1, 0.8)))
    if kind == "sweep":
        f0, f1 = sorted(rng.uniform(50, 8000, size=2))
        k = np.log(f1 / f0) / duration
        return _finish(np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k), rng)
    if kind == "chord":
        root = rng.uniform(80, 400)
        w = rng.uniform(0.2, 1.0, size=6) ** 2
        tones = [_harmonic(root * 2 ** (iv / 12), t, w, rng.uniform(0.5, 2.0)) for iv in (0, 4, 7, 12)]
        return _finish(np.sum(tones, axis=0), rng)
    if kind == "chord_song":
        return chord_song(10_000 + seed, sr=sr, duration=duration + 8.0)[int(4 * sr): int(4 * sr) + n]
    if kind == "drum_loop":
        beat = 60.0 / rng.uniform(80, 170)
        y = np.zeros(n)
        kick = np.sin(2 * np.pi * 55 * np.arange(int(0.15 * sr)) / sr) * np.exp(-np.arange(int(0.15 * sr)) / (0.04 * sr))
        hat = rng.standard_normal(int(0.03 * sr)) * np.exp(-np.arange(int(0.03 * sr)) / (0.005 * sr))
        snare = rng.standard_normal(int(0.12 * sr)) * np.exp(-np.arange(int(0.12 * sr)) / (0.03 * sr))
        for i in range(int(duration / (beat / 2)) + 1):
            s = int(i * beat / 2 * sr)
            for hit, on in ((kick, i % 4 == 0), (snare, i % 4 == 2), (hat, True)):
                if on and s < n:
                    e = min(n, s + len(hit))
                    y[s:e] += hit[: e - s]
        return _finish(y, rng)
    if kind == "speech_noise":  # noise through moving formants, in syllable-rate bursts
        from scipy.signal import lfilter

        x = rng.standard_normal(n)
        y = np.zeros(n)
        seg = int(0.12 * sr)
        for s in range(0, n, seg):
            e = min(n, s + seg)
            out = np.zeros(e - s)
            for f in (rng.uniform(300, 900), rng.uniform(900, 2500), rng.uniform(2500, 3500)):
                r = 0.97
                a = [1.0, -2 * r * np.cos(2 * np.pi * f / sr), r * r]
                out += lfilter([1 - r], a, x[s:e])
            y[s:e] = out * (0.2 + 0.8 * (rng.random() < 0.7))
        y *= 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(3, 6) * t))
        return _finish(y, rng)
    if kind == "hiss":
        return (rng.standard_normal(n) * 10 ** (rng.uniform(-60, -40) / 20)).astype(np.float32)
    raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(OOD_KINDS)}")
