""""What sounds like this?": cosine similarity of song embeddings, or Hamming distance of hash codes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from soundalike.errors import ParameterError, TrackNotFoundError
from soundalike.limits import DEFAULT_MAX_DURATION

if TYPE_CHECKING:
    from soundalike.index.catalog import Catalog, Match


def _as_track_id(query: str | Path | int) -> int | None:
    if isinstance(query, int):
        return query
    q = str(query)
    if q.isdigit() and not os.path.exists(q):
        return int(q)
    return None


def similar(catalog: Catalog, query: str | Path | int, *, k: int = 10, offset: float = 0.0,
            duration: float | None = None, hash: bool = False,
            where: Sequence[str] | str | None = None, max_duration: float | None = DEFAULT_MAX_DURATION) -> list[Match]:
    """Tracks of ``catalog`` most similar to ``query`` (an audio file or a track id), best first.

    ``hash=True`` ranks by the Hamming distance of the catalog's hash codes. ``where`` (``"tag:piano>0.5"``,
    several conditions all hold) keeps only the tracks whose stored tags meet it. A file longer than
    ``max_duration`` seconds is refused; a long one is read in bounded memory.
    """
    from soundalike.inference.embed import Embedder

    if k < 1:
        raise ParameterError("k must be at least 1")
    allow = catalog.filter_tracks(where) if where else None
    if allow is not None and not len(allow):
        return []
    track_id = _as_track_id(query)
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
    emb = Embedder(catalog.encoder, max_duration=max_duration).embed_file(str(query), offset=offset, duration=duration)
    return catalog.search(emb.song, k=k, allow=allow)
