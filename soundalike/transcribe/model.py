"""The transcription network's input and the model around it.

Input: a log-frequency spectrogram with two bands per semitone from A0 to the Nyquist frequency, each
band read from the shorter of two STFTs (64 and 256 ms) that resolves it (a constant-Q transform's
resolution at an STFT's price), then *harmonically stacked* (Bittner et al., Basic Pitch, 2022): channel
``h`` at a pitch's band holds the band of the pitch's ``h``-th harmonic, so one small convolution sees a
note's whole harmonic series. Frames: 50 per second.

Outputs per piano key (MIDI 21-108), per frame (Hawthorne et al., Onsets and Frames, 2018): ``onset``,
``frame`` (the note sounds), ``offset`` (sigmoids) and ``velocity`` (0-1, read at onsets).

A model file is ``NAME.safetensors`` + ``NAME.json`` holding the network config, the front-end and the
decoder settings (thresholds chosen on validation renders), so inference needs nothing else.
"""

from __future__ import annotations

import math
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
from soundalike.transcribe.notes import MAX_PITCH, MIN_PITCH

FORMAT = "soundalike-transcription"
FORMAT_VERSION = 1
HEADS: tuple[str, ...] = ("onset", "frame", "offset", "velocity")
N_PITCHES = MAX_PITCH - MIN_PITCH + 1


@dataclass(frozen=True)
class NotesFrontend:
    """Every setting that turns a waveform into the transcription network's input."""

    sample_rate: int = 16000
    hop_length: int = 320  # 50 frames per second
    n_ffts: tuple[int, ...] = (1024, 4096)  # each band uses the shorter that resolves it
    bins_per_semitone: int = 2
    harmonics: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    compression: float = 10.0  # log(1 + compression * magnitude), after loudness normalisation
    target_rms: float = 0.1  # the waveform is scaled so its loud frames have this RMS ...
    max_gain_db: float = 40.0  # ... by at most this much

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.hop_length <= 0 or not self.n_ffts or self.bins_per_semitone < 1:
            raise ParameterError(f"transcription front-end sizes must be positive: {self}")
        if not self.harmonics or min(self.harmonics) <= 0:
            raise ParameterError("harmonics must be positive")

    @property
    def fps(self) -> float:
        return self.sample_rate / self.hop_length

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["n_ffts"], d["harmonics"] = list(self.n_ffts), list(self.harmonics)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NotesFrontend:
        bad = set(d) - {f.name for f in fields(cls)}
        if bad:
            raise ModelError(f"unknown transcription front-end settings {sorted(bad)}")
        d = dict(d)
        for k in ("n_ffts", "harmonics"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


def band_pitches(fe: NotesFrontend) -> np.ndarray:
    """Fractional MIDI pitch of every spectrogram band: from MIN_PITCH up to the Nyquist frequency."""
    top = 69 + 12 * math.log2(fe.sample_rate / 2 / 440.0)
    n = int(math.floor((top - MIN_PITCH) * fe.bins_per_semitone)) + 1
    return MIN_PITCH + np.arange(n) / fe.bins_per_semitone


def logfreq_filters(fe: NotesFrontend) -> dict[int, np.ndarray]:
    """Per STFT size, its rows of the log-frequency filterbank [shape=(bands, n_fft // 2 + 1)]: a band reads
    the shortest STFT whose bins are at most half its width apart (else the longest); a triangle one band
    wide either side (at least one FFT bin), rows summing to 1."""
    pitches = band_pitches(fe)
    centers = 440.0 * 2 ** ((pitches - 69) / 12)
    half = centers * (2 ** (1 / (12 * fe.bins_per_semitone)) - 1)  # distance to the next band
    sizes = sorted(fe.n_ffts)
    choice = np.full(len(pitches), sizes[-1])
    for n in reversed(sizes):
        choice[fe.sample_rate / n <= half] = n
    out = {}
    for n in sizes:
        freqs = np.arange(n // 2 + 1) * fe.sample_rate / n
        width = np.maximum(half, fe.sample_rate / n)[:, None]
        w = np.clip(1 - np.abs(freqs[None, :] - centers[:, None]) / width, 0, None)
        w[choice != n] = 0
        w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        out[n] = w.astype(np.float32)
    return out


def _lowpass(factor: int, taps_per_factor: int = 16) -> np.ndarray:
    """A Kaiser-windowed sinc anti-aliasing filter for decimating by ``factor`` (odd length, unit DC gain)."""
    n = taps_per_factor * factor + 1
    t = np.arange(n) - n // 2
    h = np.sinc(t / factor * 0.9) * np.kaiser(n, 8.0)
    return (h / h.sum()).astype(np.float32)


class NotesFeatures:
    """Batched log-frequency spectrograms in torch: (B, samples) -> (B, spectrogram bands, frames) (the
    network stacks them by harmonic: :func:`net_config`)."""

    def __init__(self, frontend: NotesFrontend) -> None:
        import torch

        self.frontend = frontend
        # STFTs longer than the shortest are taken at the shortest's size of a decimated waveform (same bins)
        self.base = min(frontend.n_ffts)
        if any(n % self.base or (n // self.base) & (n // self.base - 1) or frontend.hop_length % (n // self.base)
               for n in frontend.n_ffts):
            raise ParameterError("each STFT size must be the shortest times a power of two dividing the hop")
        self.windows = {n: torch.hann_window(self.base) for n in frontend.n_ffts}
        self.lowpass = {}  # per factor d, the filter in polyphase form: (1, d, taps // d), phase r = taps r::d
        for n in frontend.n_ffts:
            d = n // self.base
            if d > 1:
                h = _lowpass(d)
                q = -(-len(h) // d)
                h = np.pad(h, (0, q * d - len(h)))
                self.lowpass[d] = torch.from_numpy(np.ascontiguousarray(h.reshape(q, d).T))[None]
        # per STFT size: the bands it feeds (a slice of rows) and the FFT bins they read (a slice of columns)
        self.filters: dict[int, tuple[slice, slice, Any]] = {}
        for n, w in logfreq_filters(frontend).items():
            rows, cols = np.flatnonzero(w.any(axis=1)), np.flatnonzero(w.any(axis=0))
            if len(rows):
                r, c = slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)
                self.filters[n] = (r, c, torch.from_numpy(np.ascontiguousarray(w[r, c] * (2.0 / self.base))))
        self.n_spec_bands = len(band_pitches(frontend))
        # the STFTs' bands follow each other, lowest first: their outputs are concatenated in this order
        self.filters = dict(sorted(self.filters.items(), key=lambda item: item[1][0].start))
        spans = [(r.start, r.stop) for r, _, _ in self.filters.values()]
        gaps = any(a[1] != b[0] for a, b in zip(spans[:-1], spans[1:], strict=True))
        if spans[0][0] != 0 or spans[-1][1] != self.n_spec_bands or gaps:
            raise ParameterError(f"the STFT sizes {frontend.n_ffts} leave bands of the spectrogram unread")

    def _decimate(self, wave: Any, d: int) -> Any:
        """Low-pass ``wave`` (B, samples) and keep every ``d``-th sample (polyphase: one short stride-1
        convolution over the d phases), centred: output sample m is at input sample m * d."""
        import torch

        k = self.lowpass[d]
        q = k.shape[-1]
        n_out = -(-wave.shape[-1] // d)
        left = (d * 16 + 1) // 2  # half the filter: zero phase
        right = (n_out - 1 + q) * d - wave.shape[-1] - left
        x = torch.nn.functional.pad(wave, (left, max(0, right)))[:, : (n_out - 1 + q) * d]
        phases = x.reshape(x.shape[0], -1, d).transpose(1, 2)  # (B, d, n_out - 1 + q)
        return torch.nn.functional.conv1d(phases, k)[:, 0]

    def __call__(self, wave: Any) -> Any:
        import torch

        fe = self.frontend
        parts = []
        for n, (_, cols, w) in self.filters.items():
            d = n // self.base  # a long STFT reads low bands only: take it of the waveform decimated d times
            x = wave if d == 1 else self._decimate(wave, d)
            stft = torch.stft(x, n_fft=n // d, hop_length=fe.hop_length // d, window=self.windows[n], center=True,
                              return_complex=True)
            parts.append(torch.matmul(w, stft[:, cols].abs()))
        return torch.log1p(fe.compression * torch.cat(parts, dim=1))  # the filters' bands follow each other


def harmonic_shifts(fe: NotesFrontend) -> tuple[int, ...]:
    """Each harmonic's offset in spectrogram bands: round(12 x bins per semitone x log2 h)."""
    return tuple(int(round(12 * fe.bins_per_semitone * math.log2(h))) for h in fe.harmonics)


def net_config(fe: NotesFrontend) -> dict[str, Any]:
    """The network settings a front-end fixes: the harmonic stacking's shifts and sizes."""
    return {"harmonic_shifts": list(harmonic_shifts(fe)), "spectrogram_bands": len(band_pitches(fe)),
            "bins_per_semitone": fe.bins_per_semitone}


#: Registered transcription networks by name -> the module that defines them.
NOTES_NETS: dict[str, str] = {"notes_hcnn": "soundalike.transcribe.nets"}


def build_net(name: str, config: dict[str, Any] | None = None) -> Any:
    """A registered transcription network by name, with ``config`` overriding its defaults."""
    from soundalike.models.framewise import build_registered_net

    return build_registered_net(NOTES_NETS, name, config, kind="transcription network")


class TranscriptionModel(FramewiseModel):
    """A trained transcription network with its front-end and decoder settings."""

    format, format_version = FORMAT, FORMAT_VERSION

    def __init__(self, net: Any, *, name: str, frontend: NotesFrontend, decoder: Any = None,
                 metadata: dict[str, Any] | None = None, source: str | None = None, net_name: str = "notes_hcnn",
                 runtime: str = "onnx") -> None:
        from soundalike.transcribe.decode import NoteDecoder

        super().__init__(net, name=name, frontend=frontend, decoder=decoder or NoteDecoder(), net_name=net_name,
                         metadata=metadata, source=source)
        self._features: NotesFeatures | None = None
        #: "onnx": the network runs on ONNX Runtime where it can (:mod:`soundalike.models.runtime`, about 5x
        #: faster than eager torch here); "torch": always eager (a model being trained)
        self.runtime = runtime
        self._graph: Any = None

    def _onnx(self) -> Any:
        """The network (with its sigmoid) as an ONNX Runtime graph, built or loaded once; None: run in torch."""
        from soundalike.models import runtime

        if self.runtime != "onnx" or not runtime.runtime_wanted():
            return None
        if self._graph is None:
            import torch

            net = self.net.eval()
            self._graph = runtime.build_graph(
                lambda x: torch.sigmoid(net(x)), [net], key_parts=(self.fingerprint, "transcription"),
                shape=("batch", len(band_pitches(self.frontend)), "frames")) or False
        return self._graph or None

    @property
    def features(self) -> NotesFeatures:
        if self._features is None:
            self._features = NotesFeatures(self.frontend)
        return self._features

    def activations(self, y: np.ndarray, *, chunk_seconds: float = 60.0,
                    progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Per-frame head outputs [shape=(len(HEADS), N_PITCHES, frames)] of a mono waveform at the
        front-end's rate, in overlapping chunks (2 s of context either side), so memory stays bounded
        whatever the length; ``progress(samples)`` after each chunk."""
        import torch

        fe = self.frontend
        y = np.asarray(y, np.float32) * np.float32(loudness_gain(y, fe))
        self.net.eval()
        graph = self._onnx()

        def run(seg: np.ndarray) -> np.ndarray:  # (heads, pitches, frames of seg)
            x = self.features(torch.from_numpy(seg)[None])
            return graph(x.numpy())[0][0] if graph is not None else torch.sigmoid(self.net(x))[0].numpy()

        with torch.inference_mode():
            return chunked_frames(y, run, hop=fe.hop_length, shape=(len(HEADS), N_PITCHES),
                                  chunk_frames=int(chunk_seconds * fe.fps), context_frames=int(2 * fe.fps),
                                  min_samples=max(fe.n_ffts), progress=progress)


def load_transcription_model(path: str | Path) -> TranscriptionModel:
    """Load ``NAME.safetensors`` + ``NAME.json`` (eval mode)."""
    from soundalike.transcribe.decode import NoteDecoder

    stem, desc, net_name, net = load_model_files(path, fmt=FORMAT, version=FORMAT_VERSION,
                                                 kind="transcription model", nets=NOTES_NETS,
                                                 default_net="notes_hcnn")
    return TranscriptionModel(net, name=str(desc.get("name", stem.name)),
                              frontend=NotesFrontend.from_dict(desc["frontend"]),
                              decoder=NoteDecoder.from_dict(desc.get("decoder")), metadata=desc.get("metadata"),
                              source=str(stem), net_name=net_name)
