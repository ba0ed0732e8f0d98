"""The degradations restoration learns to undo, all generated (nothing is downloaded): noises that
recordings carry, and clipping.

Every noise is ``make(n, sr, rng) -> float32 [shape=(n,)]`` with unit RMS, registered by name:

- :data:`TRAIN_NOISES`, what the shipped model trains on: ``white``, ``pink``, ``brown``, ``hum`` (mains
  at 50 or 60 Hz with harmonics, or a rectified buzz), ``crackle`` (vinyl: dense small impulses, rare large
  clicks and a rumble), ``hiss`` (tape: shelved white noise that breathes), ``room`` (a low, resonant room
  tone) and ``crowd`` (many talkers: speech-shaped noise under syllable-rate envelopes);
- :data:`UNSEEN_NOISES`, only for evaluation (the benchmark reports them apart): ``blue`` (a rising
  spectrum, +3 dB per octave), ``fan`` (broadband air noise with blade-pass tones off the mains
  frequencies), ``rain`` (dense droplets over a band) and ``buzz217`` (a GSM phone's 217 Hz bursts).

Clipping: :func:`hard_clip` at a fraction of the peak and :func:`soft_clip` (a tanh saturation);
:func:`asymmetric_clip` is evaluation only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from soundalike.augment.waveform import apply_eq, colored_noise
from soundalike.errors import ParameterError

Noise = Callable[[int, int, np.random.Generator], np.ndarray]


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    x = x - x.mean()
    return (x / max(float(np.sqrt(np.mean(x**2))), 1e-12)).astype(np.float32)


def _smooth_envelope(n: int, sr: int, rng: np.random.Generator, rate_hz: float, depth_db: float) -> np.ndarray:
    """A slow random gain around 1: points every 1/rate_hz s, +-depth_db, interpolated."""
    points = max(2, int(n / sr * rate_hz) + 2)
    db = rng.uniform(-depth_db, depth_db, points)
    return (10 ** (np.interp(np.arange(n), np.linspace(0, n, points), db) / 20)).astype(np.float32)


def _fft_filter(x: np.ndarray, sr: int, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``x`` with its spectrum multiplied by ``gain(freqs)`` (amplitude)."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return np.fft.irfft(spec * gain(f), len(x))


def white(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    return colored_noise(n, rng, "white")


def pink(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    return colored_noise(n, rng, "pink")


def brown(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    return colored_noise(n, rng, "brown")


def hum(n: int, sr: int, rng: np.random.Generator, *, mains: float | None = None) -> np.ndarray:
    """Mains hum: 50 or 60 Hz (+-0.5 %) with up to 30 harmonics whose levels fall 3-12 dB per octave (odd
    ones stronger in a buzz), each with its own drifting phase; now and then a half-wave-rectified buzz."""
    f0 = (mains or float(rng.choice([50.0, 60.0]))) * (1 + rng.uniform(-0.005, 0.005))
    t = np.arange(n) / sr
    slope = rng.uniform(3, 12)
    odd_boost = rng.uniform(0, 9) if rng.random() < 0.5 else 0.0
    drift = np.cumsum(rng.normal(0, 2e-4, n))  # a wandering phase: the mains frequency drifts a little
    x = np.zeros(n)
    for k in range(1, int(min(30, sr / 2 / f0 - 1)) + 1):
        level = -slope * math.log2(k) + (odd_boost if k % 2 else 0.0) + rng.normal(0, 3)
        x += 10 ** (level / 20) * np.sin(2 * np.pi * k * f0 * t + k * drift + rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.25:  # a rectified buzz: every harmonic of 2 f0 at once
        buzz = np.maximum(np.sin(2 * np.pi * f0 * t + drift), 0)
        x = x / max(float(np.std(x)), 1e-12) + rng.uniform(0.3, 1.5) * buzz / max(float(np.std(buzz)), 1e-12)
    return _unit(x)


def _impulses(n: int, sr: int, rng: np.random.Generator, rate: float, length_ms: tuple[float, float],
              alpha: float) -> np.ndarray:
    """A Poisson train of short decaying bursts (``rate`` per second, lengths in ``length_ms``) with
    Pareto(``alpha``) amplitudes and random signs."""
    x = np.zeros(n)
    count = rng.poisson(rate * n / sr)
    if count == 0:
        return x
    where = rng.integers(0, n, count)
    amps = (rng.pareto(alpha, count) + 1) * rng.choice([-1.0, 1.0], count)
    for w, a in zip(where, amps, strict=True):
        m = max(2, int(rng.uniform(*length_ms) * sr / 1000))
        burst = rng.standard_normal(m) * np.exp(-np.arange(m) / (m / 4))
        end = min(n, w + m)
        x[w:end] += a * burst[: end - w]
    return x


def crackle(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Vinyl: dense small crackle (20-300 per second), rare large clicks (0.2-3 per second), both
    high-passed as a stylus hears them, and a faint rumble under them."""
    small = _impulses(n, sr, rng, rng.uniform(20, 300), (0.05, 0.5), 3.0)
    clicks = _impulses(n, sr, rng, rng.uniform(0.2, 3.0), (0.3, 3.0), 2.0) * rng.uniform(3, 15)
    corner = rng.uniform(300, 2000)
    x = _fft_filter(small + clicks, sr, lambda f: f**2 / (f**2 + corner**2))
    x = _unit(x)
    if rng.random() < 0.6:
        rumble = _fft_filter(rng.standard_normal(n), sr, lambda f: 1 / (1 + (f / rng.uniform(15, 40)) ** 4))
        x = x + rng.uniform(0.1, 0.5) * _unit(rumble)
    return _unit(x)


def hiss(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Tape hiss: white noise with a 3-10 dB shelf above 2-6 kHz, a gentle low cut, breathing by +-1 dB."""
    shelf_db, corner = rng.uniform(3, 10), rng.uniform(2000, 6000)
    low = rng.uniform(100, 400)
    g = 10 ** (shelf_db / 20)
    x = _fft_filter(rng.standard_normal(n), sr,
                    lambda f: (1 + (g - 1) * f**2 / (f**2 + corner**2)) * f / np.sqrt(f**2 + low**2))
    return _unit(_unit(x) * _smooth_envelope(n, sr, rng, 3.0, 1.0))


def room(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Room tone: brown-to-pink noise low-passed at 200-2000 Hz with one or two room resonances."""
    x = colored_noise(n, rng, str(rng.choice(["pink", "brown"])))
    bands = [(float(rng.uniform(40, 400)), float(rng.uniform(3, 12)), float(rng.uniform(0.2, 0.8)))
             for _ in range(int(rng.integers(1, 3)))]
    return _unit(apply_eq(x, sr, bands=bands, lowpass=float(rng.uniform(200, 2000))))


def crowd(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A crowd: 6-30 talkers, each speech-shaped noise (formant-like peaks between 300 Hz and 3 kHz) under a
    syllable-rate (3-6 Hz) on-off envelope, summed."""
    x = np.zeros(n)
    t = np.arange(n) / sr
    for _ in range(int(rng.integers(6, 31))):
        bands = [(float(rng.uniform(300, 900)), 12.0, 0.6), (float(rng.uniform(1000, 2600)), 9.0, 0.5)]
        voice = apply_eq(colored_noise(n, rng, "pink"), sr, bands=bands, highpass=150.0, lowpass=4000.0)
        rate = rng.uniform(3, 6)
        env = np.clip(np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)) + rng.uniform(-0.3, 0.6), 0, None)
        env *= _smooth_envelope(n, sr, rng, 0.5, 6.0)  # talkers come and go
        x += rng.uniform(0.3, 1.0) * env * _unit(voice)
    return _unit(x)


def blue(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Unseen: power rising 3 dB per octave (the mirror of pink)."""
    return _unit(_fft_filter(rng.standard_normal(n), sr, lambda f: np.sqrt(np.maximum(f, 1.0))))


def fan(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Unseen: air noise with a broad hump at 200-800 Hz and blade-pass tones at 80-200 Hz (not a mains
    frequency) with a few harmonics."""
    air = apply_eq(colored_noise(n, rng, "pink"), sr, bands=[(float(rng.uniform(200, 800)), 10.0, 1.5)])
    f0 = rng.uniform(80, 200)
    t = np.arange(n) / sr
    tones = sum(10 ** (-6 * k / 20) * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3)) for k in range(1, 5))
    return _unit(_unit(air) + rng.uniform(0.3, 1.0) * _unit(np.asarray(tones)))


def rain(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Unseen: very dense droplets (1000-4000 per second) band-passed at 1-8 kHz."""
    drops = _impulses(n, sr, rng, rng.uniform(1000, 4000), (0.2, 2.0), 4.0)
    centre = rng.uniform(1000, 8000)
    return _unit(_fft_filter(drops, sr, lambda f: 1 / (1 + ((f - centre) / (centre / 2)) ** 2)))


def buzz217(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Unseen: a GSM phone next to the cable: 217 Hz pulse bursts, on for 0.5-2 s at a time."""
    t = np.arange(n) / sr
    pulses = (np.sin(2 * np.pi * 217 * t) > 0.7).astype(np.float64)
    pulses = _fft_filter(pulses, sr, lambda f: f / np.sqrt(f**2 + 200.0**2))
    gate = np.zeros(n)
    pos = int(rng.integers(0, max(1, sr // 2)))
    while pos < n:
        length = int(rng.uniform(0.5, 2.0) * sr)
        gate[pos: pos + length] = 1.0
        pos += length + int(rng.uniform(0.3, 1.5) * sr)
    if not gate.any():
        gate[:] = 1.0
    return _unit(pulses * gate)


TRAIN_NOISES: dict[str, Noise] = {"white": white, "pink": pink, "brown": brown, "hum": hum, "crackle": crackle,
                                  "hiss": hiss, "room": room, "crowd": crowd}
UNSEEN_NOISES: dict[str, Noise] = {"blue": blue, "fan": fan, "rain": rain, "buzz217": buzz217}
NOISES: dict[str, Noise] = {**TRAIN_NOISES, **UNSEEN_NOISES}


def make_noise(name: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of the registered noise ``name`` at rate ``sr``, unit RMS."""
    if name not in NOISES:
        raise ParameterError(f"unknown noise {name!r}; registered: {', '.join(NOISES)}")
    return NOISES[name](n, sr, rng)


def add_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``clean`` plus ``noise`` scaled so that 10 log10(P_clean / P_noise) = ``snr_db``."""
    p = float(np.mean(np.square(clean, dtype=np.float64)))
    q = float(np.mean(np.square(noise, dtype=np.float64)))
    scale = math.sqrt(p / max(q, 1e-20) / 10 ** (snr_db / 10)) if p > 0 else 0.0
    return (clean + scale * noise).astype(np.float32)


def hard_clip(y: np.ndarray, fraction: float) -> np.ndarray:
    """Clip at ``fraction`` of the peak (0.2: everything above a fifth of the peak is cut flat)."""
    if not 0 < fraction <= 1:
        raise ParameterError("the clipping level is a fraction of the peak in (0, 1]")
    level = float(np.max(np.abs(y))) * fraction
    return np.clip(y, -level, level).astype(np.float32)


def asymmetric_clip(y: np.ndarray, low: float, high: float) -> np.ndarray:
    """Unseen: positive peaks cut at ``high`` of the peak, negative ones at ``low``."""
    peak = float(np.max(np.abs(y)))
    return np.clip(y, -low * peak, high * peak).astype(np.float32)


def soft_clip(y: np.ndarray, drive_db: float) -> np.ndarray:
    """A tanh saturation ``drive_db`` into the curve, back at the input's peak."""
    peak = max(float(np.max(np.abs(y))), 1e-12)
    g = 10 ** (drive_db / 20) / peak
    return (np.tanh(g * y) / math.tanh(g * peak) * peak).astype(np.float32)
