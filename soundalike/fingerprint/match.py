"""Offset-consistent voting: which track, at what offset, explains most of the query's windows.

Each query window (at time ``t`` in the query) looks up its ``k`` nearest
catalog windows by Hamming distance. A hit on track ``T`` at catalog time
``s`` votes for "the query starts at ``s - t`` in ``T``" with weight
``1 - distance / (bits / 2)`` (random codes differ in about half their bits,
so unrelated windows weigh about nothing). Votes are binned by offset; a bin
and its two neighbours form a candidate (a tempo change makes the offset
drift by a few tenths of a second over an excerpt), and each query window
counts once per candidate, with its best hit. The score is the summed weight
divided by the number of query windows: 1 means every window matched
perfectly at one consistent offset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from soundalike.fingerprint.codes import paired_hamming
from soundalike.fingerprint.index import Hits


@dataclass
class Candidate:
    """One (track, offset) hypothesis for a query."""

    track_id: int
    offset: float  # seconds into the catalog track where the query starts
    score: float  # in [0, 1]: summed vote weight / number of query windows
    windows: int  # query windows that voted for it
    confidence: float = 0.0  # calibrated probability that the match is right (set by the caller)
    margin: float = 0.0  # lead over the best other track's score (set by the caller)
    offset_margin: float = 0.0  # lead over the same track's best other offset (set by the caller)
    steadiness: float = 0.0  # how alike the query's own windows are, 0-1 (set by the caller)
    also: dict[int, float] = field(default_factory=dict)  # other tracks that fit nearly as well -> their offset

    def evidence(self) -> tuple[float, float, float, float]:
        """(score, margin, offset_margin, steadiness): what :class:`Calibration` weighs."""
        return self.score, self.margin, self.offset_margin, self.steadiness

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def refine(cand: Candidate, query_codes: np.ndarray, query_times: np.ndarray, track_codes: np.ndarray, *,
           bits: int, hop_seconds: float, search: float = 0.3, step: float = 0.02,
           tolerance: float = 0.05, window_weights: np.ndarray | None = None) -> tuple[float, float]:
    """Exact alignment around a voted offset: (best offset, mean similarity of aligned windows).

    For each trial offset ``o`` the query windows that fall within ``tolerance`` s of a catalog
    window (``o + t`` near a multiple of the catalog hop) are compared bit by bit with that
    window; the offset with the highest mean similarity ``1 - distance / (bits / 2)`` wins.
    This settles offsets to about ``step`` and tells a passage from a near-repeat of it.
    ``window_weights`` (one per catalog window, in [0, 1]) scale each window's similarity.
    """
    n = len(track_codes)
    if n == 0 or len(query_codes) == 0:
        return cand.offset, -1.0
    t = np.asarray(query_times, np.float64)
    offsets = cand.offset + np.arange(-search, search + step / 2, step)
    pos = (offsets[:, None] + t[None, :]) / hop_seconds  # [shape=(trials, q)]
    j = np.round(pos).astype(np.int64)
    m = (np.abs(pos - j) * hop_seconds <= tolerance) & (j >= 0) & (j < n)
    if not m.any():
        return cand.offset, -1.0
    trial, qi = np.nonzero(m)
    sim = 1.0 - paired_hamming(query_codes[qi], track_codes[j[m]]) / (bits / 2.0)
    if window_weights is not None:
        sim = sim * np.asarray(window_weights)[j[m]]
    count = np.bincount(trial, minlength=len(offsets))
    tried = count > 0
    s = np.bincount(trial, weights=sim, minlength=len(offsets))[tried] / count[tried]
    top = np.flatnonzero(s >= s.max() - 1e-9)  # offsets that align the same windows tie: take their middle
    return float(np.mean(offsets[tried][top])), float(s.max())


def vote(hits: Hits, query_times: np.ndarray, *, bits: int, bin_seconds: float = 0.5, top: int = 5,
         per_track: bool = True, hit_weights: np.ndarray | None = None) -> list[Candidate]:
    """Candidates, best first, from the nearest catalog windows of every query window.

    hits : from a window index's ``search_hits`` (tracks -1 are padding)
    query_times : [shape=(q,)] start time of each query window within the query
    per_track : keep only the best offset of each track
    hit_weights : optional [shape=(q, k)] factors in [0, 1] on each hit's vote
    """
    q = len(query_times)
    if q == 0 or hits.tracks.size == 0:
        return []
    k = hits.tracks.shape[1]
    qi = np.repeat(np.arange(q), k)
    tr = hits.tracks.reshape(-1)
    d = hits.distances.reshape(-1).astype(np.float64)
    keep = tr >= 0
    w = 1.0 - d / (bits / 2.0)
    if hit_weights is not None:
        w = w * np.asarray(hit_weights, np.float64).reshape(-1)
    keep &= w > 0
    if not keep.any():
        return []
    qi, tr, w = qi[keep], tr[keep], w[keep]
    off = hits.times.reshape(-1)[keep].astype(np.float64) - np.asarray(query_times, np.float64)[qi]
    b = np.round(off / bin_seconds).astype(np.int64)
    # raw score per (track, bin): each query window once, with its best hit
    key = np.stack([tr, b, qi])
    order = np.lexsort((-w, qi, b, tr))
    first = np.ones(len(order), bool)
    first[1:] = np.any(key[:, order[1:]] != key[:, order[:-1]], axis=0)
    sel = order[first]
    cells: dict[tuple[int, int], float] = {}
    for t, bb, ww in zip(tr[sel].tolist(), b[sel].tolist(), w[sel].tolist(), strict=True):
        cells[(t, bb)] = cells.get((t, bb), 0.0) + ww
    # rescore the strongest cells with their neighbours (offset drift), one vote per query window
    best = sorted(cells.items(), key=lambda kv: -(kv[1] + cells.get((kv[0][0], kv[0][1] - 1), 0.0)
                                                 + cells.get((kv[0][0], kv[0][1] + 1), 0.0)))[: max(4 * top, 16)]
    out: list[Candidate] = []
    for (t, bb), _ in best:
        m = (tr == t) & (np.abs(b - bb) <= 1)
        if not m.any():
            continue
        qm, wm, om = qi[m], w[m], off[m]
        o = np.lexsort((-wm, qm))
        f = np.ones(len(o), bool)
        f[1:] = qm[o[1:]] != qm[o[:-1]]
        o = o[f]  # best hit of each query window near this offset
        ws, os_ = wm[o], om[o]
        srt = np.argsort(os_)
        cum = np.cumsum(ws[srt])
        offset = float(os_[srt][np.searchsorted(cum, cum[-1] / 2.0)])  # weighted median
        out.append(Candidate(int(t), offset, float(ws.sum() / q), int(len(o))))
    out.sort(key=lambda c: (-c.score, c.offset))
    if per_track:
        seen: set[int] = set()
        uniq = []
        for c in out:
            if c.track_id not in seen:
                seen.add(c.track_id)
                uniq.append(c)
        out = uniq
    return out[:top]
