"""Instant mixes: a playlist from a catalog track, an audio file or a user's taste, for the CLI and the API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from soundalike.errors import ParameterError, TrackNotFoundError
from soundalike.limits import DEFAULT_MAX_DURATION

if TYPE_CHECKING:
    from soundalike.index.catalog import Catalog
    from soundalike.recommend.playlist import Playlist


def _seed_track(catalog: Catalog, seed: str | int | Path) -> int | None:
    """The catalog track ``seed`` names (an id, or a path the catalog holds), else None (an audio file)."""
    from soundalike.tasks.similar import as_track_id

    track_id = as_track_id(seed)
    if track_id is not None:
        return catalog.track(track_id).id  # TrackNotFoundError for an unknown id
    try:
        return catalog.track(str(seed)).id
    except TrackNotFoundError:
        return None


def playlist(catalog: Catalog, seed: str | int | Path | None = None, *, user: str | None = None, n: int = 30,
             max_per: int | None = None, per: str = "artist", tempo_weight: float = 0.5,
             max_duration: float | None = DEFAULT_MAX_DURATION) -> Playlist:
    """An instant mix of ``n`` catalog tracks (each once) around ``seed`` (a track id, a catalog track's path or
    an audio file) or ``user``'s taste (their listens), at most ``max_per`` per ``per`` (artist, label or
    album), ordered so that each step is small (:func:`soundalike.recommend.playlist.order_tracks`). A seed
    track opens its own mix; otherwise the track nearest the seed does."""
    from soundalike.recommend.playlist import Playlist, order_tracks, pick_tracks, step_costs
    from soundalike.recommend.rank import profile
    from soundalike.tasks.similar import embed_query_file, query_song

    if (seed is None) == (user is None):
        raise ParameterError("give a seed (a track id, a catalog path or an audio file) or --user, one of them")
    if n < 2:
        raise ParameterError("a playlist has at least 2 tracks")
    ids, songs = catalog.song_matrix()
    if not len(ids):
        raise ParameterError("the catalog holds no tracks yet; `soundalike index MUSIC --catalog DIR` adds them")
    seed_id = None
    if user is not None:
        vector, _ = profile(catalog, user, ids, songs)
        label = f"user {user}"
    else:
        seed_id = _seed_track(catalog, seed)  # type: ignore[arg-type]
        if seed_id is not None:
            vector = catalog.embeddings(seed_id)[1]
            label = f"track {seed_id}"
        elif os.path.exists(str(seed)):
            chunks, phases = embed_query_file(catalog, str(seed), max_duration=max_duration)
            vector = query_song(catalog.encoder, chunks, phases)
            label = Path(str(seed)).name
        else:
            raise TrackNotFoundError(f"{seed!r} is neither an audio file nor a track of catalog {catalog.root}")
    picked = pick_tracks(ids, songs, vector, catalog.tracks, n=n, max_per=max_per, per=per)
    if seed_id is not None:  # the seed track opens its mix
        first = next((k for k, i in enumerate(picked) if int(ids[i]) == seed_id), None)
        if first is None:  # capped out by its own group: it still opens, one fewer of the rest
            picked = [int(np.flatnonzero(ids == seed_id)[0]), *picked[: n - 1]]
        else:
            picked.insert(0, picked.pop(first))
    chosen = [int(ids[i]) for i in picked]
    tempos = _tempos(catalog, chosen)
    cost = step_costs(songs[picked], tempos, tempo_weight)
    order = order_tracks(cost, start=0)
    rows = {t.id: t for t in catalog.tracks(chosen)}
    tracks = [rows[chosen[o]] for o in order]
    steps = [float(cost[a, b]) for a, b in zip(order[:-1], order[1:], strict=True)]
    return Playlist(label, tracks, steps, {"max_per": max_per, "per": per} if max_per else {})


def _tempos(catalog: Catalog, ids: list[int]) -> np.ndarray | None:
    """Each track's stored tempo (NaN where there is none), or None for a catalog that keeps no tempo."""
    if not catalog.rhythm.enabled:
        return None
    out = []
    for tid in ids:
        r: Any = catalog.track_rhythm(tid)
        out.append(float(r["tempo"]) if r and r.get("tempo") else float("nan"))
    return np.asarray(out)
