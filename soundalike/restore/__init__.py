""""Clean it up": learnt restoration of noisy and clipped recordings.

::

    import soundalike
    clean = soundalike.restore(y, sr)            # this package is callable: restore_waveform
    clean = soundalike.restore(y, sr, declip=False, strength=0.7)
    from soundalike.tasks.restore import restore_file
    restore_file("tape.flac", "tape-clean.flac")  # streams a long file, keeps its format and rate

One network (:mod:`soundalike.restore.model`: a small U-Net over the STFT that predicts a complex mask)
takes out noise (hiss, hum, crackle, crowd, ...), and the declipping projection refills samples that
clipping cut flat. The shipped model was trained on real game music with generated noises and clipping
(:mod:`soundalike.restore.noises`, :mod:`soundalike.restore.train`); see ``model_cards/restore_unet-music.md``.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from soundalike.restore.model import RestorationModel

#: The shipped restoration model (weights + JSON inside the package).
SHIPPED_RESTORE_MODEL = Path(__file__).resolve().parent.parent / "models" / "weights" / "restore" / "restore_unet-music"

_MODELS: dict[str, Any] = {}


def load_restoration_model(path: str | Path | None = None) -> RestorationModel:
    """The restoration model at ``path`` (``NAME.safetensors`` + ``NAME.json``), or the shipped one
    (``None`` or ``"default"``); loaded once per process."""
    from soundalike.models.framewise import load_cached
    from soundalike.restore.model import load_restoration_model as _load

    return load_cached(_MODELS, path, SHIPPED_RESTORE_MODEL, _load)


def restoration_model(model: RestorationModel | str | Path | None = None) -> RestorationModel:
    """``model`` itself when it is a loaded model, else :func:`load_restoration_model` of it."""
    return model if model is not None and not isinstance(model, (str, Path)) else load_restoration_model(model)


def restore_waveform(y: Any, sr: int, *, denoise: bool = True, declip: bool = True, strength: float = 1.0,
                     model: RestorationModel | str | Path | None = None, phase: str = "complex",
                     progress: Callable[[float], None] | None = None) -> np.ndarray:
    """The restored waveform of ``y`` (mono ``(samples,)`` or ``(channels, samples)``) at rate ``sr``: the
    same shape and rate.

    ``denoise``: the model's mask takes noise out (all channels share one mask, from their mean).
    ``declip``: in a channel with clipped runs (samples stuck at its extremes), those samples are refilled
    from the model's estimate, at least as far out as the clipping level; with ``declip`` alone, no other
    sample changes. ``strength`` in [0, 1] blends from the input (0) to the full restoration (1).
    ``progress(seconds)`` is called as the network's chunks are done.
    """
    from soundalike.audio.io import channels_first, resample
    from soundalike.errors import ParameterError
    from soundalike.restore.model import clipped_samples, project_clipped

    if not denoise and not declip:
        raise ParameterError("nothing to do: ask for denoise, declip or both")
    if not 0.0 <= float(strength) <= 1.0:
        raise ParameterError(f"strength is between 0 and 1, got {strength}")
    if not isinstance(sr, int) or sr <= 0:
        raise ParameterError(f"sr must be a positive integer, got {sr!r}")
    x, mono = channels_first(y), np.ndim(y) == 1
    n = x.shape[1]
    if n == 0 or float(np.max(np.abs(x))) == 0.0:
        return np.array(y, np.float32, copy=True)
    m = restoration_model(model)
    rate = m.frontend.sample_rate
    xm = np.stack([resample(c, orig_sr=sr, target_sr=rate) for c in x])
    step = (lambda k: progress(k / rate)) if progress is not None else None
    est = m.estimate(xm, phase=phase, progress=step)
    if sr != rate:
        est = np.stack([_fit(resample(c, orig_sr=rate, target_sr=sr), n) for c in est])
    out = np.empty_like(x)
    for c in range(len(x)):
        clip = clipped_samples(x[c], m.settings) if declip else None
        full = project_clipped(est[c], clip) if clip is not None else est[c]
        if denoise:
            out[c] = x[c] + np.float32(strength) * (full - x[c])
        else:  # declip only: the clipped samples from the estimate, every other sample as it was
            out[c] = x[c]
            if clip is not None:
                where = clip.top | clip.bottom
                out[c][where] = x[c][where] + np.float32(strength) * (full[where] - x[c][where])
    return out[0] if mono else out


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


class _CallableModule(types.ModuleType):
    """``soundalike.restore(y, sr, ...)``: :func:`restore_waveform`, while ``soundalike.restore`` stays the
    package."""

    def __call__(self, y: Any, sr: int, **kwargs: Any) -> np.ndarray:
        return restore_waveform(y, sr, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["SHIPPED_RESTORE_MODEL", "load_restoration_model", "restoration_model", "restore_waveform"]
