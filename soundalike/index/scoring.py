"""How a query's chunk embeddings meet a track's: the scores behind excerpt search and `similar`.

A short query (a 6 s excerpt, a noisy phone recording) carries too little of a song for its song embedding
alone to find the track it comes from; its moments do: each of its chunks has a near twin among the chunks
of its own track. :func:`similar_scores` is what ``similar`` ranks file queries by, and what ``evaluate``
measures as ``similar_clean`` / ``similar_noisy``: :data:`SONG_WEIGHT` x the song-embedding cosine plus the
rest x the moment score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: The song cosine's share of a file query's score (the moment score has the rest). Chosen on the validation
#: packages (noisy 6 s excerpts found first: 0.95-0.97 at 0.25, 0.89-0.91 at 0.5, 0.97-0.99 at 0): the
#: moments carry an excerpt, the song term keeps tracks alike as a whole ahead of a chance moment match.
SONG_WEIGHT = 0.25


#: A file query up to this long is embedded on three interleaved chunk grids (see :func:`query_grid`); a
#: longer one has chunks enough on the catalog's own grid, and costs a third of the encoder time.
DENSE_QUERY_SECONDS = 20.0


def query_hop_frames(frontend: Any) -> int:
    """Frames between a short file query's chunks: a third of the catalog's chunk hop (rounded down to one
    that divides it), so one of three grids of them starts within a sixth of a chunk of the stored chunks."""
    hop = int(frontend.chunk_hop_frames)
    q = max(1, hop // 3)
    while hop % q:
        q -= 1
    return q


def query_grid(frontend: Any, seconds: float) -> tuple[int, int]:
    """(hop in frames, phases) a file query of ``seconds`` is embedded at: up to
    :data:`DENSE_QUERY_SECONDS`, :func:`query_hop_frames` and the number of grids that makes; longer, the
    catalog's own chunk hop and one grid."""
    hop = int(frontend.chunk_hop_frames)
    if seconds > DENSE_QUERY_SECONDS:
        return hop, 1
    q = query_hop_frames(frontend)
    return q, hop // q


def moment_scores(queries: Sequence[np.ndarray], track_chunks: Sequence[np.ndarray]) -> np.ndarray:
    """Score of every (query, track): the mean over the query's chunks of their best cosine in the track.

    queries: per query, unit chunk embeddings [shape=(q_i, d)]; track_chunks: per track [shape=(n_j, d)]
    -> [shape=(Q, T)] in [-1, 1]. A track without chunks scores -1.
    """
    out = np.full((len(queries), len(track_chunks)), -1.0, dtype=np.float64)
    have = [j for j, c in enumerate(track_chunks) if len(c)]
    if not have or not len(queries):
        return out
    parts = [np.asarray(track_chunks[j], np.float32) for j in have]
    bounds = np.cumsum([0] + [len(c) for c in parts])
    C = np.concatenate(parts)
    for i, q in enumerate(queries):
        q = np.asarray(q, np.float32)
        if not len(q):
            continue
        best = np.maximum.reduceat(q @ C.T, bounds[:-1], axis=1)  # (q_i, T')
        out[i, have] = best.mean(axis=0)
    return out


def similar_scores(song_cosines: np.ndarray, query_chunks: np.ndarray, track_chunks: Sequence[np.ndarray], *,
                   phases: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(scores, moment scores) [shape=(T,)] of tracks for one file query: :data:`SONG_WEIGHT` x each track's
    song cosine (``song_cosines`` [shape=(T,)], the query's song embedding against the track's) plus the rest
    x its moment score (``query_chunks`` [shape=(q, d)] against ``track_chunks``). With ``phases`` p, the query's chunks
    are p interleaved grids (every p-th chunk), and a track's moment score is that of its best-aligned grid:
    a file in the catalog scores 1."""
    q = np.asarray(query_chunks, np.float32)
    grids = [q[i::phases] for i in range(max(1, phases)) if len(q[i::phases])]
    moments = moment_scores(grids, track_chunks).max(axis=0) if grids else moment_scores([q], track_chunks)[0]
    return SONG_WEIGHT * np.asarray(song_cosines, np.float64) + (1.0 - SONG_WEIGHT) * moments, moments
