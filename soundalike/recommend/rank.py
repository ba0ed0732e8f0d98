"""Recommendations for a user (from their listens) or from a seed track.

Three rankings (``method``):

- ``hybrid`` (default): the blend of :mod:`soundalike.recommend.hybrid`: ALS over everyone's listens for
  tracks with history, audio for tracks nobody has played yet, with the blend weight and the cold-track
  offset tuned on held-out listens;
- ``audio``: cosine similarity of each song embedding to the user's taste profile (the log(1 + plays)-
  weighted mean of the embeddings of what they played) or to the seed track;
- ``als``: collaborative filtering only (a track nobody has played scores 0).

Tracks already heard are left out, a diversity cap limits tracks per album, artist or label, and every
answer says why: "listeners of Y also played this" when the listening-history part carries it and other
users played both, else "sounds like X you played" (X: the heard track whose embedding is nearest). Ties go
to the lower track id, so a ranking is repeatable.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from soundalike.errors import ParameterError

DIVERSITY_KEYS = ("album", "artist", "label")
METHODS = ("hybrid", "audio", "als")


@dataclass
class Recommendation:
    rank: int
    score: float  # the ranking's score (hybrid: the blend of standardised parts; audio: cosine similarity)
    track: Any  # catalog Track
    reason: str
    because: int | None  # the heard (or seed) track the reason names
    source: str = "audio"  # which part carries it: "audio" or "listeners"
    new: bool = False  # nobody has played it (a cold-start track)
    parts: dict[str, float] | None = None  # the blend's weighted parts: {"listeners": .., "audio": ..}

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "score": round(self.score, 6), "reason": self.reason, "because": self.because,
                "source": self.source, "new": self.new,
                "parts": None if self.parts is None else {k: round(v, 6) for k, v in self.parts.items()},
                **self.track.to_dict()}


@dataclass
class Ranking:
    """What :func:`recommend_ranking` returns: the recommendations and how they were ranked."""

    method: str
    recommendations: list[Recommendation]
    blend: dict[str, Any]  # weight, offset, whether they were tuned, and the tuning's figures

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "blend": self.blend,
                "recommendations": [r.to_dict() for r in self.recommendations]}


def group_of(track: Any, key: str) -> str | None:
    """What ``max_per`` counts a track by: its ``key`` (artist or album: the track's own, which already falls
    back to the manifest's, see :class:`~soundalike.index.rows.Track`; label: the manifest's label or
    collection), None when it has none (never capped)."""
    if key == "label":
        v = track.labels.get("label") or track.labels.get("collection")
    else:
        v = getattr(track, key, None)
    return None if v is None else str(v)


def profile(catalog: Any, user: str, ids: np.ndarray, songs: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """(unit taste vector, the tracks they played): the same profile the blend is tuned with
    (:func:`soundalike.recommend.hybrid.profiles`: weights log(1 + plays), plays summed per track)."""
    from soundalike.recommend.hybrid import Listens, profiles

    rows = catalog.listens(user)
    if not rows:
        raise ParameterError(f"user {user!r} has no listens in this catalog; "
                             "`soundalike listens import FILE.csv` adds them")
    plays = Listens.from_rows(rows, ids, [user]).plays
    return profiles(plays, songs)[0], sorted({int(t) for _, t, _, _ in rows})


def _has_listens(catalog: Any) -> bool:
    return catalog.has_listens()


def recommend(catalog: Any, **kwargs: Any) -> list[Recommendation]:
    """The ``k`` tracks that best fit ``user``'s listening (or follow ``seed_track``), best first, each with
    its reason; see :func:`recommend_ranking` for the arguments. The list renders as a table in Jupyter
    (:class:`~soundalike.tasks.display.Recommendations`)."""
    from soundalike.tasks.display import Recommendations

    return Recommendations.of(recommend_ranking(catalog, **kwargs).recommendations, catalog)


def recommend_ranking(catalog: Any, *, user: str | None = None, seed_track: int | None = None, k: int = 20,
                      max_per: int | None = None, per: str = "album", exclude_heard: bool = True,
                      method: str = "hybrid") -> Ranking:
    """Rank the catalog for ``user`` or ``seed_track`` (one of them) with ``method`` (hybrid, audio, als).

    ``max_per``: at most that many tracks sharing one ``per`` (album, artist or label). A catalog without
    listens ranks by audio alone; so does ``hybrid`` while there are too few listens to tune the blend.
    """
    from soundalike.recommend.hybrid import components, model_for

    if (user is None) == (seed_track is None):
        raise ParameterError("give a user or a seed track (one of them)")
    if k < 1 or (max_per is not None and max_per < 1):
        raise ParameterError("k and max_per must be at least 1")
    if per not in DIVERSITY_KEYS:
        raise ParameterError(f"per must be one of {', '.join(DIVERSITY_KEYS)}")
    if method not in METHODS:
        raise ParameterError(f"method must be one of {', '.join(METHODS)}")
    ids, songs = catalog.song_matrix()
    if user is not None:
        taste, heard = profile(catalog, user, ids, songs)
    else:
        seed = int(seed_track or 0)
        catalog.track(seed)  # TrackNotFoundError for an unknown id
        taste, heard = catalog.embeddings(seed)[1].astype(np.float32), [seed]
    known = set(ids.tolist())
    anchors = [t for t in heard if t in known]
    skip = np.isin(ids, heard) if (exclude_heard or seed_track is not None) else np.zeros(len(ids), bool)

    model = None
    if method == "audio" or not _has_listens(catalog):
        weight, offset = 0.0, 0.0
        blend: dict[str, Any] = {"weight": 0.0, "offset": 0.0, "tuned": False,
                                 "note": "audio only" if method == "audio" else "the catalog has no listens: audio only"}
        if method == "als":
            raise ParameterError("this catalog has no listens for ALS; `soundalike listens import FILE.csv` adds them")
    else:
        model = model_for(catalog)
        tun = model.tuning
        # the cold-track offset is tuned on users' next plays; from a seed track, tracks are ranked on their
        # standardised parts alone
        weight, offset = (1.0, 0.0) if method == "als" else (tun.weight, tun.offset if user is not None else 0.0)
        blend = {"weight": weight, "offset": offset, "tuned": tun.tuned and method == "hybrid", "note": tun.note,
                 "validation_ndcg": tun.ndcg, "validation_audio_ndcg": tun.audio_ndcg,
                 "validation_als_ndcg": tun.als_ndcg}
    if model is not None:
        items, warm = model.item_factors(ids, songs)
        if method == "als":
            items[~warm] = 0.0  # ALS alone knows nothing of a track nobody played
        if user is not None:
            query = model.factors.user[model.user_row(user)]
        else:
            unit = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
            query, items = unit[np.searchsorted(ids, seed)], unit  # cosine of item factors
        comp = components(query[None], items, taste[None], songs, ~warm, skip[None])
        scores = comp.blend(weight, offset)[0]
        cf_part, audio_part = weight * comp.cf[0], (1.0 - weight) * comp.audio[0]
    else:
        warm = np.zeros(len(ids), bool)
        scores = np.where(skip, -np.inf, songs @ taste)
        cf_part = audio_part = None

    order = np.lexsort((ids, -scores))  # best score first, then lower id
    anchor_vecs = np.stack([songs[np.searchsorted(ids, a)] for a in anchors]) if anchors else None
    names = {t.id: t for t in catalog.tracks(anchors)}
    who = "you played" if user is not None else "(the seed)"
    counts: Counter[str] = Counter()
    out: list[Recommendation] = []
    for i in order:
        if not np.isfinite(scores[i]):
            break
        tid = int(ids[i])
        track = catalog.track(tid)
        group = group_of(track, per) if max_per else None
        if group is not None and counts[group] >= (max_per or 0):
            continue
        rec = Recommendation(len(out) + 1, float(scores[i]), track, "close to your listening", None,
                             new=model is not None and not bool(warm[i]))
        if cf_part is not None and audio_part is not None:
            rec.parts = {"listeners": float(cf_part[i]), "audio": float(audio_part[i])}
        if model is not None and warm[i] and cf_part is not None and (audio_part is None or cf_part[i] > audio_part[i]):
            co = model.co_listeners(tid, anchors)
            if len(co) and co.max() > 0:
                j = int(np.argmax(co))  # ties: the lower id
                rec.because, rec.source = int(anchors[j]), "listeners"
                n = int(co[j])
                rec.reason = (f"listeners of {names[anchors[j]].display_name} also played this "
                              f"({n} listener{'s' if n != 1 else ''})")
        if rec.source == "audio" and anchor_vecs is not None:
            j = int(np.argmax(anchor_vecs @ songs[i]))
            rec.because = int(anchors[j])
            rec.reason = f"sounds like {names[rec.because].display_name} {who}"
            if rec.new:
                rec.reason += "; new: nobody has played it yet"
        if group is not None:
            counts[group] += 1
        out.append(rec)
        if len(out) == k:
            break
    return Ranking(method, out, blend)
