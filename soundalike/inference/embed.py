"""Turn audio into embeddings with a model's own front-end.

:class:`Embedder` decodes files in a background thread while the main thread
runs the front-end and the encoder, so decoding and the CNN overlap on two cores.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.audio.io import DecodedAudio, decode
from soundalike.errors import AudioDecodeError, ParameterError
from soundalike.features.mel import MelFrontend, chunk_power, chunk_windows, power_to_db
from soundalike.models.checkpoint import AudioEncoder, song_embedding  # noqa: F401  (re-exported)


@dataclass
class TrackEmbedding:
    """Embeddings of one waveform."""

    chunks: np.ndarray  # float32 [shape=(n_chunks, d)], unit rows
    song: np.ndarray  # float32 [shape=(d,)], unit
    duration: float  # seconds of audio embedded
    chunk_seconds: float  # audio per chunk
    hop_seconds: float  # time between chunk starts
    path: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    samples: np.ndarray | None = None  # the decoded waveform, only when asked for (keep_samples)
    tag_scores: np.ndarray | None = None  # float32 [shape=(n_chunks, n_tags)], when the Embedder has a tagger
    mel: np.ndarray | None = None  # the power mel [shape=(n_mels, frames)], only when asked for (keep_mel)


class Embedder:
    """Decode + front-end + encoder, configured entirely by the model."""

    def __init__(self, encoder: AudioEncoder, *, chunk_hop_frames: int | None = None,
                 batch_size: int = 128, max_duration: float | None = None, tagger: Any = None) -> None:
        self.encoder = encoder
        self.tagger = tagger  # a Tagger on this encoder: its heads score the same chunks in the same pass
        if tagger is not None and tagger.encoder is not encoder:
            raise ParameterError("the tagger must wrap the Embedder's own encoder")
        self.config = encoder.frontend
        self.hop_frames = int(chunk_hop_frames or self.config.chunk_hop_frames)
        if self.hop_frames <= 0:
            raise ParameterError("chunk_hop_frames must be positive")
        self.batch_size = batch_size
        self.max_duration = max_duration
        self._mel = MelFrontend(self.config)
        #: seconds spent per stage by this embedder (decode: waiting for the decoder in embed_files)
        self.timings: dict[str, float] = {"decode": 0.0, "frontend": 0.0, "encoder": 0.0}

    # ------------------------------------------------------------------ parts
    def mel(self, y: np.ndarray) -> Any:
        """Waveform [shape=(n,)] -> the model's power mel, torch [shape=(n_mels, frames)]."""
        import torch

        with torch.inference_mode():
            return self._mel(np.asarray(y, dtype=np.float32))

    def chunks(self, y: np.ndarray, *, power: Any = None) -> Any:
        """Waveform [shape=(n,)] (or its :meth:`mel` ``power``) -> log-mel chunks torch
        [shape=(n_chunks, n_mels, chunk_frames)]."""
        import torch

        with torch.inference_mode():
            power = self.mel(y) if power is None else power
            ch = chunk_power(power, chunk_frames=self.config.chunk_frames, hop_frames=self.hop_frames)
            return power_to_db(ch, amin=self.config.amin, top_db=self.config.top_db)

    def embed_waveform(self, y: np.ndarray, *, path: str | None = None, tags: dict[str, str] | None = None,
                       keep_mel: bool = False) -> TrackEmbedding:
        """Embed a mono waveform at the model's sample rate (``keep_mel``: keep its power mel on the result)."""
        if len(y) == 0:
            raise ParameterError("cannot embed an empty waveform")
        t0 = time.perf_counter()
        power = self.mel(y)
        chunks = self.chunks(y, power=power)
        t1 = time.perf_counter()
        scores = None
        if self.tagger is not None:
            chunk_emb, scores = self.tagger.chunk_scores(chunks, batch_size=self.batch_size)
        else:
            chunk_emb = self.encoder.embed_chunks(chunks, batch_size=self.batch_size)
        self.timings["frontend"] += t1 - t0
        self.timings["encoder"] += time.perf_counter() - t1
        c = self.config
        return TrackEmbedding(chunk_emb, self.encoder.song_embedding(chunk_emb), len(y) / c.sample_rate,
                              c.chunk_seconds, c.frames_to_seconds(self.hop_frames), path, dict(tags or {}),
                              tag_scores=scores, mel=power.numpy() if keep_mel else None)

    def decode(self, path: str | Path, *, offset: float = 0.0, duration: float | None = None) -> DecodedAudio:
        return decode(path, sr=self.config.sample_rate, offset=offset, duration=duration,
                      max_duration=self.max_duration, require_sound=True)

    def embed_file(self, path: str | Path, *, offset: float = 0.0,
                   duration: float | None = None) -> TrackEmbedding:
        """Decode ``path`` (seeking to ``offset`` for ``duration`` seconds) and embed it.

        Audio longer than a few minutes is decoded and embedded window by window (chunks on the same grid
        as a whole decode), so memory stays bounded: a 2-hour file needs about what a 5-minute one does.
        """
        c = self.config
        embs, scores, tags, seconds = [], [], None, 0.0
        for start, audio, own in chunk_windows(path, c, hop_frames=self.hop_frames, offset=offset,
                                               duration=duration, max_duration=self.max_duration):
            seconds = (start + len(audio.samples)) / c.sample_rate
            tags = audio.info.tags if tags is None else tags
            if own is None:
                continue
            part = self.embed_waveform(audio.samples)
            keep = own(len(part.chunks))
            embs.append(part.chunks[keep])
            if part.tag_scores is not None:
                scores.append(part.tag_scores[keep])
        chunks = np.concatenate(embs)
        return TrackEmbedding(chunks, self.encoder.song_embedding(chunks), seconds, c.chunk_seconds,
                              c.frames_to_seconds(self.hop_frames), str(path), dict(tags or {}),
                              tag_scores=np.concatenate(scores) if scores else None)

    def embed_files(self, paths: Iterable[str | Path], *, prefetch: int = 2, keep_samples: bool = False
                    ) -> Iterator[tuple[str, TrackEmbedding | AudioDecodeError]]:
        """Embed many files in order; decoding runs ahead in a background thread.

        Yields ``(path, TrackEmbedding)``, or ``(path, AudioDecodeError)`` for a
        file that cannot be decoded, so one bad file never stops the rest.
        ``keep_samples`` keeps each decoded waveform on ``TrackEmbedding.samples``
        (at the model's sample rate) for further work on the same decode.
        """
        pending: list[tuple[str, Future]] = []
        it = iter(paths)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="soundalike-decode") as pool:
            def submit() -> bool:
                try:
                    p = str(next(it))
                except StopIteration:
                    return False
                pending.append((p, pool.submit(self.decode, p)))
                return True

            for _ in range(max(1, prefetch)):
                if not submit():
                    break
            while pending:
                p, fut = pending.pop(0)
                submit()
                t0 = time.perf_counter()
                try:
                    audio = fut.result()
                except AudioDecodeError as exc:
                    yield p, exc
                    continue
                finally:
                    self.timings["decode"] += time.perf_counter() - t0
                emb = self.embed_waveform(audio.samples, path=p, tags=audio.info.tags)
                if keep_samples:
                    emb.samples = audio.samples
                yield p, emb


def embed(path: str | Path, *, model: AudioEncoder | str | None = None, offset: float = 0.0,
          duration: float | None = None) -> TrackEmbedding:
    """Embed one audio file with ``model`` (default: the shipped model).

    Returns a :class:`TrackEmbedding` with chunk embeddings [shape=(n, d)] and
    the song embedding [shape=(d,)].
    """
    from soundalike.models.factory import load_encoder

    enc = model if isinstance(model, AudioEncoder) else load_encoder(model)
    return Embedder(enc).embed_file(path, offset=offset, duration=duration)
