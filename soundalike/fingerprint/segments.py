"""Catalog tracks inside a long recording (a DJ mix, a radio log, a playlist recorded in one go).

The recording is fingerprinted once, window after window, at the query hop; every code is searched in
the index once. Then an analysis window of :attr:`SegmentConfig.window` seconds slides along it every
:attr:`SegmentConfig.hop` seconds and votes like a short excerpt would (:meth:`Fingerprinter.match_codes`).
Accepted windows that name the same track (with at most :attr:`SegmentConfig.max_gap` s between them) chain
into a :class:`Segment` whose offset is the alignment most of its windows agree on (a repeat in the music
matches an earlier place too); what no segment covers is a gap. A window's centre stands for where it was
heard, so first boundaries land between the centres of the last window of one segment and the first of the
next; :func:`refine_edges` then moves each to where its track stops lining up with the recording.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from soundalike.errors import ParameterError
from soundalike.fingerprint.codes import paired_hamming

#: Another track whose score reaches this share of the best one's in a window "fits nearly as well": a run
#: on that track continues through the window instead of breaking (catalogs hold the same audio twice).
ALSO_SCORE = 0.8


@dataclass(frozen=True)
class SegmentConfig:
    window: float = 5.0  # seconds each analysis window holds (an excerpt's length)
    hop: float = 1.0  # seconds between analysis windows
    max_drift: float = 2.0  # windows whose track offset agrees within this (s) share one alignment
    max_gap: float = 10.0  # unmatched seconds a segment bridges (talk-over, a noisy passage)
    min_windows: int = 2  # a segment needs at least this many accepted windows

    def __post_init__(self) -> None:
        if self.window <= 0 or self.hop <= 0 or self.hop > self.window:
            raise ParameterError("segment windows need window > 0 and 0 < hop <= window")
        if self.max_drift < 0 or self.max_gap < 0 or self.min_windows < 1:
            raise ParameterError("max_drift and max_gap must be >= 0, min_windows >= 1")


@dataclass
class Segment:
    """One catalog track heard in the recording."""

    track_id: int
    start: float  # seconds into the recording
    end: float
    offset: float  # seconds into the track at ``start``
    confidence: float  # mean calibrated confidence of its windows
    windows: int  # accepted analysis windows in it

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("start", "end", "offset", "confidence"):
            d[k] = round(float(d[k]), 3)
        return d


def window_matches(fp: Any, index: Any, codes: np.ndarray, times: np.ndarray, duration: float,
                   config: SegmentConfig, margins: np.ndarray | None = None) -> list[tuple[float, Any]]:
    """(window start, its accepted top candidate or None) for analysis windows every ``config.hop`` s over a
    recording's codes [shape=(n, bits / 8)] at ``times`` (s), searched in ``index`` once (``margins``: their
    ``|embedding|`` per bit, for a hashed index)."""
    if len(codes) == 0:
        return []
    found = index.search_hits(codes, fp.k, margins)
    starts = np.arange(0.0, max(duration - config.window, 0.0) + 1e-9, config.hop)
    out: list[tuple[float, Any]] = []
    lo = 0
    for t0 in starts.tolist():
        while lo < len(times) and times[lo] < t0:
            lo += 1
        hi = int(np.searchsorted(times, t0 + config.window, side="left"))
        if hi - lo < 2:
            out.append((t0, None))
            continue
        sel = slice(lo, hi)
        cands = fp.match_codes(index, codes[sel], times[sel] - t0, top=3, found=found[sel])
        best = cands[0] if cands and cands[0].confidence >= fp.calibration.threshold else None
        if best is not None:  # a track that shares this audio (a theme and its remix) fits nearly as well
            best.also = {c.track_id: c.offset for c in cands[1:] if c.score >= ALSO_SCORE * best.score}
        out.append((t0, best))
    return out


def chain(matches: list[tuple[float, Any]], duration: float, config: SegmentConfig) -> list[Segment]:
    """Accepted windows -> segments (see the module's description), in recording order."""
    half = config.window / 2.0
    runs: list[list[tuple[float, Any]]] = []
    for t0, c in matches:
        if c is None:
            continue
        if runs:
            last_t, last = runs[-1][-1]
            # the same track again soon: one segment, whatever offset the window names (music repeats: a
            # loop or a chorus matches an earlier place in the track as well as the one playing)
            if t0 - last_t <= config.max_gap + config.hop and last.track_id in (c.track_id, *c.also):
                if c.track_id != last.track_id:  # the run's track fits this window nearly as well: stay on it
                    c = replace(c, track_id=last.track_id, offset=c.also[last.track_id], also={})
                runs[-1].append((t0, c))
                continue
        runs.append([(t0, c)])
    runs = [r for r in runs if len(r) >= config.min_windows]
    segs: list[Segment] = []
    for r in runs:
        first_t, first = r[0]
        last_t, _ = r[-1]
        start = first_t + half - config.hop / 2.0 if first_t > 0 else 0.0
        end = last_t + half + config.hop / 2.0 if last_t + config.window < duration - config.hop / 2 else duration
        segs.append(Segment(int(first.track_id), start, min(end, duration), 0.0,
                            float(np.mean([c.confidence for _, c in r])), len(r)))
        segs[-1].offset = max(0.0, start + _alignment(r, config.max_drift))
    for a, b in zip(segs, segs[1:], strict=False):  # touching or overlapping neighbours meet halfway
        if b.start < a.end + config.hop:
            mid = (a.end + b.start) / 2.0
            b.offset = max(0.0, b.offset + (mid - b.start))
            a.end, b.start = mid, mid
    return segs


def _alignment(run: list[tuple[float, Any]], tolerance: float) -> float:
    """Track time minus recording time that most of a run's windows agree on (within ``tolerance`` s):
    the median over the largest such group."""
    shifts = np.array([c.offset - t for t, c in run], np.float64)
    support = [(np.abs(shifts - x) <= tolerance).sum() for x in shifts]
    best = shifts[int(np.argmax(support))]
    return float(np.median(shifts[np.abs(shifts - best) <= tolerance]))


def aligned_similarity(codes: np.ndarray, times: np.ndarray, track_codes: np.ndarray, shift: float, *,
                       hop_seconds: float, bits: int) -> np.ndarray:
    """Per recording code, ``max(0, 1 - distance / (bits / 2))`` to the track window it lines up with when
    track time = recording time + ``shift``; 0 where that falls outside the track."""
    j = np.round((np.asarray(times, np.float64) + shift) / hop_seconds).astype(np.int64)
    ok = (j >= 0) & (j < len(track_codes))
    out = np.zeros(len(times), np.float64)
    if ok.any():
        out[ok] = np.clip(1.0 - paired_hamming(codes[ok], track_codes[j[ok]]) / (bits / 2.0), 0.0, 1.0)
    return out


def refine_edges(segments: list[Segment], codes: np.ndarray, times: np.ndarray, index: Any, *, hop_seconds: float,
                 bits: int, duration: float, config: SegmentConfig, smooth: float = 1.0) -> list[Segment]:
    """Move each segment's edges to where its track stops lining up with the recording: per code, the
    similarity to the track at the segment's alignment, smoothed over ``smooth`` s; an edge lies where it
    falls below half the segment's median (searched within one analysis window of the first estimate).
    Neighbours that then overlap meet where their similarities cross."""
    if not segments or not len(codes):
        return segments
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.1
    width = max(1, int(round(smooth / step)))
    kernel = np.ones(width) / width
    curves = []
    for sg in segments:
        sim = aligned_similarity(codes, times, index.track_codes(sg.track_id), sg.offset - sg.start,
                                 hop_seconds=hop_seconds, bits=bits)
        curves.append(np.convolve(sim, kernel, mode="same"))
    for sg, curve in zip(segments, curves, strict=True):
        core = (times >= sg.start) & (times < sg.end)
        if not core.any():
            continue
        excess = curve - 0.5 * float(np.median(curve[core]))  # > 0 where the track lines up
        reach = config.window
        # each edge is the change point within one window of its first estimate: before the start the
        # excess sums lowest, up to the end it sums highest (a dip inside, talk-over, moves neither)
        before = (sg.start, sg.end, sg.offset)
        a0, a1 = np.searchsorted(times, [max(0.0, sg.start - reach), sg.start + reach])
        if a1 > a0:
            run = np.concatenate([[0.0], np.cumsum(excess[a0:a1])])
            k = int(np.argmin(run))
            new_start = 0.0 if a0 == 0 and k == 0 else float(times[a0 + k] - step / 2 if a0 + k < len(times) else sg.start)
            sg.offset = max(0.0, sg.offset + (new_start - sg.start))
            sg.start = max(0.0, new_start)
        b0, b1 = np.searchsorted(times, [sg.end - reach, min(duration, sg.end + reach)])
        if b1 > b0:
            run = np.concatenate([[0.0], np.cumsum(excess[b0:b1])])
            k = int(np.argmax(run))
            sg.end = duration if b1 == len(times) and k == b1 - b0 else float(times[b0 + k - 1] + step / 2 if k else
                                                                               times[b0])
            sg.end = min(duration, sg.end)
        if sg.end - sg.start < config.hop:  # the edges crossed: keep the first estimate
            sg.start, sg.end, sg.offset = before
    for (a, ca), (b, cb) in zip(zip(segments, curves, strict=True), zip(segments[1:], curves[1:], strict=True),
                                strict=False):
        if b.start < a.end:  # overlap: the boundary where b's similarity overtakes a's
            span = np.flatnonzero((times >= b.start) & (times <= a.end))
            cross = span[cb[span] > ca[span]] if len(span) else span
            at = float(times[cross[0]]) if len(cross) else (a.end + b.start) / 2.0
            b.offset = max(0.0, b.offset + (at - b.start))
            a.end, b.start = at, at
    return segments


def gaps(segments: list[Segment], duration: float, *, min_seconds: float = 1.0) -> list[tuple[float, float]]:
    """(start, end) of the stretches of the recording no segment covers, at least ``min_seconds`` long."""
    out, t = [], 0.0
    for s in segments:
        if s.start - t >= min_seconds:
            out.append((t, s.start))
        t = max(t, s.end)
    if duration - t >= min_seconds:
        out.append((t, duration))
    return [(round(a, 3), round(b, 3)) for a, b in out]


def find_segments(fp: Any, index: Any, codes: np.ndarray, times: np.ndarray, duration: float,
                  config: SegmentConfig | None = None, margins: np.ndarray | None = None) -> list[Segment]:
    """The segments of a recording from its codes [shape=(n, bits / 8)] at ``times`` (s, increasing):
    analysis windows (:func:`window_matches`), chained (:func:`chain`), edges refined (:func:`refine_edges`)."""
    cfg = config or SegmentConfig()
    matches = window_matches(fp, index, codes, times, duration, cfg, margins)
    segs = refine_edges(chain(matches, duration, cfg), codes, times, index, hop_seconds=fp.hop_seconds,
                        bits=fp.bits, duration=duration, config=cfg)
    return merge_neighbours(segs, cfg)


def merge_neighbours(segments: list[Segment], config: SegmentConfig) -> list[Segment]:
    """One segment of two consecutive ones of the same track at most ``config.max_gap`` s apart (what a
    stretch of talk-over or a noisy passage split): the first's start and offset, the second's end."""
    out: list[Segment] = []
    for sg in segments:
        if out and out[-1].track_id == sg.track_id and sg.start - out[-1].end <= config.max_gap:
            a = out[-1]
            n = a.windows + sg.windows
            out[-1] = Segment(a.track_id, a.start, max(a.end, sg.end), a.offset,
                              (a.confidence * a.windows + sg.confidence * sg.windows) / n, n)
            continue
        out.append(sg)
    return out
