"""Augmentations on mel spectrogram chunks, cheap enough to run on every training sample.

They work on *power* mels (noise adds in power) or on referenced dB chunks
[shape=(n_mels, frames)] (masking).
"""

from __future__ import annotations

import numpy as np

from soundalike.errors import ParameterError


def frame_power(y: np.ndarray, hop: int, n_frames: int, win: int) -> np.ndarray:
    """Mean square of the waveform around each STFT frame centre (``center=True`` framing).

    Returns float32 [shape=(n_frames,)]; with the mel power of unit-variance noise
    it turns a waveform SNR into a power-mel mixing gain.
    """
    y = np.asarray(y, dtype=np.float64)
    sq = np.concatenate([[0.0], np.cumsum(y * y)])
    centres = np.arange(n_frames) * hop
    lo = np.clip(centres - win // 2, 0, len(y))
    hi = np.clip(centres + win // 2, 0, len(y))
    width = np.maximum(hi - lo, 1)
    return ((sq[hi] - sq[lo]) / width).astype(np.float32)


def mix_noise_power(power: np.ndarray, signal_power: float, noise_power: np.ndarray, snr_db: float) -> np.ndarray:
    """Power mel of signal + noise at ``snr_db``.

    power : signal mel power [shape=(n_mels, t)]; signal_power : its waveform mean square;
    noise_power : mel power of *unit-variance* noise, same shape.
    Cross terms average to zero, so powers add.
    """
    if power.shape != noise_power.shape:
        raise ParameterError(f"signal {power.shape} and noise {noise_power.shape} mels differ in shape")
    scale = max(float(signal_power), 1e-12) / 10.0 ** (snr_db / 10.0)
    return power + noise_power * np.float32(scale)


def _mask(x: np.ndarray, rng: np.random.Generator, max_width: int, n_masks: int, fill: float | None,
          axis: int) -> np.ndarray:
    """Set ``n_masks`` random spans of up to ``max_width`` along ``axis`` to ``fill`` (default: the minimum)."""
    out = np.array(x, dtype=np.float32, copy=True)
    size = out.shape[axis]
    v = float(out.min()) if fill is None else fill
    view = np.moveaxis(out, axis, -1)  # a view: writes land in ``out``
    for _ in range(n_masks):
        w = int(rng.integers(0, max(1, min(max_width, size)) + 1))
        if w == 0:
            continue
        s = int(rng.integers(0, size - w + 1))
        view[..., s : s + w] = v
    return out


def time_mask(x: np.ndarray, rng: np.random.Generator, max_frames: int, n_masks: int = 1,
              fill: float | None = None) -> np.ndarray:
    """Set ``n_masks`` random spans of up to ``max_frames`` frames to ``fill`` (default: the chunk minimum)."""
    return _mask(x, rng, max_frames, n_masks, fill, axis=-1)


def freq_mask(x: np.ndarray, rng: np.random.Generator, max_bins: int, n_masks: int = 1,
              fill: float | None = None) -> np.ndarray:
    """Set ``n_masks`` random bands of up to ``max_bins`` mel bins to ``fill`` (default: the chunk minimum)."""
    return _mask(x, rng, max_bins, n_masks, fill, axis=-2)
