""""What is this?": tag scores for a whole track and over time.

A :class:`Tagger` is an encoder plus tag heads that read its block maps, so one
encoder pass gives the embedding and every head's scores. The whole-track
score of a tag is the mean of its chunk scores; the timeline has one row per
chunk (a 3 s chunk every ~1.5 s for the default model).

    >>> from soundalike import tag
    >>> result = tag("song.mp3", timeline=True)
    >>> result.top(5)                       # [(tag, score), ...] for the whole track
    >>> result.timeline[:, result.index("piano")]   # piano score of each chunk
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import ModelError, ParameterError
from soundalike.limits import DEFAULT_MAX_DURATION

#: The heads used when none are named: the musicnn-distilled tags and the instrument families.
DEFAULT_HEADS = ("tags-mtt", "instruments-gm")
#: Seconds between timeline chunk starts (about; rounded to whole frames of the model's front-end).
TIMELINE_HOP_SECONDS = 1.5


@dataclass
class TagResult:
    """Tag scores of one waveform: ``track[j]`` for the whole of it, ``timeline[i, j]`` per chunk."""

    tags: tuple[str, ...]
    track: np.ndarray  # float32 [shape=(n_tags,)]
    times: np.ndarray  # float64 [shape=(n_chunks,)]: chunk start, seconds
    timeline: np.ndarray  # float32 [shape=(n_chunks, n_tags)]
    chunk_seconds: float
    hop_seconds: float
    duration: float
    path: str | None = None

    def index(self, tag: str) -> int:
        try:
            return self.tags.index(tag)
        except ValueError:
            raise ParameterError(f"no tag {tag!r}; tags: {', '.join(self.tags)}") from None

    def scores(self) -> dict[str, float]:
        """Whole-track score of every tag, highest first."""
        order = np.argsort(-self.track, kind="stable")
        return {self.tags[j]: float(self.track[j]) for j in order}

    def top(self, k: int = 10) -> list[tuple[str, float]]:
        return list(self.scores().items())[:k]

    def to_pandas(self, *, timeline: bool = False) -> Any:
        """Whole-track scores, one row per tag, best first; ``timeline``: one row per chunk (its start and
        end in seconds, a column per tag)."""
        from soundalike.tasks.display import to_frame

        if not timeline:
            return to_frame([{"tag": t, "score": s} for t, s in self.scores().items()])
        return to_frame([{"start": float(s), "end": float(s) + self.chunk_seconds,
                          **{t: float(row[j]) for j, t in enumerate(self.tags)}}
                         for s, row in zip(self.times, self.timeline, strict=True)])

    def _repr_html_(self) -> str:
        import html

        from soundalike.tasks.display import bar, table_html

        rows = [[html.escape(t), bar(s, colour="#16a34a")] for t, s in self.top(10)]
        return table_html(["tag", "score"], rows, f"{self.path or 'audio'}: {self.duration:.1f} s, top 10 of "
                                                  f"{len(self.tags)} tags")

    def to_dict(self, *, timeline: bool = False, top: int | None = None) -> dict[str, Any]:
        scores = self.scores()
        keep = list(scores)[:top] if top else list(scores)
        out: dict[str, Any] = {"path": self.path, "duration": round(self.duration, 3),
                               "tags": {t: round(scores[t], 4) for t in keep}}
        if timeline:
            cols = [self.index(t) for t in keep]
            out["chunk_seconds"] = round(self.chunk_seconds, 4)
            out["hop_seconds"] = round(self.hop_seconds, 4)
            out["timeline"] = [{"start": round(float(s), 3), "end": round(float(s) + self.chunk_seconds, 3),
                                "tags": {keep[c]: round(float(row[j]), 4) for c, j in enumerate(cols)}}
                               for s, row in zip(self.times, self.timeline, strict=True)]
        return out


def summarise(timeline: np.ndarray) -> np.ndarray:
    """Whole-track scores from chunk scores [shape=(n, n_tags)]: the mean over chunks."""
    if timeline.ndim != 2 or not len(timeline):
        raise ParameterError("need chunk scores of shape (n >= 1, n_tags)")
    return timeline.astype(np.float64).mean(axis=0).astype(np.float32)


class Tagger:
    """An encoder and the tag heads that read its block maps."""

    def __init__(self, encoder: Any, heads: Sequence[Any]) -> None:
        if not heads:
            raise ParameterError("a tagger needs at least one head")
        for h in heads:
            h.check_encoder(encoder)
        names = [t for h in heads for t in h.tags]
        dup = sorted({t for t in names if names.count(t) > 1})
        if dup:
            raise ModelError(f"heads {[h.name for h in heads]} share tag names {dup}; give each head its own "
                             "prefix (the shipped instrument head writes family/...)")
        self.encoder, self.heads, self.tags = encoder, list(heads), tuple(names)

    @property
    def name(self) -> str:
        return "+".join(h.name for h in self.heads)

    @property
    def refs(self) -> list[str]:
        return [h.ref for h in self.heads]

    @property
    def fingerprint(self) -> str:
        """Which heads, with which weights, on which encoder (16 hex digits)."""
        import hashlib

        key = "|".join([self.encoder.fingerprint, *(h.weights_digest for h in self.heads)])
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    @property
    def hop_frames(self) -> int:
        fe = self.encoder.frontend
        return max(1, int(round(TIMELINE_HOP_SECONDS * fe.sample_rate / fe.hop_length)))

    def describe(self) -> dict[str, Any]:
        """What a catalog records about the heads that tagged it."""
        return {"heads": [{"name": h.name, "ref": h.ref, "weights": h.weights_digest, "tags": len(h.tags)}
                          for h in self.heads], "tags": list(self.tags)}

    def chunk_scores(self, chunks: Any, *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings [shape=(n, d)], tag scores [shape=(n, n_tags)]) of log-mel chunks, in one pass."""
        emb, parts = self.encoder.embed_with_heads(chunks, self.heads, batch_size=batch_size)
        return emb, np.concatenate(parts, axis=1)

    def tag_waveform(self, samples: np.ndarray, *, hop_frames: int | None = None,
                     path: str | None = None) -> TagResult:
        """Tag a mono waveform at the encoder's sample rate; chunks every ``hop_frames`` (default ~1.5 s)."""
        from soundalike.tagging.data import chunks_at

        y = np.asarray(samples, dtype=np.float32)
        if y.ndim != 1 or not len(y):
            raise ParameterError("tag a non-empty mono waveform")
        fe = self.encoder.frontend
        hop = int(hop_frames or self.hop_frames)
        chunks, starts = chunks_at(self.encoder, y, hop_frames=hop)
        _, scores = self.chunk_scores(chunks)
        return TagResult(self.tags, summarise(scores), starts * fe.hop_length / fe.sample_rate, scores,
                         fe.chunk_seconds, hop * fe.hop_length / fe.sample_rate, len(y) / fe.sample_rate, path)

    def tag_file(self, path: str | Path, *, offset: float = 0.0, duration: float | None = None,
                 max_duration: float | None = DEFAULT_MAX_DURATION, hop_frames: int | None = None,
                 restore: bool = False) -> TagResult:
        """Decode ``path`` (``offset``/``duration`` pick an excerpt) and tag it; long files window by window
        (bounded memory, the same chunk grid as a whole decode). ``restore``: each window is restored
        (:func:`soundalike.restore.restore_waveform`: noise out, clipped peaks back) before it is tagged."""
        from soundalike.features.mel import chunk_windows
        from soundalike.tagging.data import chunks_at

        fe = self.encoder.frontend
        hop = int(hop_frames or self.hop_frames)
        rows, firsts, seconds = [], [], 0.0
        for start, audio, own in chunk_windows(path, fe, hop_frames=hop, offset=offset, duration=duration,
                                               max_duration=max_duration):
            seconds = (start + len(audio.samples)) / fe.sample_rate
            if own is None:
                continue
            samples = audio.samples
            if restore:
                from soundalike.restore import restore_waveform

                samples = restore_waveform(samples, fe.sample_rate)
            chunks, first = chunks_at(self.encoder, samples, hop_frames=hop)
            keep = own(len(first))
            _, scores = self.chunk_scores(chunks[keep])
            rows.append(scores)
            firsts.append(first[keep] + start // fe.hop_length)
        scores = np.concatenate(rows)
        return TagResult(self.tags, summarise(scores), np.concatenate(firsts) * fe.hop_length / fe.sample_rate,
                         scores, fe.chunk_seconds, hop * fe.hop_length / fe.sample_rate, seconds, str(path))


def load_tagger(heads: str | Sequence[Any] | None = None, *, model: Any = None) -> Tagger:
    """A :class:`Tagger` from head names or paths (default :data:`DEFAULT_HEADS`; a comma-separated string
    works too) on ``model`` (an :class:`AudioEncoder`, a model name or path; default: the shipped model)."""
    from soundalike.models.checkpoint import AudioEncoder
    from soundalike.models.factory import load_encoder
    from soundalike.models.heads import HeadModel, load_head

    if heads is None or heads == "default":
        refs: list[Any] = list(DEFAULT_HEADS)
    elif isinstance(heads, str):
        refs = [h.strip() for h in heads.split(",") if h.strip()]
    else:
        refs = list(heads)
    loaded = [h if isinstance(h, HeadModel) else load_head(h) for h in refs]
    encoder = model if isinstance(model, AudioEncoder) else load_encoder(model)
    return Tagger(encoder, loaded)


def tag(path: str | Path, *, heads: str | Sequence[Any] | None = None, model: Any = None,
        offset: float = 0.0, duration: float | None = None) -> TagResult:
    """Tag one audio file with the shipped heads (or ``heads``): whole-track scores and a ~1.5 s timeline."""
    return load_tagger(heads, model=model).tag_file(path, offset=offset, duration=duration)
