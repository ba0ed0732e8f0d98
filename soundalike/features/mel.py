"""Log-mel front-end in torch, batched, matching librosa.

``librosa.feature.melspectrogram`` (centre-padded STFT with a periodic Hann
window, power 2, Slaney mel scale and area normalisation) followed by
``librosa.power_to_db(S, ref=np.max, top_db=80)``. The dB reference is the
maximum of each item: of a whole clip in :func:`log_mel`, of each chunk in
:func:`log_mel_chunks`, so every chunk lies in ``[-top_db, 0]`` whatever the
gain of the recording.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any

import numpy as np

from soundalike.errors import ParameterError


@dataclass(frozen=True)
class FrontendConfig:
    """Every setting that turns a waveform into the encoder's input."""

    sample_rate: int = 22050  # Hz; audio is resampled to this on load
    n_fft: int = 2048  # STFT window and FFT size, samples
    hop_length: int = 512  # STFT hop, samples
    n_mels: int = 128  # mel bands
    fmin: float = 0.0  # lowest mel band edge, Hz
    fmax: float | None = None  # highest band edge, Hz (None: sample_rate / 2)
    power: float = 2.0  # |STFT| ** power before the mel matrix
    top_db: float = 80.0  # dynamic range kept below each item's maximum
    amin: float = 1e-10  # floor on power before log10
    chunk_frames: int = 129  # frames per encoder input chunk (128 x 129 ~ 3 s)
    chunk_hop_frames: int = 129  # hop between chunks when embedding a track

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.n_fft <= 0 or self.hop_length <= 0 or self.n_mels <= 0:
            raise ParameterError(f"front-end sizes must be positive: {self}")
        fmax = self.sample_rate / 2 if self.fmax is None else self.fmax
        if not 0 <= self.fmin < fmax <= self.sample_rate / 2:
            raise ParameterError(f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, fmax={fmax}")
        if self.chunk_frames <= 0 or self.chunk_hop_frames <= 0:
            raise ParameterError("chunk_frames and chunk_hop_frames must be positive")
        if self.top_db <= 0 or self.amin <= 0:
            raise ParameterError("top_db and amin must be positive")

    @property
    def chunk_seconds(self) -> float:
        """Audio covered by one chunk, in seconds."""
        return (self.chunk_frames - 1) * self.hop_length / self.sample_rate

    @property
    def chunk_samples(self) -> int:
        """Waveform samples whose centred STFT has exactly ``chunk_frames`` frames."""
        return (self.chunk_frames - 1) * self.hop_length

    def frames_to_seconds(self, frames: int | float) -> float:
        return float(frames) * self.hop_length / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrontendConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ParameterError(f"unknown front-end settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)

    def replace(self, **changes: Any) -> FrontendConfig:
        return FrontendConfig.from_dict({**self.to_dict(), **changes})


# ------------------------------------------------------------------ mel matrix


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's auditory-toolbox mel scale (librosa's default, htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    log_t = f >= min_log_hz
    mels = np.where(log_t, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, mels)
    return mels


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


@lru_cache(maxsize=16)
def mel_filterbank(*, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-normalised triangular mel filters, as ``librosa.filters.mel``.

    Returns np.ndarray [shape=(n_mels, 1 + n_fft // 2), dtype=float32]
    """
    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(np.array(fmin)), _hz_to_mel(np.array(fmax)), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, len(fftfreqs)), dtype=np.float64)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]
    weights.flags.writeable = False
    return weights.astype(np.float32)


# ------------------------------------------------------------------ torch ops


class MelFrontend:
    """Batched power mel spectrogram in torch.

    ``__call__(wave)``: torch.Tensor [shape=(B, n)] or [shape=(n,)] ->
    power mel [shape=(B, n_mels, 1 + n // hop_length)] (float32).
    """

    def __init__(self, config: FrontendConfig) -> None:
        import torch

        self.config = config
        fmax = config.fmax if config.fmax is not None else config.sample_rate / 2
        fb = mel_filterbank(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                            fmin=float(config.fmin), fmax=float(fmax))
        self._fb = torch.from_numpy(np.array(fb))  # (M, F)
        self._window = torch.hann_window(config.n_fft, periodic=True, dtype=torch.float32)

    def __call__(self, wave):
        import torch

        c = self.config
        x = torch.as_tensor(wave, dtype=torch.float32)
        squeeze = x.ndim == 1
        if squeeze:
            x = x[None]
        if x.ndim != 2:
            raise ParameterError(f"expected a waveform of shape (n,) or (B, n), got {tuple(x.shape)}")
        if x.shape[-1] == 0:
            raise ParameterError("cannot compute a spectrogram of an empty waveform")
        spec = torch.stft(x, n_fft=c.n_fft, hop_length=c.hop_length, window=self._window,
                          center=True, pad_mode="constant", return_complex=True)  # (B, F, T)
        if c.power == 2.0:  # |X|^2 without the square root of abs(): a third of the front-end's time
            power = spec.real.square().add_(spec.imag.square())
        else:
            power = spec.abs().pow(c.power)
        mel = torch.matmul(self._fb, power)  # (B, M, T)
        return mel[0] if squeeze else mel


def power_to_db(S, *, amin: float = 1e-10, top_db: float | None = 80.0):
    """dB of a power spectrogram relative to each item's maximum.

    S : torch.Tensor [shape=(..., n_mels, t)]; the maximum is taken over the
    last two axes, so the result lies in ``[-top_db, 0]``.
    """
    import torch

    S = torch.as_tensor(S)
    log_spec = 10.0 * torch.log10(torch.clamp(S, min=amin))
    ref = torch.amax(log_spec, dim=(-2, -1), keepdim=True)
    log_spec = log_spec - ref
    if top_db is not None:
        log_spec = torch.clamp(log_spec, min=-float(top_db))
    return log_spec


def log_mel(wave, config: FrontendConfig, *, frontend: MelFrontend | None = None):
    """Log-mel of whole clips: power mel then dB with ref = each clip's max.

    wave : [shape=(n,) or (B, n)] -> [shape=(n_mels, t) or (B, n_mels, t)], values in [-top_db, 0]
    """
    fe = frontend or MelFrontend(config)
    return power_to_db(fe(wave), amin=config.amin, top_db=config.top_db)


def n_chunks(n_frames: int, *, chunk_frames: int, hop_frames: int) -> int:
    """Chunks that :func:`chunk_frames_view` cuts from ``n_frames`` frames (at least 1)."""
    if n_frames <= chunk_frames:
        return 1
    return 1 + (n_frames - chunk_frames) // hop_frames


def chunk_power(mel_power, *, chunk_frames: int, hop_frames: int):
    """Cut a power mel [shape=(n_mels, t)] into chunks [shape=(n, n_mels, chunk_frames)].

    A clip shorter than one chunk is padded with zero power (silence).
    """
    import torch

    if mel_power.ndim != 2:
        raise ParameterError(f"expected a power mel of shape (n_mels, t), got {tuple(mel_power.shape)}")
    T = mel_power.shape[-1]
    if chunk_frames > T:
        mel_power = torch.nn.functional.pad(mel_power, (0, chunk_frames - T))
    # (M, n, chunk_frames) -> (n, M, chunk_frames)
    return mel_power.unfold(-1, chunk_frames, hop_frames).permute(1, 0, 2).contiguous()


def log_mel_chunks(wave, config: FrontendConfig, *, hop_frames: int | None = None,
                   frontend: MelFrontend | None = None):
    """Log-mel chunks of one waveform, each in dB relative to its own maximum.

    wave : [shape=(n,)] -> torch.Tensor [shape=(n_chunks, n_mels, chunk_frames)]
    """
    fe = frontend or MelFrontend(config)
    power = fe(wave)
    chunks = chunk_power(power, chunk_frames=config.chunk_frames,
                         hop_frames=hop_frames or config.chunk_hop_frames)
    return power_to_db(chunks, amin=config.amin, top_db=config.top_db)


def chunk_windows(path: Any, config: FrontendConfig, *, hop_frames: int, offset: float = 0.0,
                  duration: float | None = None, max_duration: float | None = None) -> Any:
    """Decode ``path`` window by window for chunks every ``hop_frames`` (bounded memory, the chunk grid of a
    whole decode): ``(start sample, audio, own)`` per window, where ``own(n)`` is the slice of the window's
    ``n`` chunks that are its own, or ``own`` is None for a tail too short to hold a chunk (a whole decode has
    none there either). See :func:`soundalike.audio.io.decode_windows`.
    """
    from soundalike.audio.io import decode_windows, window_slice

    step = hop_frames * config.hop_length
    extra = max(0, config.chunk_frames * config.hop_length + config.n_fft // 2 - step)
    for start, lo, hi, audio in decode_windows(path, sr=config.sample_rate, step=step, extra=extra, offset=offset,
                                               duration=duration, max_duration=max_duration):
        if start and len(audio.samples) // config.hop_length + 1 < config.chunk_frames:
            yield start, audio, None
            continue

        def own(n: int, start: int = start, lo: int = lo, hi: int | None = hi) -> slice:
            return window_slice(start, lo, hi, step, n)

        yield start, audio, own
