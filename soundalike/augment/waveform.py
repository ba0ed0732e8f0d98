"""Waveform augmentations: what happens to a recording between the catalog and a query.

Every function takes a mono float32 waveform and returns a new one; random
ones take a ``numpy.random.Generator`` so a seed reproduces them. Lengths are
kept except by :func:`time_stretch` (``len / rate``).
"""

from __future__ import annotations

import math

import numpy as np

from soundalike.errors import ParameterError


def _f32(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ParameterError(f"expected a mono waveform of shape (n,), got {y.shape}")
    return y


def gain(y: np.ndarray, db: float) -> np.ndarray:
    """Scale by ``db`` decibels (amplitude x 10^(db/20))."""
    return (_f32(y) * np.float32(10.0 ** (db / 20.0))).astype(np.float32)


def colored_noise(n: int, rng: np.random.Generator, color: str = "white") -> np.ndarray:
    """Unit-variance noise: ``white`` (flat spectrum), ``pink`` (power ~ 1/f) or ``brown`` (power ~ 1/f^2)."""
    if n <= 0:
        return np.zeros(0, np.float32)
    w = rng.standard_normal(n)
    if color == "white":
        x = w
    elif color in ("pink", "brown"):
        spec = np.fft.rfft(w)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        x = np.fft.irfft(spec / (np.sqrt(f) if color == "pink" else f), n)
    else:
        raise ParameterError(f"unknown noise color {color!r}; use 'white', 'pink' or 'brown'")
    x = x - x.mean()
    return (x / max(float(x.std()), 1e-12)).astype(np.float32)


def add_noise(y: np.ndarray, snr_db: float, rng: np.random.Generator, color: str = "white") -> np.ndarray:
    """Add noise so that 10*log10(P_signal / P_noise) = ``snr_db`` over the whole waveform."""
    y = _f32(y)
    p = float(np.mean(y.astype(np.float64) ** 2))
    if p <= 0:
        return y.copy()
    noise = colored_noise(len(y), rng, color) * np.float32(math.sqrt(p / 10.0 ** (snr_db / 10.0)))
    return (y + noise).astype(np.float32)


def eq_curve(freqs: np.ndarray, bands: list[tuple[float, float, float]], *, lowpass: float | None = None,
             highpass: float | None = None) -> np.ndarray:
    """Gain in dB at ``freqs`` of peaking bands ``(centre Hz, gain dB, width octaves)`` plus
    optional 12 dB/octave low-/high-pass corners."""
    f = np.maximum(np.asarray(freqs, dtype=np.float64), 1.0)
    g = np.zeros_like(f)
    for fc, gdb, width in bands:
        d = np.log2(f / fc) / max(width, 1e-3)
        g += gdb * np.exp(-0.5 * d * d)
    if lowpass is not None:
        g += -12.0 * np.maximum(0.0, np.log2(f / lowpass))
    if highpass is not None:
        g += -12.0 * np.maximum(0.0, np.log2(highpass / f))
    return np.maximum(g, -60.0)


def apply_eq(y: np.ndarray, sr: int, gain_db: np.ndarray | None = None, **curve: object) -> np.ndarray:
    """Filter ``y`` in the frequency domain by a gain curve (see :func:`eq_curve`)."""
    y = _f32(y)
    spec = np.fft.rfft(y.astype(np.float64))
    freqs = np.fft.rfftfreq(len(y), 1.0 / sr)
    g = gain_db if gain_db is not None else eq_curve(freqs, **curve)  # type: ignore[arg-type]
    return np.fft.irfft(spec * 10.0 ** (g / 20.0), len(y)).astype(np.float32)


def random_eq(y: np.ndarray, sr: int, rng: np.random.Generator, *, max_db: float = 12.0, n_bands: int = 3,
              filter_p: float = 0.5) -> np.ndarray:
    """Random peaking bands of +-``max_db`` and, with probability ``filter_p``, a low- or high-pass
    (a phone, a small speaker, a radio)."""
    nyq = sr / 2
    bands = [(float(np.exp(rng.uniform(np.log(60.0), np.log(0.8 * nyq)))), float(rng.uniform(-max_db, max_db)),
              float(rng.uniform(0.3, 2.0))) for _ in range(n_bands)]
    lowpass = highpass = None
    if rng.random() < filter_p:
        if rng.random() < 0.5:
            lowpass = float(rng.uniform(2000.0, min(8000.0, 0.9 * nyq)))
        else:
            highpass = float(rng.uniform(80.0, 500.0))
    return apply_eq(y, sr, bands=bands, lowpass=lowpass, highpass=highpass)


def time_stretch(y: np.ndarray, rate: float, *, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """Phase-vocoder time stretch: ``rate`` > 1 is faster (shorter), pitch unchanged.

    Returns ``round(len(y) / rate)`` samples.
    """
    import torch

    y = _f32(y)
    if rate <= 0:
        raise ParameterError("rate must be positive")
    n_out = int(round(len(y) / rate))
    if abs(rate - 1.0) < 1e-9 or len(y) < n_fft:
        return y.copy() if abs(rate - 1.0) < 1e-9 else _resample_len(y, n_out)
    window = torch.hann_window(n_fft)
    with torch.inference_mode():
        X = torch.stft(torch.from_numpy(y), n_fft, hop, window=window, center=True, pad_mode="constant",
                       return_complex=True)  # (F, T)
        steps = torch.arange(0, X.shape[1], rate, dtype=torch.float64).float()
        Xp = torch.nn.functional.pad(X, (0, 2))
        mag = Xp.abs()
        phase = torch.angle(Xp)
        i0 = steps.floor().long()
        frac = (steps - i0).unsqueeze(0)
        m = (1 - frac) * mag[:, i0] + frac * mag[:, i0 + 1]
        dphi = phase[:, i0 + 1] - phase[:, i0]
        omega = torch.linspace(0, math.pi * hop, X.shape[0]).unsqueeze(1)
        dphi = dphi - omega
        dphi = dphi - 2 * math.pi * torch.round(dphi / (2 * math.pi))
        # increments wrapped to [0, 2 pi): the running sum stays small enough for float32
        acc = torch.cumsum(torch.remainder(omega + dphi, 2 * math.pi), dim=1)
        acc = torch.cat([phase[:, :1], phase[:, :1] + acc[:, :-1]], dim=1)
        Y = torch.polar(m, acc)
        out = torch.istft(Y, n_fft, hop, window=window, center=True, length=n_out)
    return out.numpy().astype(np.float32)


def _resample_len(y: np.ndarray, n_out: int) -> np.ndarray:
    if n_out <= 0:
        return np.zeros(0, np.float32)
    x = np.linspace(0, len(y) - 1, n_out)
    return np.interp(x, np.arange(len(y)), y).astype(np.float32)


def pitch_shift(y: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """Shift pitch by ``semitones`` keeping the duration: time-stretch, then resample."""
    import soxr

    y = _f32(y)
    if abs(semitones) < 1e-9:
        return y.copy()
    ratio = 2.0 ** (semitones / 12.0)
    stretched = time_stretch(y, 1.0 / ratio)
    # playing `stretched` ratio-times faster raises every frequency by `ratio`
    out = np.asarray(soxr.resample(stretched, sr * ratio, sr, quality="HQ"), dtype=np.float32)
    if len(out) >= len(y):
        return out[: len(y)]
    return np.concatenate([out, np.zeros(len(y) - len(out), np.float32)])


def speed_change(y: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Play ``factor`` times faster, as a turntable or a resampling radio chain would: pitch and
    tempo both move (``factor`` 1.03 is 3% faster and about half a semitone higher).

    Returns ``round(len(y) / factor)`` samples.
    """
    import soxr

    y = _f32(y)
    if factor <= 0:
        raise ParameterError("speed factor must be positive")
    if abs(factor - 1.0) < 1e-9:
        return y.copy()
    n_out = int(round(len(y) / factor))
    out = np.asarray(soxr.resample(y, sr * factor, sr, quality="HQ"), dtype=np.float32)
    if len(out) >= n_out:
        return out[:n_out]
    return np.concatenate([out, np.zeros(n_out - len(out), np.float32)])


def impulse_response(sr: int, rng: np.random.Generator, rt60: float, *, predelay: float = 0.01) -> np.ndarray:
    """A synthetic room: a direct impulse, then exponentially decaying noise reaching -60 dB at ``rt60`` s."""
    n = max(1, int(round(rt60 * sr)))
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.907755 * t / rt60)  # ln(1000) = 6.9078: -60 dB at rt60
    d = int(round(predelay * sr))
    ir = np.zeros(n + d)
    ir[0] = 1.0
    ir[d:] += 0.3 * tail / max(float(np.sqrt(np.sum(tail**2))), 1e-12)
    return ir.astype(np.float32)


def reverb(y: np.ndarray, sr: int, rng: np.random.Generator, *, rt60: float = 0.6, wet: float = 0.3) -> np.ndarray:
    """Convolve with :func:`impulse_response` and mix ``wet`` of it in; the RMS is kept."""
    y = _f32(y)
    if len(y) == 0:
        return y.copy()
    ir = impulse_response(sr, rng, rt60)
    n = len(y) + len(ir) - 1
    nfft = 1 << (n - 1).bit_length()
    wet_sig = np.fft.irfft(np.fft.rfft(y, nfft) * np.fft.rfft(ir, nfft), nfft)[: len(y)]
    out = (1 - wet) * y + wet * wet_sig
    rms_in = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    rms_out = float(np.sqrt(np.mean(out**2)))
    if rms_out > 0:
        out *= rms_in / rms_out
    return out.astype(np.float32)


def codec(y: np.ndarray, sr: int, *, bitrate_kbps: float = 64, fmt: str = ".mp3") -> np.ndarray:
    """Lossy re-encoding round trip (MP3 by default) at ``bitrate_kbps``; same length, time-aligned."""
    from soundalike.audio.io import codec_roundtrip

    return codec_roundtrip(_f32(y), sr, fmt, bitrate=int(bitrate_kbps * 1000))
