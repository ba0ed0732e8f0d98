"""What the frame-wise models share: the events model (:mod:`soundalike.events.model`) and the transcription
model (:mod:`soundalike.transcribe.model`) are each a registered network, a front-end and decoder settings
in one file pair (``NAME.safetensors`` + ``NAME.json``), run over long audio in overlapping chunks.

- :class:`FramewiseModel`: the base: its fingerprint (what a catalog keeps to know which model made its
  rows), its description and ``save``; a subclass names its file format and sets its front-end and decoder;
- :func:`build_registered_net`: a network by name from a registry of ``name -> module``;
- :func:`chunked_frames`: a frame-wise function of a waveform computed chunk by chunk with context either
  side, so memory stays bounded whatever the length;
- :func:`model_stem`: ``NAME`` of ``NAME``, ``NAME.safetensors`` or ``NAME.json``;
- :func:`load_model_files`: the description and the network of a model file pair, checked;
- :func:`load_cached`: a model file loaded once per process (``None`` or ``"default"``: the shipped one);
- :func:`loudness_gain`: the level normalisation both front-ends apply before their spectrograms.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import ModelError


def model_stem(path: str | Path) -> Path:
    """``NAME`` for ``NAME``, ``NAME.safetensors`` or ``NAME.json``."""
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".safetensors", ".json") else p


def load_cached(cache: dict[str, Any], path: str | Path | None, shipped: Path, load: Callable[[str], Any]) -> Any:
    """``load(path)``, kept in ``cache`` so a process loads each model file once; ``path`` None or
    ``"default"`` means ``shipped``."""
    key = str(Path(path) if path not in (None, "default") else shipped)
    if key not in cache:
        cache[key] = load(key)
    return cache[key]


def loudness_gain(y: np.ndarray, frontend: Any) -> float:
    """The factor that brings the 90th percentile of ``y``'s 100 ms frame RMS to ``frontend.target_rms``, at
    most ``frontend.max_gain_db`` (so hiss is not lifted to music's level); ``frontend`` also names its
    ``sample_rate``."""
    n = max(1, int(0.1 * frontend.sample_rate))
    m = len(y) // n
    if m == 0:
        rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0
    else:
        frames = np.asarray(y[: m * n], np.float64).reshape(m, n)
        rms = float(np.percentile(np.sqrt(np.mean(frames**2, axis=1)), 90))
    cap = 10 ** (frontend.max_gain_db / 20)
    return float(min(frontend.target_rms / max(rms, 1e-12), cap))


def load_model_files(path: str | Path, *, fmt: str, version: int, kind: str, nets: dict[str, str],
                     default_net: str) -> tuple[Path, dict[str, Any], str, Any]:
    """Read ``NAME.json`` (of format ``fmt``, at most ``version``) and load ``NAME.safetensors`` into the
    registered network it names (``nets``; ``default_net`` when it names none), in eval mode. Returns
    (stem, description, network name, network); errors name the files, not their folder, and say what a
    ``kind`` ("events model") is made of."""
    from soundalike.models.checkpoint import load_weights, read_model_json

    stem = model_stem(path)
    wpath = stem.with_suffix(".safetensors")
    desc = read_model_json(stem, fmt=fmt, version=version, kind=kind, names_only=True)
    if not wpath.is_file():
        article = "an" if kind[:1] in "aeiou" else "a"
        raise ModelError(f"{article} {kind} is NAME.safetensors plus NAME.json; {wpath.name} is missing")
    net_name = str(desc.get("net", default_net))
    net_kind = kind.replace("model", "network")
    net = build_registered_net(nets, net_name, desc.get("config") or {}, kind=net_kind)
    load_weights(net, wpath, what=f"the {net_kind}", names_only=True)
    return stem, desc, net_name, net


def build_registered_net(nets: dict[str, str], name: str, config: dict[str, Any] | None, *, kind: str) -> Any:
    """The network ``name`` of registry ``nets`` (name -> the module whose ``NETS`` defines it), with
    ``config`` overriding its ``Config`` defaults; ``kind`` ("events network") names it in errors."""
    if name not in nets:
        raise ModelError(f"unknown {kind} {name!r}; registered: {', '.join(nets)}")
    import importlib

    cls: Any = importlib.import_module(nets[name]).NETS[name]
    known = {f.name for f in fields(cls.Config)}
    bad = set(config or {}) - known
    if bad:
        raise ModelError(f"{kind} {name!r} has no settings {sorted(bad)}; it has {sorted(known)}")
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in (config or {}).items()}
    return cls(cls.Config(**cfg))


class FramewiseModel:
    """A trained frame-wise network with its front-end (a dataclass with ``to_dict``) and decoder settings
    (a dataclass), and where it was loaded from."""

    format = ""  # the JSON's "format"
    format_version = 1

    def __init__(self, net: Any, *, name: str, frontend: Any, decoder: Any, net_name: str,
                 metadata: dict[str, Any] | None = None, source: str | None = None) -> None:
        self.net = net
        self.name = name
        self.frontend = frontend
        self.decoder = decoder
        self.net_name = net_name
        self.metadata = dict(metadata or {})
        self.source = source

    @property
    def fingerprint(self) -> str:
        """sha256 over the config, front-end, decoder settings and every weight (16 hex digits): what a
        catalog keeps to know which model made its rows."""
        h = hashlib.sha256()
        d = self.describe()
        h.update(json.dumps({k: d[k] for k in ("net", "config", "frontend", "decoder")}, sort_keys=True).encode())
        for key, tensor in sorted(self.net.state_dict().items()):
            h.update(key.encode())
            h.update(np.ascontiguousarray(tensor.detach().cpu().numpy()).tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """What the model's JSON holds."""
        from soundalike import __version__

        cfg = asdict(self.net.config)
        return {"format": self.format, "format_version": self.format_version, "name": self.name,
                "net": self.net_name, "config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
                "frontend": self.frontend.to_dict(), "decoder": asdict(self.decoder),
                "soundalike_version": __version__, "metadata": self.metadata}

    def save(self, path: str | Path) -> Path:
        """Write ``NAME.safetensors`` + ``NAME.json`` (each atomically); returns the weights' path."""
        from safetensors.torch import save_file

        from soundalike.models.checkpoint import atomic_write

        stem = model_stem(path)
        stem.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        atomic_write(stem.with_suffix(".safetensors"), lambda tmp: save_file(state, tmp))
        text = json.dumps(self.describe(), indent=2)
        atomic_write(stem.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
        return stem.with_suffix(".safetensors")


def chunked_frames(y: np.ndarray, run: Callable[[np.ndarray], np.ndarray], *, hop: int, shape: tuple[int, ...],
                   chunk_frames: int, context_frames: int, min_samples: int,
                   progress: Callable[[int], None] | None = None) -> np.ndarray:
    """``run`` (a waveform segment -> its frames, ``shape + (frames,)``) over ``y`` in chunks of
    ``chunk_frames``, each computed with ``context_frames`` of audio either side and a segment at least
    ``min_samples`` long (zero-padded: a very short file still fills one analysis window); the result
    [shape=shape + (len(y) // hop + 1,)] as one pass over the whole would give it, within the context's
    reach. ``progress(samples)`` after each chunk."""
    n_frames = len(y) // hop + 1
    pieces = -(-n_frames // max(1, int(chunk_frames)))
    chunk = -(-n_frames // pieces)  # chunks of equal size: no sliver of a last chunk with all its context
    out = np.zeros((*shape, n_frames), np.float32)
    for a in range(0, n_frames, chunk):
        b = min(n_frames, a + chunk)
        lo, hi = max(0, a - context_frames), min(n_frames, b + context_frames)
        seg = y[lo * hop: (hi - 1) * hop + 1]
        if len(seg) < min_samples:
            seg = np.pad(seg, (0, min_samples - len(seg)))
        frames = run(np.ascontiguousarray(seg))
        out[..., a:b] = frames[..., a - lo: a - lo + (b - a)]
        if progress is not None:
            progress(min(len(y), b * hop) - min(len(y), a * hop))
    return out
