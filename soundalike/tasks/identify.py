""""Where did this come from?": find an excerpt's track and offset in a catalog, or say it is not there."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

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
    evidence: dict[str, float] = field(default_factory=dict)  # margin, offset_margin, steadiness (calibration's)

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "offset": round(self.offset, 3), "confidence": round(self.confidence, 4),
                "score": round(self.score, 4), "windows": self.windows,
                **{k: round(v, 4) for k, v in self.evidence.items()}, **self.track.to_dict()}


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

    def to_pandas(self) -> Any:
        """One row per candidate: rank, offset, confidence, score, windows, evidence and the track's fields."""
        from soundalike.tasks.display import to_frame

        return to_frame([c.to_dict() for c in self.candidates])

    def _repr_html_(self) -> str:
        import html

        from soundalike.tasks.display import bar, player, table_html, track_cell

        m = self.match
        head = (f"{html.escape(self.query)}: " + (f"{html.escape(m.track.display_name)} at {m.offset:.1f} s"
                                                   if m else f"no match (threshold {self.threshold:.2f})"))
        rows = [[str(c.rank), f"{c.offset:.1f} s", bar(c.confidence), track_cell(c.track), player(c.track)]
                for c in self.candidates]
        return table_html(["#", "offset", "confidence", "track", "listen"], rows, head)

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
    cands = fp.match(catalog.window_index(), y, sr, top=top)
    by_id = {t.id: t for t in catalog.tracks([c.track_id for c in cands])}
    out = [IdentifyMatch(i + 1, by_id[c.track_id], c.offset, c.confidence, c.score, c.windows,
                         {"margin": c.margin, "offset_margin": c.offset_margin, "steadiness": c.steadiness})
           for i, c in enumerate(c for c in cands if c.track_id in by_id)]
    return Identification(query, len(y) / sr, fp.calibration.threshold, out, time.perf_counter() - t0)


def identify(catalog: Catalog, query: str | Path, *, offset: float = 0.0, duration: float | None = None,
             top: int = 5, max_duration: float | None = DEFAULT_MAX_DURATION, restore: bool = False) -> Identification:
    """Identify the audio file ``query`` (``offset``/``duration`` pick an excerpt of it; longer than
    ``max_duration`` seconds is refused). ``restore``: the excerpt is cleaned up first (noise out, clipped
    peaks back: :func:`soundalike.restore.restore_waveform`)."""
    from soundalike.audio.io import decode

    t0 = time.perf_counter()
    fp = catalog.fingerprinter
    audio = decode(query, sr=fp.sample_rate, offset=offset, duration=duration, max_duration=max_duration,
                   require_sound=True)
    y = audio.samples
    if restore:
        from soundalike.restore import restore_waveform

        y = restore_waveform(y, audio.sr)
    res = identify_waveform(catalog, y, audio.sr, top=top, query=str(query))
    res.seconds = time.perf_counter() - t0
    return res


@dataclass
class Segmentation:
    """The answer to ``identify --segments``: the catalog tracks heard in a recording, and the gaps."""

    query: str
    duration: float  # seconds of recording analysed (from the offset asked)
    segments: list[Any]  # fingerprint.segments.Segment, with ``track`` filled in: see :meth:`to_dict`
    tracks: dict[int, Track]
    gaps: list[tuple[float, float]]
    seconds: float = 0.0  # time taken

    def to_dict(self) -> dict[str, Any]:
        segs = []
        for s in self.segments:
            t = self.tracks.get(s.track_id)
            segs.append({**s.to_dict(), **(t.to_dict() if t is not None else {})})
        return {"query": self.query, "duration": round(self.duration, 3), "segments": segs,
                "gaps": [{"start": a, "end": b} for a, b in self.gaps], "seconds": round(self.seconds, 3)}


def identify_segments(catalog: Catalog, recording: str | Path, *, config: Any = None, offset: float = 0.0,
                      duration: float | None = None, max_duration: float | None = DEFAULT_MAX_DURATION,
                      progress: bool = False) -> Segmentation:
    """Every catalog track heard in a long ``recording`` (a mix, a broadcast), with its start and end in
    the recording, the offset into the track, and the gaps where nothing matched (``config``: a
    :class:`~soundalike.fingerprint.segments.SegmentConfig`). The file is read in bounded memory (a few
    minutes of audio at a time); ``progress`` shows a bar; ``offset``/``duration`` pick a part of it (times
    stay the recording's); a recording longer than ``max_duration`` seconds is refused."""
    from soundalike.audio.io import declared_span, decode_windows
    from soundalike.fingerprint.segments import SegmentConfig, find_segments, gaps

    cfg = config or SegmentConfig()
    t_start = time.perf_counter()
    fp = catalog.fingerprinter
    index = catalog.window_index()
    sr = fp.sample_rate
    hop_frames = fp.query_hop_frames_default()
    step = hop_frames * fp.fe.hop_length
    total = declared_span(recording, offset=offset, duration=duration)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=round(total) if total else None, unit="s", desc="fingerprinting", dynamic_ncols=True)
    codes, times, margins = [], [], []
    seconds = 0.0
    for start, lo, hi, audio in decode_windows(recording, sr=sr, step=step, extra=fp.fe.chunk_samples, offset=offset,
                                               duration=duration, max_duration=max_duration):
        y = audio.samples
        seconds = max(seconds, (start + len(y)) / sr)
        if len(y) < 0.5 * sr:
            continue
        c, t, m = fp.query_windows(y, sr, hop_frames)
        pos = start + np.round(t * sr).astype(np.int64)
        keep = (pos >= lo) & (pos < hi if hi is not None else True)
        codes.append(c[keep])
        margins.append(m[keep])
        times.append(pos[keep] / sr)
        if bar is not None:
            bar.update(round((hi if hi is not None else start + len(y)) / sr) - bar.n)
    if bar is not None:
        bar.close()
    all_codes = np.concatenate(codes) if codes else np.zeros((0, fp.bits // 8), np.uint8)
    all_times = np.concatenate(times) if times else np.zeros(0)
    all_margins = np.concatenate(margins) if margins else np.zeros((0, fp.bits), np.float16)
    segs = find_segments(fp, index, all_codes, all_times, seconds, cfg, all_margins)
    tracks = {t.id: t for t in catalog.tracks(sorted({s.track_id for s in segs}))}
    segs = [s for s in segs if s.track_id in tracks]  # a track removed meanwhile
    holes = gaps(segs, seconds)
    for sg in segs:  # the recording's own clock
        sg.start, sg.end = sg.start + offset, sg.end + offset
    return Segmentation(str(recording), seconds, segs, tracks, [(a + offset, b + offset) for a, b in holes],
                        time.perf_counter() - t_start)
