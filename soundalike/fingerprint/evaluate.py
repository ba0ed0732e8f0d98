"""Degraded-excerpt queries, hit rates, and the "no match" calibration.

Shared by ``benchmarks/identify.py`` (robustness table) and
``scripts/calibrate_identify.py`` (fits :class:`Calibration` on held-out music),
so both see exactly the same degradations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from soundalike.augment import waveform as W
from soundalike.errors import ParameterError
from soundalike.fingerprint.fingerprinter import Calibration


def _pitch(st: float) -> Callable[[np.ndarray, int, np.random.Generator], np.ndarray]:
    return lambda y, sr, rng: W.pitch_shift(y, sr, st)


def _reverb_noise(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    wet = W.reverb(y, sr, rng, rt60=float(rng.uniform(0.4, 1.0)), wet=float(rng.uniform(0.3, 0.5)))
    return W.add_noise(wet, 10.0, rng, "pink")


#: name -> (degradation of an excerpt waveform, speed factor: how much faster the query plays)
CONDITIONS: dict[str, tuple[Callable[[np.ndarray, int, np.random.Generator], np.ndarray], float]] = {
    "clean": (lambda y, sr, rng: y, 1.0),
    "noise 0 dB": (lambda y, sr, rng: W.add_noise(y, 0.0, rng, "white"), 1.0),
    "mp3 32 kbps": (lambda y, sr, rng: W.codec(y, sr, bitrate_kbps=32), 1.0),
    "pitch +1 st": (_pitch(1.0), 1.0),
    "pitch -1 st": (_pitch(-1.0), 1.0),
    "tempo +5%": (lambda y, sr, rng: W.time_stretch(y, 1.05), 1.05),
    "tempo -5%": (lambda y, sr, rng: W.time_stretch(y, 0.95), 0.95),
    "speed +3%": (lambda y, sr, rng: W.speed_change(y, sr, 1.03), 1.03),
    "speed -3%": (lambda y, sr, rng: W.speed_change(y, sr, 0.97), 0.97),
    "reverb + noise 10 dB": (_reverb_noise, 1.0),
}


@dataclass
class Query:
    track: int  # index into the tracks the excerpt came from
    offset: float  # where the excerpt starts in that track, seconds
    condition: str
    samples: np.ndarray
    in_catalog: bool = True


def make_queries(tracks: Sequence[np.ndarray], sr: int, *, per_condition: int, seconds: float = 5.0,
                 conditions: Sequence[str] | None = None, in_catalog: bool = True,
                 seed: int = 0) -> list[Query]:
    """``per_condition`` excerpts of ``seconds`` (as heard: a tempo change takes a longer or shorter
    stretch of the original) from random tracks and offsets, degraded by each condition."""
    names = list(conditions or CONDITIONS)
    unknown = set(names) - set(CONDITIONS)
    if unknown:
        raise ParameterError(f"unknown conditions {sorted(unknown)}; known: {list(CONDITIONS)}")
    rng = np.random.default_rng(seed)
    usable = [i for i, y in enumerate(tracks) if len(y) > (seconds * 1.1 + 1.0) * sr]
    if not usable:
        raise ParameterError(f"no track is longer than {seconds * 1.1 + 1:.1f} s")
    out: list[Query] = []
    for name in names:
        fn, speed = CONDITIONS[name]
        for _ in range(per_condition):
            ti = usable[int(rng.integers(0, len(usable)))]
            y = tracks[ti]
            n = int(round(seconds * speed * sr))
            start = int(rng.integers(0, len(y) - n + 1))
            q = fn(y[start : start + n].astype(np.float32), sr, rng)
            peak = float(np.max(np.abs(q))) if len(q) else 0.0
            if peak > 1.0:
                q = q / peak
            out.append(Query(ti, start / sr, name, q.astype(np.float32), in_catalog))
    return out


def top_candidates(fp: Any, index: Any, queries: Sequence[Query], sr: int,
                   progress: bool = False) -> list[tuple[Any, tuple[float, ...]]]:
    """(best candidate or None, its evidence ``(score, margin, offset_margin, steadiness)``) per query."""
    it: Any = queries
    if progress:
        from tqdm import tqdm

        it = tqdm(queries, unit="query", desc="identifying", dynamic_ncols=True)
    out: list[tuple[Any, tuple[float, ...]]] = []
    for q in it:
        cands = fp.match(index, q.samples, sr, top=2)
        out.append((cands[0], cands[0].evidence()) if cands else (None, (0.0, 0.0, 0.0, 0.0)))
    return out


def is_hit(cand: Any, q: Query, track_ids: Sequence[int], *, tolerance: float = 0.5) -> bool:
    """Top candidate names the excerpt's track, at its offset within ``tolerance`` seconds."""
    return cand is not None and cand.track_id == track_ids[q.track] and abs(cand.offset - q.offset) <= tolerance


def accepted_rate(cal: Calibration, results: Sequence[tuple[Any, tuple[float, ...]]], *,
                  queries: Sequence[Query] | None = None, track_ids: Sequence[int] = ()) -> float | None:
    """Share of :func:`top_candidates` ``results`` whose top match passes ``cal``'s threshold (None when
    there are none); with their ``queries`` and the catalog's ``track_ids``, only right matches
    (:func:`is_hit`) count."""
    if not results:
        return None
    ok = [c is not None and cal.confidence(*m) >= cal.threshold
          and (queries is None or is_hit(c, queries[i], track_ids)) for i, (c, m) in enumerate(results)]
    return float(np.mean(ok))


def fit_calibration(pos: np.ndarray, neg: np.ndarray, *, max_false_match_rate: float = 0.01,
                    fitted_on: dict[str, Any] | None = None) -> Calibration:
    """Logistic regression of "the top match is right" on its evidence, then the threshold.

    pos, neg : [shape=(n, k)] evidence ((score, margin), or (score, margin, offset_margin, steadiness):
    :meth:`Candidate.evidence`) of right top matches of in-catalog queries and of the top matches of
    queries that are in no catalog (which must not be accepted). The threshold is the lowest confidence
    at which at most ``max_false_match_rate`` of ``neg`` would be accepted (and never below 0.5).
    """
    pos = np.atleast_2d(np.asarray(pos, np.float64))
    neg = np.atleast_2d(np.asarray(neg, np.float64))
    k = pos.shape[1]
    if k not in (2, 4) or neg.shape[1] != k:
        raise ParameterError("evidence rows must be (score, margin) or (score, margin, offset_margin, steadiness)")
    if len(pos) < 5 or len(neg) < 5:
        raise ParameterError("calibration needs at least 5 right and 5 wrong/out-of-catalog queries")
    X = np.concatenate([pos, neg])
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    A = np.column_stack([X, np.ones(len(X))])
    w = np.zeros(k + 1)
    lam = 1e-3
    reg = np.diag([1.0] * k + [0.0])
    for _ in range(50):  # Newton's method on the L2-regularised log-loss
        p = 1.0 / (1.0 + np.exp(-np.clip(A @ w, -60, 60)))
        g = A.T @ (p - y) + lam * (reg @ w)
        H = (A * (p * (1 - p))[:, None]).T @ A + lam * reg + 1e-9 * np.eye(k + 1)
        step = np.linalg.solve(H, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    cal = Calibration.from_weights(w, threshold=0.5)
    conf_neg = np.sort([cal.confidence(*x) for x in neg])[::-1]
    allowed = int(np.floor(max_false_match_rate * len(neg)))
    thr = float(conf_neg[allowed]) + 1e-6 if allowed < len(conf_neg) else 0.5
    thr = max(thr, 0.5)
    rate = float(np.mean(conf_neg >= thr))
    return Calibration.from_weights(w, threshold=min(thr, 0.999999), false_match_rate=rate,
                                    fitted_on=dict(fitted_on or {}))


def content_groups(codes: Sequence[np.ndarray], *, bits: int, max_distance: int = 16,
                   min_fraction: float = 0.2) -> list[int]:
    """A group id per track; tracks that share audio (one holds a version or an excerpt of the other:
    an intro and its loop, a 'raw' and a mastered file) share a group.

    Two tracks are joined when at least ``min_fraction`` of the windows of either have a window
    of the other within ``max_distance`` bits. Split evaluation data by group, or an
    "out-of-catalog" excerpt may truly be in the catalog.
    """
    from soundalike.fingerprint.index import BinaryIndex

    index = BinaryIndex.build(bits, [(i, c, 1.0) for i, c in enumerate(codes)])
    parent = list(range(len(codes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, c in enumerate(codes):
        if not len(c):
            continue
        d, rows = index.search(c, 8)
        hit_tracks = index.track_ids[np.where(rows >= 0, rows, 0)]
        close = (d <= max_distance) & (rows >= 0) & (hit_tracks != i)
        others: dict[int, int] = {}
        for r in range(len(c)):  # count each window once per other track
            for t in set(hit_tracks[r][close[r]].tolist()):
                others[t] = others.get(t, 0) + 1
        for t, n in others.items():
            if n >= min_fraction * len(c):
                parent[find(i)] = find(t)
    return [find(i) for i in range(len(codes))]


def take_groups(groups: Sequence[int], order: Sequence[int], n: int) -> list[int]:
    """Track indices of whole groups (from :func:`content_groups`), taken in ``order`` until at least
    ``n`` tracks are in: one side of a split that never parts two tracks sharing audio."""
    taken: list[int] = []
    for g in order:
        if len(taken) >= n:
            break
        taken += [i for i, x in enumerate(groups) if x == g]
    return taken
