""""What is this?": tag scores of an audio file, or the stored tags of a catalog track."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from soundalike.errors import SoundalikeError, TrackNotFoundError
from soundalike.limits import DEFAULT_MAX_DURATION

if TYPE_CHECKING:
    from soundalike.index.catalog import Catalog
    from soundalike.tagging.tagger import TagResult


def tag_query(query: str, *, catalog: Catalog | None = None, heads: Any = None, model: Any = None,
              offset: float = 0.0, duration: float | None = None,
              max_duration: float | None = DEFAULT_MAX_DURATION, restore: bool = False) -> TagResult:
    """Tags of ``query``. With a ``catalog``: a track id or path gives its stored tags, and an audio file not in
    it is tagged with the catalog's heads. Without: ``query`` is an audio file, tagged with ``heads`` (default:
    the shipped ones) on ``model``. ``offset``/``duration`` pick an excerpt of a file; ``restore`` cleans a
    file up first (noise out, clipped peaks back: :func:`soundalike.restore.restore_waveform`)."""
    from soundalike.tagging.tagger import load_tagger

    if catalog is not None:
        if not (restore and os.path.isfile(query)):  # a file to restore is tagged, not looked up
            try:
                return catalog.track_tags(query)
            except TrackNotFoundError:
                if not os.path.isfile(query):
                    raise
        return catalog.tagger.tag_file(query, offset=offset, duration=duration, max_duration=max_duration,
                                       restore=restore)
    if not os.path.exists(query):
        raise SoundalikeError(f"{query} does not exist (a track id needs --catalog DIR)")
    return load_tagger(heads, model=model).tag_file(query, offset=offset, duration=duration,
                                                    max_duration=max_duration, restore=restore)


def tag_names(*, catalog: Catalog | None = None, heads: Any = None, model: Any = None) -> tuple[str, ...]:
    """The tags a catalog keeps, or that ``heads`` on ``model`` give."""
    from soundalike.tagging.tagger import load_tagger

    return catalog.tag_names if catalog is not None else tuple(load_tagger(heads, model=model).tags)
