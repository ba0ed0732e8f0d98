"""What an evaluation compares: the catalog's model, other models, and baselines.

Every method turns a waveform into chunk embeddings (unit rows) at a given
hop and a song embedding (unit), so excerpt and label retrieval treat them
alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from soundalike.features.mel import FrontendConfig
from soundalike.index.scoring import query_grid


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class Method:
    name: str
    kind: str  # model | baseline

    def fit(self, tracks: list[np.ndarray]) -> None:  # pragma: no cover - default: nothing to fit
        """Learn statistics (e.g. feature scaling) from the catalog's waveforms."""

    def chunks(self, y: np.ndarray, hop_frames: int) -> np.ndarray:
        raise NotImplementedError

    def song(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    #: the hop of the chunks a catalog keeps (set per method; also what :func:`query_grid` reads)
    catalog_hop_frames: int = 64
    frontend: FrontendConfig

    def query_grid(self, seconds: float) -> tuple[int, int]:
        """(hop, phases) `similar` embeds a file query of ``seconds`` at (:func:`query_grid`)."""
        return query_grid(self.frontend, seconds)

    def song_of_chunks(self, chunks: np.ndarray, y: np.ndarray, phases: int) -> np.ndarray:
        """The song embedding `similar` gives a query whose chunks (on ``phases`` grids) are ``chunks``; by
        default the song of its waveform ``y``."""
        return self.song(y)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind}


class ModelMethod(Method):
    """A trained (or untrained) encoder with its own front-end."""

    def __init__(self, encoder: Any, name: str, *, kind: str = "model", batch_size: int = 256) -> None:
        self.encoder = encoder
        self.name = name
        self.kind = kind
        self.batch_size = batch_size
        self._emb: dict[int, Any] = {}
        self.frontend = encoder.frontend
        self.catalog_hop_frames = int(encoder.frontend.chunk_hop_frames)

    def _embedder(self, hop_frames: int) -> Any:
        from soundalike.inference.embed import Embedder

        if hop_frames not in self._emb:
            self._emb[hop_frames] = Embedder(self.encoder, chunk_hop_frames=hop_frames, batch_size=self.batch_size)
        return self._emb[hop_frames]

    def chunks(self, y: np.ndarray, hop_frames: int) -> np.ndarray:
        e = self._embedder(hop_frames)
        return self.encoder.embed_chunks(e.chunks(y), batch_size=self.batch_size)

    def song(self, y: np.ndarray) -> np.ndarray:
        return self._embedder(self.encoder.frontend.chunk_hop_frames).embed_waveform(y).song

    def song_of_chunks(self, chunks: np.ndarray, y: np.ndarray, phases: int) -> np.ndarray:
        from soundalike.tasks.similar import query_song

        return query_song(self.encoder, chunks, phases)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "model": self.encoder.name,
                "fingerprint": self.encoder.fingerprint, "encoder": self.encoder.encoder}


class MFCCMethod(Method):
    """The classic baseline: mean and standard deviation of 20 MFCCs (40 numbers).

    MFCCs are the DCT-II (orthonormal) of the same log-mel the models see;
    each of the 40 statistics is standardised with the catalog's mean and
    spread (fitted on whole tracks), so no coefficient dominates the cosine.
    """

    kind = "baseline"

    def __init__(self, frontend: FrontendConfig, n_mfcc: int = 20) -> None:
        import torch

        from soundalike.features.mel import MelFrontend

        self.name = "mfcc-stats"
        self.frontend = frontend
        self.catalog_hop_frames = int(frontend.chunk_hop_frames)
        self.n_mfcc = n_mfcc
        self._mel = MelFrontend(frontend)
        m = frontend.n_mels
        k = np.arange(n_mfcc)[:, None]
        n = np.arange(m)[None, :]
        dct = np.cos(np.pi / m * (n + 0.5) * k) * np.sqrt(2.0 / m)
        dct[0] /= np.sqrt(2.0)
        self._dct = dct.astype(np.float32)
        self._torch = torch
        self.mu: np.ndarray | None = None
        self.sd: np.ndarray | None = None

    def mfcc(self, y: np.ndarray) -> np.ndarray:
        """[shape=(n_mfcc, frames)] from the log-mel (dB, ref=max, floored at top_db)."""
        from soundalike.features.mel import power_to_db

        with self._torch.inference_mode():
            db = power_to_db(self._mel(np.asarray(y, np.float32)), amin=self.frontend.amin,
                             top_db=self.frontend.top_db).numpy()
        return self._dct @ db

    @staticmethod
    def _stats(c: np.ndarray) -> np.ndarray:
        return np.concatenate([c.mean(axis=-1), c.std(axis=-1)], axis=-1)

    def fit(self, tracks: list[np.ndarray]) -> None:
        feats = np.stack([self._stats(self.mfcc(y)) for y in tracks])
        self.mu, self.sd = feats.mean(axis=0), feats.std(axis=0) + 1e-6

    def _scale(self, f: np.ndarray) -> np.ndarray:
        if self.mu is None or self.sd is None:
            return _unit(f)
        return _unit((f - self.mu) / self.sd)

    def chunks(self, y: np.ndarray, hop_frames: int) -> np.ndarray:
        c = self.mfcc(y)
        F = self.frontend.chunk_frames
        if c.shape[1] < F:
            c = np.pad(c, ((0, 0), (0, F - c.shape[1])), mode="edge")
        starts = range(0, c.shape[1] - F + 1, hop_frames)
        return self._scale(np.stack([self._stats(c[:, s : s + F]) for s in starts]))

    def song(self, y: np.ndarray) -> np.ndarray:
        return self._scale(self._stats(self.mfcc(y)))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "n_mfcc": self.n_mfcc, "dims": 2 * self.n_mfcc}


@dataclass
class MethodSet:
    methods: list[Method]

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.methods]


def untrained_like(encoder: Any, seed: int = 0) -> Any:
    """The same architecture and front-end as ``encoder``, with fresh random weights."""
    import torch

    from soundalike.models.factory import create_encoder

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        enc = create_encoder(encoder.encoder, frontend=encoder.frontend, **encoder.config)
    finally:
        torch.random.set_rng_state(state)
    enc.name = f"{encoder.encoder}-untrained"
    enc.net.eval()
    return enc
