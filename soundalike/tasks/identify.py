""""Where did this come from?": find an excerpt's track and offset in a catalog, or say it is not there."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundalike.errors import ParameterError
from soundalike.limits import DEFAULT_MAX_DURATION

if TYPE_CHECKING:
    from soundalike.index.catalog import Catalog, Track


@dataclass
class IdentifyMatch:
    """One candidate source of an excerpt."""

    rank: int
    track: Track
    offset: float  # seconds into the track where the excerpt starts
    confidence: float  # calibrated probability that this is the source
    score: float  # raw vote score in [0, 1]
    windows: int  # excerpt windows that agree on this offset

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "offset": round(self.offset, 3), "confidence": round(self.confidence, 4),
                "score": round(self.score, 4), "windows": self.windows, **self.track.to_dict()}


@dataclass
class Identification:
    """The answer to ``identify``: ``match`` is the best candidate, or ``None`` for "no match"."""

    query: str
    duration: float  # seconds of excerpt used
    threshold: float  # confidence a match needs
    candidates: list[IdentifyMatch] = field(default_factory=list)
    seconds: float = 0.0  # time taken (decode + fingerprint + search + vote)

    @property
    def match(self) -> IdentifyMatch | None:
        if self.candidates and self.candidates[0].confidence >= self.threshold:
            return self.candidates[0]
        return None

    def to_dict(self) -> dict[str, Any]:
        m = self.match
        return {"query": self.query, "duration": round(self.duration, 3), "matched": m is not None,
                "match": m.to_dict() if m else None, "threshold": self.threshold,
                "candidates": [c.to_dict() for c in self.candidates], "seconds": round(self.seconds, 4)}


def identify_waveform(catalog: Catalog, y: Any, sr: int, *, top: int = 5, query: str = "<waveform>") -> Identification:
    """Identify a mono waveform ``y`` at ``sr`` Hz against ``catalog``."""
    if top < 1:
        raise ParameterError("top must be at least 1")
    t0 = time.perf_counter()
    fp = catalog.fingerprinter
    cands = fp.match(catalog.binary_index(), y, sr, top=top)
    by_id = {t.id: t for t in catalog.tracks([c.track_id for c in cands])}
    out = [IdentifyMatch(i + 1, by_id[c.track_id], c.offset, c.confidence, c.score, c.windows)
           for i, c in enumerate(c for c in cands if c.track_id in by_id)]
    return Identification(query, len(y) / sr, fp.calibration.threshold, out, time.perf_counter() - t0)


def identify(catalog: Catalog, query: str | Path, *, offset: float = 0.0, duration: float | None = None,
             top: int = 5, max_duration: float | None = DEFAULT_MAX_DURATION) -> Identification:
    """Identify the audio file ``query`` (``offset``/``duration`` pick an excerpt of it; longer than
    ``max_duration`` seconds is refused)."""
    from soundalike.audio.io import decode

    t0 = time.perf_counter()
    fp = catalog.fingerprinter
    audio = decode(query, sr=fp.sample_rate, offset=offset, duration=duration, max_duration=max_duration,
                   require_sound=True)
    res = identify_waveform(catalog, audio.samples, audio.sr, top=top, query=str(query))
    res.seconds = time.perf_counter() - t0
    return res
