"""The restoration model: a complex mask over the STFT from a small U-Net, and the clipping projection.

- Front-end (:class:`RestoreFrontend`): 44.1 kHz, a 1024-point STFT with a square-root Hann window and a
  512-sample hop (50 % overlap: the window's square sums to one, so an all-ones mask gives the input back
  exactly); the network reads the loudness-normalised log magnitude.
- Network (:mod:`soundalike.restore.nets`): the mask's magnitude logit and phase turn per bin and frame
  (:func:`apply_mask`: ``|M|`` up to :attr:`RestoreSettings.max_gain`, above one because declipping puts
  back energy that clipping took). A complex mask corrects phase too; keeping the noisy phase with the
  mask's magnitude is :func:`apply_mask`'s ``phase="noisy"`` (the benchmark measures both).
- Several channels share one mask, computed from their mean (a stereo file costs one network pass).
- Declipping (:func:`clipped_samples`, :func:`project_clipped`): samples stuck at a channel's extremes in
  runs are clipped; after the mask, every *other* sample is as the mask made it and each clipped sample is
  at least as far out as the clipping level, on its side (a consistent reconstruction: the output, clipped
  again, is the input). Training applies the same projection, so the network learns what to put there.

A model file is ``NAME.safetensors`` + ``NAME.json`` holding the network config, the front-end and these
settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import ModelError, ParameterError
from soundalike.models.framewise import (
    FramewiseModel,
    chunked_frames,
    load_model_files,
    loudness_gain,
)

FORMAT = "soundalike-restoration"
FORMAT_VERSION = 1

#: Registered restoration networks by name -> the module that defines them.
RESTORE_NETS: dict[str, str] = {"mask_unet": "soundalike.restore.nets"}


@dataclass(frozen=True)
class RestoreFrontend:
    """Every setting that turns a waveform into the restoration network's input and back."""

    sample_rate: int = 44100
    n_fft: int = 1024
    hop_length: int = 512
    compression: float = 10.0  # log(1 + compression * magnitude), after loudness normalisation
    target_rms: float = 0.1  # the waveform is scaled so its loud frames have this RMS ...
    max_gain_db: float = 40.0  # ... by at most this much

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.n_fft <= 0 or self.hop_length * 2 != self.n_fft:
            raise ParameterError(f"the restoration front-end needs a hop of half the FFT size: {self}")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def fps(self) -> float:
        return self.sample_rate / self.hop_length

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RestoreFrontend:
        bad = set(d) - {f.name for f in fields(cls)}
        if bad:
            raise ModelError(f"unknown restoration front-end settings {sorted(bad)}")
        return cls(**d)


@dataclass(frozen=True)
class RestoreSettings:
    """How the mask is applied and clipping found (the model's "decoder")."""

    max_gain: float = 2.0  # |M| is at most this
    clip_run: int = 3  # consecutive samples at a channel's extreme that make a clipped run
    clip_min_fraction: float = 2e-4  # ... and the share of samples in such runs before a channel counts as clipped
    clip_tolerance: float = 1e-4  # a sample within this fraction of the extreme is at it

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RestoreSettings:
        known = {f.name for f in fields(cls)}
        bad = set(d or {}) - known
        if bad:
            raise ModelError(f"unknown restoration settings {sorted(bad)}")
        return cls(**(d or {}))


def sqrt_hann(n: int) -> Any:
    import torch

    return torch.hann_window(n, periodic=True).sqrt()


def stft(y: Any, fe: RestoreFrontend) -> Any:
    """(B, samples) float tensor -> (B, bins, frames) complex, frames = samples // hop + 1."""
    import torch

    return torch.stft(y, n_fft=fe.n_fft, hop_length=fe.hop_length, window=sqrt_hann(fe.n_fft).to(y.device),
                      center=True, return_complex=True)


def istft(spec: Any, fe: RestoreFrontend, length: int) -> Any:
    import torch

    return torch.istft(spec, n_fft=fe.n_fft, hop_length=fe.hop_length, window=sqrt_hann(fe.n_fft).to(spec.device),
                       center=True, length=length)


def network_input(spec: Any, gain: Any, fe: RestoreFrontend) -> Any:
    """The network's input of an STFT: log1p(compression x gain x |X|); ``gain`` (B,) or a float."""
    import torch

    g = gain if not isinstance(gain, torch.Tensor) else gain.reshape(-1, 1, 1)
    return torch.log1p(fe.compression * g * spec.abs())


def apply_mask(spec: Any, raw: Any, *, max_gain: float, strength: float = 1.0, phase: str = "complex") -> Any:
    """``spec`` (B, bins, T) complex times the mask the network's ``raw`` (B, 2, bins, T) stands for:
    magnitude ``max_gain * sigmoid(raw[:, 0] + logit(1 / max_gain))`` (1 at zero, at most ``max_gain``) and
    phase turn ``angle(1 + i raw[:, 1])``; ``strength`` s gives ``1 + s (M - 1)`` (0: the input, 1: the full
    mask); ``phase="noisy"`` keeps the input's phase (the mask's magnitude only)."""
    import math

    import torch

    offset = -math.log(max_gain - 1.0) if max_gain > 1.0 else 0.0  # sigmoid(offset) = 1 / max_gain
    mag = max_gain * torch.sigmoid(raw[:, 0] + offset)
    if phase == "complex":
        turn = torch.complex(torch.ones_like(raw[:, 1]), raw[:, 1])
        m = mag * turn / turn.abs()
    elif phase == "noisy":
        m = mag.to(spec.dtype)
    else:
        raise ParameterError("phase is 'complex' or 'noisy'")
    if strength != 1.0:
        m = 1 + strength * (m - 1)
    return spec * m


@dataclass
class Clipping:
    """Where a channel is clipped: boolean masks of samples stuck at the top and at the bottom, and the
    levels they are stuck at."""

    top: np.ndarray
    bottom: np.ndarray
    high: float
    low: float

    @property
    def fraction(self) -> float:
        return float((np.count_nonzero(self.top) + np.count_nonzero(self.bottom)) / max(1, len(self.top)))


def _runs(mask: np.ndarray, length: int) -> np.ndarray:
    """``mask`` kept only where it is True for at least ``length`` consecutive samples."""
    if length <= 1 or not mask.any():
        return mask
    edges = np.diff(np.concatenate([[0], mask.view(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = np.zeros(len(mask) + 1, np.int32)
    long = ends - starts >= length
    np.add.at(keep, starts[long], 1)
    np.add.at(keep, ends[long], -1)
    return np.cumsum(keep[:-1]) > 0


def clipped_samples(y: np.ndarray, settings: RestoreSettings | None = None) -> Clipping | None:
    """The clipped samples of one channel ``y`` [shape=(n,)]: runs of at least ``clip_run`` samples at its
    maximum (or its minimum), when at least ``clip_min_fraction`` of the samples are in them; else None."""
    s = settings or RestoreSettings()
    y = np.asarray(y, np.float32)
    if len(y) == 0:
        return None
    high, low = float(y.max()), float(y.min())
    if high <= 0 and low >= 0:
        return None
    top = _runs(y >= high - s.clip_tolerance * abs(high), s.clip_run) if high > 0 else np.zeros(len(y), bool)
    bottom = _runs(y <= low + s.clip_tolerance * abs(low), s.clip_run) if low < 0 else np.zeros(len(y), bool)
    c = Clipping(top, bottom, high, low)
    return c if c.fraction >= s.clip_min_fraction else None


def project_clipped(estimate: np.ndarray, clip: Clipping) -> np.ndarray:
    """``estimate`` with each clipped sample pushed out to at least the clipping level on its side."""
    out = np.array(estimate, np.float32, copy=True)
    out[clip.top] = np.maximum(out[clip.top], clip.high)
    out[clip.bottom] = np.minimum(out[clip.bottom], clip.low)
    return out


def build_net(name: str, config: dict[str, Any] | None = None) -> Any:
    """A registered restoration network by name, with ``config`` overriding its defaults."""
    from soundalike.models.framewise import build_registered_net

    return build_registered_net(RESTORE_NETS, name, config, kind="restoration network")


def context_frames(net: Any) -> int:
    """Frames either side a chunk needs so its mask equals a whole pass's: the network's reach in time."""
    c = net.config
    return int(c.floor_frames // 2 + sum(c.time_dilations) + 8)


class RestorationModel(FramewiseModel):
    """A trained restoration network with its front-end and :class:`RestoreSettings`."""

    format, format_version = FORMAT, FORMAT_VERSION

    def __init__(self, net: Any, *, name: str, frontend: RestoreFrontend, settings: RestoreSettings | None = None,
                 metadata: dict[str, Any] | None = None, source: str | None = None, net_name: str = "mask_unet",
                 runtime: str = "onnx") -> None:
        super().__init__(net, name=name, frontend=frontend, decoder=settings or RestoreSettings(), net_name=net_name,
                         metadata=metadata, source=source)
        #: "onnx": the network runs on ONNX Runtime where it can; "torch": always eager (a model being trained)
        self.runtime = runtime
        self._graph: Any = None

    @property
    def settings(self) -> RestoreSettings:
        return self.decoder

    def _onnx(self) -> Any:
        from soundalike.models import runtime

        if self.runtime != "onnx" or not runtime.runtime_wanted():
            return None
        if self._graph is None:
            net = self.net.eval()
            self._graph = runtime.build_graph(net, [net], key_parts=(self.fingerprint, "restoration"),
                                              shape=("batch", self.frontend.n_bins, "frames")) or False
        return self._graph or None

    def mask(self, y: np.ndarray, *, chunk_seconds: float = 30.0,
             progress: Callable[[int], None] | None = None) -> np.ndarray:
        """The network's raw mask [shape=(2, bins, frames)] of a mono waveform at the front-end's rate, in
        chunks with the network's reach of context either side (bounded memory, the same as one pass)."""
        import torch

        fe = self.frontend
        y = np.asarray(y, np.float32)
        g = loudness_gain(y, fe)
        self.net.eval()
        graph = self._onnx()

        def run(seg: np.ndarray) -> np.ndarray:
            x = network_input(stft(torch.from_numpy(seg)[None], fe), g, fe)
            return graph(x.numpy())[0][0] if graph is not None else self.net(x)[0].numpy()

        with torch.inference_mode():
            return chunked_frames(y, run, hop=fe.hop_length, shape=(2, fe.n_bins),
                                  chunk_frames=int(chunk_seconds * fe.fps), context_frames=context_frames(self.net),
                                  min_samples=fe.n_fft, progress=progress)

    def estimate(self, channels: np.ndarray, *, phase: str = "complex",
                 progress: Callable[[int], None] | None = None) -> np.ndarray:
        """The clean estimate of ``channels`` [shape=(C, n)] at the front-end's rate: one mask from their
        mean, applied to each."""
        import torch

        fe = self.frontend
        x = np.asarray(channels, np.float32)
        raw = self.mask(x.mean(axis=0), progress=progress)
        with torch.inference_mode():
            spec = stft(torch.from_numpy(x), fe)
            masked = apply_mask(spec, torch.from_numpy(raw)[None], max_gain=self.settings.max_gain, phase=phase)
            return np.asarray(istft(masked, fe, x.shape[1]).numpy(), np.float32)


def load_restoration_model(path: str | Path) -> RestorationModel:
    """Load ``NAME.safetensors`` + ``NAME.json`` (eval mode)."""
    stem, desc, net_name, net = load_model_files(path, fmt=FORMAT, version=FORMAT_VERSION, kind="restoration model",
                                                 nets=RESTORE_NETS, default_net="mask_unet")
    return RestorationModel(net, name=str(desc.get("name", stem.name)),
                            frontend=RestoreFrontend.from_dict(desc["frontend"]),
                            settings=RestoreSettings.from_dict(desc.get("decoder")), metadata=desc.get("metadata"),
                            source=str(stem), net_name=net_name)
