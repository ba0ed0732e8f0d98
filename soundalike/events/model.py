"""The events network: a multi-resolution mel front-end, a small CNN over frequency and a dilated
temporal convolution network (TCN) over time, with one frame-wise output per event kind.

Outputs (sigmoid, 100 frames per second): ``onset``, ``beat``, ``downbeat``, ``kick``, ``snare``,
``hihat``. Onsets and drum hits need a few frames of context (Schlüter & Böck's onset CNN); beats need
seconds (Böck, Davies & Knees' multi-task TCN): the TCN's dilations reach about 10 s either side.

A model file is ``NAME.safetensors`` plus ``NAME.json`` holding the network config, the front-end and
the decoder settings (peak thresholds per output, the tempo range), so inference needs nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
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

FORMAT = "soundalike-events"
FORMAT_VERSION = 1
OUTPUTS: tuple[str, ...] = ("onset", "beat", "downbeat", "kick", "snare", "hihat")


@dataclass(frozen=True)
class EventsFrontend:
    """Every setting that turns a waveform into the events network's input."""

    sample_rate: int = 16000  # Hz; audio is resampled to this
    hop_length: int = 160  # samples: 100 frames per second
    n_ffts: tuple[int, ...] = (512, 1024, 2048)  # one input channel per STFT size (32, 64, 128 ms)
    n_mels: int = 80  # mel bands per channel
    fmin: float = 30.0
    fmax: float = 8000.0
    compression: float = 10.0  # log(1 + compression * mel magnitude), after loudness normalisation
    target_rms: float = 0.1  # the waveform is scaled so its loud frames have this RMS ...
    max_gain_db: float = 40.0  # ... by at most this much (hiss is not lifted to music's level)

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.hop_length <= 0 or not self.n_ffts or self.n_mels <= 0:
            raise ParameterError(f"events front-end sizes must be positive: {self}")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ParameterError(f"need 0 <= fmin < fmax <= sample_rate/2, got {self.fmin}, {self.fmax}")

    @property
    def fps(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop_length

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["n_ffts"] = list(self.n_ffts)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EventsFrontend:
        known = {f.name for f in fields(cls)}
        bad = set(d) - known
        if bad:
            raise ModelError(f"unknown events front-end settings {sorted(bad)}")
        d = dict(d)
        if "n_ffts" in d:
            d["n_ffts"] = tuple(int(n) for n in d["n_ffts"])
        return cls(**d)


class EventsFeatures:
    """Batched multi-resolution log-mel features in torch: (B, samples) -> (B, C, n_mels, frames)."""

    def __init__(self, frontend: EventsFrontend) -> None:
        import torch

        from soundalike.features.mel import mel_filterbank

        self.frontend = frontend
        self.windows = {n: torch.hann_window(n) for n in frontend.n_ffts}
        self.mels = {n: torch.from_numpy(mel_filterbank(sr=frontend.sample_rate, n_fft=n, n_mels=frontend.n_mels,
                                                        fmin=frontend.fmin, fmax=frontend.fmax)).float()
                     for n in frontend.n_ffts}

    def __call__(self, wave: Any) -> Any:
        import torch

        fe = self.frontend
        outs = []
        for n in fe.n_ffts:
            spec = torch.stft(wave, n_fft=n, hop_length=fe.hop_length, window=self.windows[n], center=True,
                              return_complex=True).abs()  # (B, n // 2 + 1, T)
            mel = torch.matmul(self.mels[n] * (2.0 / n), spec)  # magnitude, independent of the FFT size
            outs.append(torch.log1p(fe.compression * mel))
        return torch.stack(outs, dim=1)  # (B, C, n_mels, T)


def _require_torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a dependency
        raise ModelError("the events model needs torch") from exc
    return torch


#: Registered events networks by name -> the module that defines them (building one imports torch).
EVENTS_NETS: dict[str, str] = {"events_tcn": "soundalike.events.nets"}


def build_net(name: str, config: dict[str, Any] | None = None) -> Any:
    """A registered events network by name, with ``config`` overriding its defaults."""
    from soundalike.models.framewise import build_registered_net

    return build_registered_net(EVENTS_NETS, name, config, kind="events network")


@dataclass
class DecoderSettings:
    """How activations become events; stored with the model (thresholds chosen on validation renders)."""

    thresholds: dict[str, float] = field(default_factory=lambda: {k: 0.5 for k in OUTPUTS})
    min_bpm: float = 50.0
    max_bpm: float = 220.0
    tempo_change: float = 60.0  # the beat decoder's lambda: higher, steadier tempo
    combine_seconds: float = 0.03  # peaks closer than this are one event
    min_pulse: float = 0.2  # below this pulse clarity no beats are reported (noise, free time, ambience)
    beat_fraction: float = 1 / 16  # the share of a beat interval the beat decoder's "beat" states cover
    beat_odds_scale: float = 1.0  # the beat activation's odds are divided by this before decoding (training's
    # positive weight inflates them; off-beats would otherwise pull the decoder to double tempo)
    prior_octaves: float = 0.0  # > 0: a log-normal tempo prior around 120 BPM, this wide in octaves

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> DecoderSettings:
        d = dict(d or {})
        base = cls()
        th = {**base.thresholds, **{str(k): float(v) for k, v in (d.pop("thresholds", None) or {}).items()}}
        known = {f.name for f in fields(cls)} - {"thresholds"}
        return cls(thresholds=th, **{k: float(v) for k, v in d.items() if k in known})


class EventsModel(FramewiseModel):
    """A trained events network with its front-end and decoder settings."""

    format, format_version = FORMAT, FORMAT_VERSION

    def __init__(self, net: Any, *, name: str, frontend: EventsFrontend, decoder: DecoderSettings | None = None,
                 metadata: dict[str, Any] | None = None, source: str | None = None) -> None:
        super().__init__(net, name=name, frontend=frontend, decoder=decoder or DecoderSettings(),
                         net_name="events_tcn", metadata=metadata, source=source)
        self._features: EventsFeatures | None = None

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(self.net.config.outputs)

    @property
    def features(self) -> EventsFeatures:
        if self._features is None:
            self._features = EventsFeatures(self.frontend)
        return self._features

    def activations(self, y: np.ndarray, *, chunk_seconds: float = 60.0,
                    progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Frame-wise activations [shape=(len(outputs), frames)] of a mono waveform at the front-end's
        rate, computed in overlapping chunks (each keeps 10 s of context either side), so memory stays
        bounded whatever the length; ``progress(samples)`` after each chunk."""
        torch = _require_torch()
        fe = self.frontend
        y = np.asarray(y, np.float32) * np.float32(loudness_gain(y, fe))
        self.net.eval()

        def run(seg: np.ndarray) -> np.ndarray:
            return torch.sigmoid(self.net(self.features(torch.from_numpy(seg)[None])))[0].numpy()

        with torch.inference_mode():
            return chunked_frames(y, run, hop=fe.hop_length, shape=(len(self.outputs),),
                                  chunk_frames=int(chunk_seconds * fe.fps), context_frames=int(10 * fe.fps),
                                  min_samples=max(fe.n_ffts), progress=progress)


def load_events_model(path: str | Path) -> EventsModel:
    """Load ``NAME.safetensors`` + ``NAME.json`` (eval mode)."""
    stem, desc, _, net = load_model_files(path, fmt=FORMAT, version=FORMAT_VERSION, kind="events model",
                                          nets=EVENTS_NETS, default_net="events_tcn")
    return EventsModel(net, name=str(desc.get("name", stem.name)), frontend=EventsFrontend.from_dict(desc["frontend"]),
                       decoder=DecoderSettings.from_dict(desc.get("decoder")), metadata=desc.get("metadata"),
                       source=str(stem))


def n_parameters(net: Any) -> int:
    return int(sum(math.prod(p.shape) for p in net.parameters()))
