"""The catalog's row types: a track, a search match, and the report of one indexing run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: The manifest fields a track's title, artist, album and genre fall back to where its file has no such tag.
_MANIFEST_NAMES = {"title": ("title",), "artist": ("artist", "composer"), "album": ("album",),
                   "genre": ("genre",)}


@dataclass
class Track:
    """One catalog row, without its embeddings. ``title``, ``artist``, ``album`` and ``genre`` are the file's
    tags, else the manifest's fields of the same name (``artist``: else its ``composer``)."""

    id: int
    path: str
    duration: float
    file_hash: str
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    genre: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    n_chunks: int = 0

    def __post_init__(self) -> None:
        # title, artist, album, genre: the file's own tags, else the manifest's fields of the same name (and a
        # composer for the artist: rendered classical works name one and no performer)
        for key, names in _MANIFEST_NAMES.items():
            if not getattr(self, key):
                shown = next((str(v) for v in (self.labels.get(n) for n in names)
                              if v is not None and not isinstance(v, (dict, list)) and str(v).strip()), None)
                if shown is not None:
                    setattr(self, key, shown.strip())

    @property
    def display_name(self) -> str:
        if self.title and self.artist:
            return f"{self.artist} - {self.title}"
        return self.title or Path(self.path).name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Match:
    """One answer to a similarity query."""

    rank: int
    score: float  # cosine of song embeddings in [-1, 1] (a file query: see song_score); hash codes: 1 - hamming / bits
    track: Track
    hamming: int | None = None  # differing bits, for a search over hash codes
    song_score: float | None = None  # for a file query: the song-embedding cosine, and
    moment_score: float | None = None  # how well its chunks find twins in the track (score = their mean)

    def to_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {} if self.hamming is None else {"hamming": int(self.hamming)}
        if self.song_score is not None and self.moment_score is not None:
            extra.update(song_score=round(float(self.song_score), 6), moment_score=round(float(self.moment_score), 6))
        return {"rank": self.rank, "score": round(float(self.score), 6), **extra, **self.track.to_dict()}


@dataclass
class IndexReport:
    """What one ``add`` run did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0  # same content as a track already embedded: embeddings copied
    pruned: int = 0
    fingerprinted: int = 0  # tracks already in the catalog that got their missing fingerprints
    hashed: int = 0  # tracks that got their hash code (catalogs made with a hash model)
    tagged: int = 0  # tracks already in the catalog that got their missing tag scores
    rhythm: int = 0  # tracks that got their tempo and rhythm descriptor (catalogs that keep them)
    notes: int = 0  # tracks that got their note feature (catalogs that keep them)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # not regular files (pipes, devices): never opened
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    #: wall seconds per stage of this run (scan: walking, stat and SHA-256; decode: waiting for the decoder
    #: thread; frontend / encoder: mels and the CNN with its tag heads; fingerprints; writes: per-track
    #: transactions; sides: side rows filled afterwards (hash codes); vector_index: the FAISS rebuild)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def timed(self, stage: str, seconds: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

    @property
    def x_realtime(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failed"] = [{"path": p, "reason": r} for p, r in self.failed]
        d["skipped"] = [{"path": p, "reason": r} for p, r in self.skipped]
        d["x_realtime"] = round(self.x_realtime, 1)
        d["stage_seconds"] = {k: round(v, 3) for k, v in self.stage_seconds.items()}
        return d
