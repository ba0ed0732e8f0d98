"""Recommendations from audio: a user's taste profile is the play-weighted mean of the song embeddings of the
tracks they played; candidates are ranked by cosine similarity to it (or to a seed track), tracks already
heard are left out, a diversity cap limits tracks per album, artist or label, and every answer says why
("sounds like X you played").

This is the audio side of the hybrid ranker that issue 9 asks for; listening-history collaborative
filtering (ALS) and the learned blend are not built yet.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from soundalike.errors import ParameterError

DIVERSITY_KEYS = ("album", "artist", "label")


@dataclass
class Recommendation:
    rank: int
    score: float  # cosine similarity to the profile (or the seed track)
    track: Any  # catalog Track
    reason: str
    because: int | None  # the heard (or seed) track it sounds most like

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "score": round(self.score, 6), "reason": self.reason, "because": self.because,
                **self.track.to_dict()}


def _group(track: Any, key: str) -> str | None:
    if key == "label":
        v = track.labels.get("label") or track.labels.get("collection")
    else:
        v = getattr(track, key, None) or track.labels.get(key)
    return None if v is None else str(v)


def profile(catalog: Any, user: str) -> tuple[np.ndarray, dict[int, float]]:
    """(unit taste vector, weight of each heard track): weights are log(1 + plays), summed over listens."""
    rows = catalog.listens(user)
    if not rows:
        raise ParameterError(f"user {user!r} has no listens in catalog {catalog.root}; "
                             "`soundalike listens import FILE.csv` adds them")
    weights: dict[int, float] = {}
    for _, tid, _, plays in rows:
        weights[tid] = weights.get(tid, 0.0) + float(np.log1p(plays))
    vec = np.zeros(int(catalog._meta("embed_dim")), np.float64)
    for tid, w in weights.items():
        vec += w * catalog.embeddings(tid)[1]
    norm = float(np.linalg.norm(vec))
    return (vec / norm if norm > 0 else vec).astype(np.float32), weights


def recommend(catalog: Any, *, user: str | None = None, seed_track: int | None = None, k: int = 20,
              max_per: int | None = None, per: str = "album", exclude_heard: bool = True) -> list[Recommendation]:
    """The ``k`` tracks that best fit ``user``'s listening (or sound most like ``seed_track``), best first.

    ``max_per``: at most that many tracks sharing one ``per`` (album, artist or label). Deterministic: ties
    go to the lower track id.
    """
    if (user is None) == (seed_track is None):
        raise ParameterError("give a user or a seed track (one of them)")
    if k < 1 or (max_per is not None and max_per < 1):
        raise ParameterError("k and max_per must be at least 1")
    if per not in DIVERSITY_KEYS:
        raise ParameterError(f"per must be one of {', '.join(DIVERSITY_KEYS)}")
    ids, songs = catalog._song_matrix(int(catalog._meta("embed_dim")))
    if user is not None:
        query, heard = profile(catalog, user)
        anchors = [t for t in heard if t in set(ids.tolist())]
    else:
        seed = int(seed_track or 0)
        catalog.track(seed)  # TrackNotFoundError for an unknown id
        query = catalog.embeddings(seed)[1]
        heard, anchors = {seed: 1.0}, [seed]
    scores = songs @ query
    order = np.lexsort((ids, -scores))  # best score first, then lower id
    skip = set(heard) if (exclude_heard or seed_track is not None) else set()
    anchor_vecs = np.stack([songs[np.searchsorted(ids, a)] for a in anchors]) if anchors else None
    names = {t.id: t for t in catalog.tracks([int(a) for a in anchors])}
    counts: Counter[str] = Counter()
    out: list[Recommendation] = []
    for i in order:
        tid = int(ids[i])
        if tid in skip:
            continue
        track = catalog.track(tid)
        group = _group(track, per) if max_per else None
        if group is not None and counts[group] >= (max_per or 0):
            continue
        because, reason = None, "close to your listening"
        if anchor_vecs is not None:
            j = int(np.argmax(anchor_vecs @ songs[i]))
            because = int(anchors[j])
            who = "you played" if user is not None else "(the seed)"
            reason = f"sounds like {names[because].display_name} {who}"
        if group is not None:
            counts[group] += 1
        out.append(Recommendation(len(out) + 1, float(scores[i]), track, reason, because))
        if len(out) == k:
            break
    return out
