"""Whole-track binary codes from a trained hash model, for the catalog's Hamming search.

A track is cut into the model's clips (29.12 s for hash_cnn, every
``chunk_hop_frames``; a shorter track is one silence-padded clip); the relaxed
codes q of its clips are averaged and the signs of the mean are the track's
code. A query file gets its code the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import ModelError
from soundalike.fingerprint.codes import pack_codes


class TrackHasher:
    """A hash model (an :class:`~soundalike.models.checkpoint.AudioEncoder` with a hash layer) and how to use it."""

    def __init__(self, encoder: Any) -> None:
        bits = int(getattr(encoder.net.config, "bits", 0) or 0)
        if encoder.encoder != "hash_cnn" or bits <= 0:
            raise ModelError(f"model {encoder.name!r} ({encoder.encoder}) makes no binary codes; a hash model is a "
                             "trained hash_cnn with bits > 0, e.g. the shipped hash_cnn-music")
        self.encoder = encoder
        self.bits = bits

    @property
    def sample_rate(self) -> int:
        return int(self.encoder.frontend.sample_rate)

    def relaxed(self, samples: np.ndarray) -> np.ndarray:
        """Mean relaxed code q [shape=(bits,)] over the clips of a waveform at :attr:`sample_rate`."""
        from soundalike.features.mel import log_mel_chunks

        chunks = log_mel_chunks(np.asarray(samples, dtype=np.float32), self.encoder.frontend)
        return self.encoder.embed_chunks(chunks, batch_size=8).mean(axis=0)

    def code(self, samples: np.ndarray) -> np.ndarray:
        """Packed code uint8 [shape=(bits / 8,)] of a waveform at :attr:`sample_rate`."""
        return pack_codes(self.relaxed(samples)[None])[0]

    def code_file(self, path: str | Path, *, offset: float = 0.0, duration: float | None = None,
                  max_duration: float | None = None) -> np.ndarray:
        from soundalike.audio.io import decode

        audio = decode(path, sr=self.sample_rate, offset=offset, duration=duration, max_duration=max_duration,
                       require_sound=True)
        return self.code(audio.samples)


def load_hasher(model: Any = None) -> TrackHasher:
    """A :class:`TrackHasher` for a shipped name or model path (default: the shipped hash_cnn-music)."""
    from soundalike.hashing import DEFAULT_HASH_MODEL
    from soundalike.models.checkpoint import AudioEncoder
    from soundalike.models.factory import load_encoder

    if isinstance(model, TrackHasher):
        return model
    enc = model if isinstance(model, AudioEncoder) else load_encoder(
        DEFAULT_HASH_MODEL if model in (None, "", "default") else model)
    return TrackHasher(enc)
