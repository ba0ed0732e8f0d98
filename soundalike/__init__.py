"""soundalike: music similarity from log-mel CNN embeddings.

Public API (heavy modules load on first use)::

    from soundalike import Catalog, similar, identify, tag
    cat = Catalog.create("my.catalog")   # the store: tracks, embeddings, side data, a vector index
    cat.add(["music/"])
    similar(cat, "query.mp3", k=10)      # "what sounds like this?" (a file or a track id)
    identify(cat, "clip.wav").match      # "where did this come from?": track + offset, or None
    similar(cat, "query.mp3", hash=True)  # by Hamming distance of hash codes (index with a hash model)
    similar(cat, "query.mp3", where="tag:piano>0.5")  # only tracks whose stored tags pass
    tag("song.mp3").top(5)               # "what is this?": tag scores, .timeline per ~1.5 s chunk
    events("song.mp3").tempo             # "what happens when?": onsets, beats, tempo, drum hits
    transcribe("song.mp3").notes         # "which notes?": onset, offset, pitch, velocity (and MIDI files)
    restore(y, sr)                       # "clean it up": noise out, clipped peaks back (same shape and rate)
    playlist(cat, 3, n=30).tracks        # an instant mix around track 3, each step a small one
    from soundalike.recommend import recommend
    from soundalike.recommend.listens import import_listens
    import_listens(cat, "listens.csv")
    recommend(cat, user="ana", k=20)     # hybrid of ALS on listens and audio, each with its reason
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from soundalike.errors import (
    AudioDecodeError,
    CatalogError,
    CatalogMismatchError,
    ModelError,
    ParameterError,
    SoundalikeError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from soundalike.fingerprint import load_fingerprinter
    from soundalike.hashing.coder import load_hasher
    from soundalike.index.catalog import Catalog
    from soundalike.inference.embed import embed
    from soundalike.models.factory import create_encoder, load_encoder
    from soundalike.tagging.tagger import load_tagger, tag
    from soundalike.tasks.identify import identify
    from soundalike.tasks.similar import analyse, similar

_LAZY = {
    "Catalog": ("soundalike.index.catalog", "Catalog"),
    "embed": ("soundalike.inference.embed", "embed"),
    "load_encoder": ("soundalike.models.factory", "load_encoder"),
    "create_encoder": ("soundalike.models.factory", "create_encoder"),
    "load_fingerprinter": ("soundalike.fingerprint", "load_fingerprinter"),
    "load_hasher": ("soundalike.hashing.coder", "load_hasher"),
    "tag": ("soundalike.tagging.tagger", "tag"),
    "load_tagger": ("soundalike.tagging.tagger", "load_tagger"),
    "similar": ("soundalike.tasks.similar", "similar"),
    "analyse": ("soundalike.tasks.similar", "analyse"),
    "identify": ("soundalike.tasks.identify", "identify"),
    "events": ("soundalike.events", ""),  # the package, callable: soundalike.events("song.mp3")
    "transcribe": ("soundalike.transcribe", ""),  # the package, callable: soundalike.transcribe("song.mp3")
    "restore": ("soundalike.restore", ""),  # the package, callable: soundalike.restore(y, sr)
    "playlist": ("soundalike.tasks.playlist", "playlist"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        module = importlib.import_module(mod)
        return getattr(module, attr) if attr else module
    raise AttributeError(f"module 'soundalike' has no attribute {name!r}")


__all__ = [
    "AudioDecodeError",
    "Catalog",
    "CatalogError",
    "CatalogMismatchError",
    "ModelError",
    "ParameterError",
    "SoundalikeError",
    "__version__",
    "create_encoder",
    "embed",
    "load_encoder",
    "load_fingerprinter",
    "load_hasher",
    "load_tagger",
    "tag",
    "similar",
    "analyse",
    "identify",
    "events",
    "transcribe",
    "restore",
    "playlist",
]
