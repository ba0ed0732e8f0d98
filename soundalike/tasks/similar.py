""""What sounds like this?": cosine similarity of song embeddings, or Hamming distance of hash codes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from soundalike.errors import ParameterError, TrackNotFoundError
from soundalike.limits import DEFAULT_MAX_DURATION

if TYPE_CHECKING:
    from soundalike.index.catalog import Catalog, Match
    from soundalike.tasks.display import Matches
    from soundalike.tasks.identify import IdentifyMatch


def as_track_id(query: str | Path | int) -> int | None:
    """``query`` as a track id: an int, or a string of digits that names no file; else None (a file)."""
    if isinstance(query, int):
        return query
    q = str(query)
    if q.isdigit() and not os.path.exists(q):
        return int(q)
    return None


#: What ``similar`` can rank by: how tracks sound (embeddings), their hash codes, or the notes they play.
SIMILAR_BY: tuple[str, ...] = ("sound", "hash", "notes")


def similar(catalog: Catalog, query: str | Path | int, *, k: int = 10, offset: float = 0.0,
            duration: float | None = None, hash: bool = False, by: str = "sound",
            where: Sequence[str] | str | None = None, max_duration: float | None = DEFAULT_MAX_DURATION) -> Matches:
    """Tracks of ``catalog`` most similar to ``query`` (an audio file or a track id), best first: a list of
    :class:`~soundalike.index.rows.Match` that renders as a table in Jupyter (:class:`Matches`).

    ``by="hash"`` (or ``hash=True``) ranks by the Hamming distance of the catalog's hash codes; ``by="notes"``
    by the transcription's chroma (a catalog indexed with ``--notes``; see
    :class:`~soundalike.index.sides.NoteFeatures`): what is played, not how it sounds,
    so another arrangement of the same work ranks first. ``where`` (``"tag:piano>0.5"``, several conditions
    all hold) keeps only the tracks whose stored tags meet it. A file longer than ``max_duration`` seconds is
    refused; a long one is read in bounded memory.
    """
    from soundalike.tasks.display import Matches

    return Matches.of(_similar(catalog, query, k=k, offset=offset, duration=duration, hash=hash, by=by, where=where,
                               max_duration=max_duration), catalog)  # type: ignore[return-value]


def _similar(catalog: Catalog, query: str | Path | int, *, k: int, offset: float, duration: float | None, hash: bool,
             by: str, where: Sequence[str] | str | None, max_duration: float | None) -> list[Match]:
    if k < 1:
        raise ParameterError("k must be at least 1")
    if by not in SIMILAR_BY:
        raise ParameterError(f"similar ranks by one of {', '.join(SIMILAR_BY)}; got {by!r}")
    hash = hash or by == "hash"
    allow = catalog.filter_tracks(where) if where else None
    if allow is not None and not len(allow):
        return []
    track_id = as_track_id(query)
    if by == "notes":
        return _similar_by_notes(catalog, query, track_id, k=k, offset=offset, duration=duration, allow=allow,
                                 max_duration=max_duration)
    if hash:
        hasher = catalog.hasher  # raises if the catalog keeps no hash codes
        if track_id is not None:
            try:
                code = catalog.hash_code(track_id)
            except TrackNotFoundError:
                raise TrackNotFoundError(
                    f"{query!r} is neither an audio file nor a track id in catalog {catalog.root}") from None
            return catalog.hash_search(code, k=k, exclude=[track_id], allow=allow)
        code = hasher.code_file(str(query), offset=offset, duration=duration, max_duration=max_duration)
        return catalog.hash_search(code, k=k, allow=allow)
    if track_id is not None:
        try:
            _, song = catalog.embeddings(track_id)
        except TrackNotFoundError:
            raise TrackNotFoundError(
                f"{query!r} is neither an audio file nor a track id in catalog {catalog.root}"
            ) from None
        return catalog.search(song, k=k, exclude=[track_id], allow=allow)
    chunks, phases = embed_query_file(catalog, str(query), offset=offset, duration=duration, max_duration=max_duration)
    return rank_file_query(catalog, chunks, k=k, allow=allow, phases=phases)


def embed_query_file(catalog: Catalog, query: str | Path, *, offset: float = 0.0, duration: float | None = None,
                     max_duration: float | None = DEFAULT_MAX_DURATION) -> tuple[np.ndarray, int]:
    """A file query's chunk embeddings with the catalog's encoder, and on how many interleaved grids they lie
    (:func:`~soundalike.index.scoring.query_grid`: a short query is read on denser chunks); a long file is
    read window by window in bounded memory. :func:`query_song` pools them into its song embedding."""
    from soundalike.audio.io import declared_span
    from soundalike.index.scoring import query_grid
    from soundalike.inference.embed import Embedder

    span = declared_span(str(query), offset=offset, duration=duration)  # the header says how long
    hop, phases = query_grid(catalog.encoder.frontend, span if span is not None else float("inf"))
    embedder = Embedder(catalog.encoder, chunk_hop_frames=hop, max_duration=max_duration)
    if phases > 1:  # a short query, on denser chunks (one of its grids lands near the stored chunks)
        emb = embedder.embed_waveform(embedder.decode(str(query), offset=offset, duration=duration).samples)
    else:  # a long one, on the catalog's grid, window by window in bounded memory
        emb = embedder.embed_file(str(query), offset=offset, duration=duration)
    return emb.chunks, phases


def _similar_by_notes(catalog: Catalog, query: str | Path | int, track_id: int | None, *, k: int, offset: float,
                      duration: float | None, allow: np.ndarray | None, max_duration: float | None) -> list[Match]:
    from soundalike.tasks.transcribe import transcribe
    from soundalike.transcribe.notes import chroma_feature

    side = catalog.notes
    if not side.enabled:
        raise ParameterError(side.add_hint() + ", then search with --by notes")
    if track_id is not None:
        catalog.track(track_id)  # TrackNotFoundError for an unknown id
        stored = side.feature(track_id)
        if stored is None:
            raise TrackNotFoundError(f"track {track_id} has no note feature yet; run `soundalike index MUSIC_FOLDER "
                                     f"--catalog {catalog.root} --notes` to transcribe it")
        (feature, sequence), exclude = stored, [track_id]
    else:
        sequence = transcribe(str(query), model=side.model, offset=offset, duration=duration,
                              max_duration=max_duration).chroma
        feature, exclude = chroma_feature(sequence), []
    return side.search(feature, sequence, k=k, exclude=exclude, allow=allow, tracks=catalog.tracks)


#: how many song-embedding neighbours of a file query are re-scored with its moments
RERANK_DEPTH = 100


def query_song(encoder: Any, chunks: np.ndarray, phases: int = 1) -> np.ndarray:
    """The song embedding of a file query whose chunks lie on ``phases`` interleaved grids (see
    :func:`~soundalike.index.scoring.query_grid`): pooled over the first grid, the catalog's own, as its
    tracks' are."""
    return encoder.song_embedding(chunks[:: max(1, phases)])


def rank_file_query(catalog: Catalog, chunks: np.ndarray, *, k: int, allow: np.ndarray | None = None,
                    phases: int = 1) -> list[Match]:
    """Rank the catalog for a file query, given its chunk embeddings (on ``phases`` grids,
    :func:`~soundalike.index.scoring.query_grid`), by its song cosine and its moment score (its chunks
    against the track's stored chunks; :func:`~soundalike.index.scoring.similar_scores`), over its
    :data:`RERANK_DEPTH` nearest songs. An excerpt, even a noisy one, finds its own track first this way;
    its song embedding alone holds too little of the song."""
    from dataclasses import replace

    from soundalike.index.scoring import similar_scores

    cands = catalog.search(query_song(catalog.encoder, chunks, phases), k=max(k, RERANK_DEPTH), allow=allow)
    if not cands:
        return []
    stored = catalog.chunk_embeddings([m.track.id for m in cands])
    songs = np.asarray([m.score for m in cands], np.float64)  # the index's song cosines
    fused, moments = similar_scores(songs, chunks, stored, phases=phases)
    order = np.argsort(-fused, kind="stable")[:k]
    return [replace(cands[i], rank=n + 1, score=float(fused[i]), song_score=float(songs[i]),
                    moment_score=float(moments[i])) for n, i in enumerate(order)]


@dataclass
class Analysis:
    """Everything the page shows about one audio file: its matches, its tags, where it comes from, a picture."""

    duration: float  # seconds of audio analysed
    matches: list[Match]
    tags: dict[str, float] | None  # the top tags (the catalog's heads), None for a catalog without tags
    excerpt_of: IdentifyMatch | None  # the catalog track (and offset) this is an excerpt of, if any
    spectrogram: dict[str, Any]  # {"db": rows low to high, "seconds", "n_mels"}
    seconds: float = 0.0  # time taken
    metadata: dict[str, str] = field(default_factory=dict)  # the file's own tags (title, artist, album...)


def spectrogram(power: np.ndarray, seconds: float, *, n_mels: int = 64, max_cols: int = 400) -> dict[str, Any]:
    """A small log-mel picture from a power mel [shape=(M, T)]: bands pooled to ``n_mels`` (when M is a
    multiple), frames averaged down to at most ``max_cols`` columns, in dB below the loudest cell."""
    from soundalike.features.mel import power_to_db

    m, t = power.shape
    if m % n_mels == 0:
        power = power.reshape(n_mels, m // n_mels, t).mean(axis=1)
    else:
        n_mels = m
    step = max(1, -(-t // max_cols))
    cols = -(-t // step)
    padded = np.pad(power, ((0, 0), (0, cols * step - t)), mode="edge")
    pooled = padded.reshape(n_mels, cols, step).mean(axis=2)
    db = np.asarray(power_to_db(pooled, amin=1e-10, top_db=80.0))
    return {"db": np.round(db - db.max(), 1).tolist(), "seconds": round(seconds, 3), "n_mels": n_mels}


def analyse(catalog: Catalog, path: str | Path, *, k: int = 10, offset: float = 0.0, duration: float | None = None,
            where: Sequence[str] | str | None = None, identify: bool = True, top_tags: int = 10,
            max_duration: float | None = DEFAULT_MAX_DURATION) -> Analysis:
    """What sounds like the audio file ``path``, its tags, and (``identify``, when the catalog keeps
    fingerprints) which catalog track it is an excerpt of: one decode, one pass of the catalog's encoder
    (embedding and tag heads together), and the fingerprint model on the same samples."""
    import time

    from soundalike.audio.io import decode
    from soundalike.index.scoring import query_grid
    from soundalike.inference.embed import Embedder
    from soundalike.tagging.tagger import TagResult, summarise
    from soundalike.tasks.identify import identify_waveform

    if k < 1:
        raise ParameterError("k must be at least 1")
    t0 = time.perf_counter()
    sr = catalog.encoder.frontend.sample_rate
    audio = decode(path, sr=sr, offset=offset, duration=duration, max_duration=max_duration, require_sound=True)
    hop, phases = query_grid(catalog.encoder.frontend, audio.duration)  # chunks as `similar` takes them
    embedder = Embedder(catalog.encoder, chunk_hop_frames=hop, tagger=catalog.tagger if catalog.has_tags else None)
    emb = embedder.embed_waveform(audio.samples, keep_mel=True)
    allow = catalog.filter_tracks(where) if where else None
    matches = [] if allow is not None and not len(allow) else rank_file_query(catalog, emb.chunks, k=k,
                                                                              allow=allow, phases=phases)
    tags = None
    if emb.tag_scores is not None:  # the heads' chunk scores from the embedding's own pass
        n = len(emb.tag_scores)
        tagged = TagResult(catalog.tag_names, summarise(emb.tag_scores), np.arange(n) * emb.hop_seconds,
                           emb.tag_scores, emb.chunk_seconds, emb.hop_seconds, emb.duration)
        tags = tagged.to_dict(top=top_tags)["tags"]
    source = None
    if identify and catalog.has_fingerprints:
        source = identify_waveform(catalog, audio.samples, audio.sr, top=3, query=str(path)).match
    assert emb.mel is not None
    return Analysis(audio.duration, matches, tags, source, spectrogram(emb.mel, audio.duration),
                    time.perf_counter() - t0, dict(audio.info.tags))
