"""Waveform -> window codes (for the catalog) and query codes -> matches (for ``identify``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from soundalike.errors import ModelError, ParameterError
from soundalike.fingerprint.codes import pack_codes
from soundalike.fingerprint.index import Hits, WindowIndex
from soundalike.fingerprint.match import Candidate, refine, vote


@dataclass(frozen=True)
class Calibration:
    """Evidence -> probability that the top match is right, and the "no match" threshold.

    ``confidence = sigmoid(a * score + b * margin + d * offset_margin + e * steadiness + c)``, where
    ``score`` is the top candidate's vote score, ``margin`` its lead over the best other track,
    ``offset_margin`` its lead over the same track's best other offset (at least
    :attr:`Fingerprinter.OTHER_OFFSET` away), and ``steadiness`` how alike the query's own windows are
    to each other (a test tone, a held chord: evidence that fits many places equally). ``threshold`` was
    chosen on held-out data so that at most ``false_match_rate`` of queries that are in no catalog reach
    it. A calibration without ``d`` and ``e`` (older models) weighs only score and margin.
    """

    a: float = 12.0
    b: float = 12.0
    c: float = -4.0
    threshold: float = 0.5
    false_match_rate: float | None = None  # measured on the held-out out-of-catalog queries
    fitted_on: dict[str, Any] = field(default_factory=dict)
    d: float = 0.0
    e: float = 0.0
    #: Queries steadier than this (a test tone, a held chord, a drum loop) carry little evidence of where
    #: they are: their confidence falls linearly to 0 at steadiness 1. Chosen so that about 0.5 % of right
    #: matches on held-out music are steadier. None: no such limit (older models).
    max_steadiness: float | None = None

    def confidence(self, score: float, margin: float, offset_margin: float = 0.0, steadiness: float = 0.0) -> float:
        z = self.a * score + self.b * margin + self.d * offset_margin + self.e * steadiness + self.c
        p = 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))
        lim = self.max_steadiness
        if lim is not None and steadiness > lim:
            p *= max(0.0, (1.0 - steadiness) / max(1.0 - lim, 1e-9))
        return float(p)

    @classmethod
    def from_weights(cls, w: np.ndarray, **kw: Any) -> Calibration:
        """From logistic weights over (score, margin[, offset_margin, steadiness]) then the bias."""
        vals = [float(x) for x in w]
        feats, bias = vals[:-1], vals[-1]
        feats += [0.0] * (4 - len(feats))
        return cls(feats[0], feats[1], bias, d=feats[2], e=feats[3], **kw)

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "c": self.c, "d": self.d, "e": self.e, "threshold": self.threshold,
                "max_steadiness": self.max_steadiness, "false_match_rate": self.false_match_rate,
                "fitted_on": dict(self.fitted_on)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Calibration:
        d = dict(d or {})
        return cls(float(d.get("a", 12.0)), float(d.get("b", 12.0)), float(d.get("c", -4.0)),
                   float(d.get("threshold", 0.5)), d.get("false_match_rate"), dict(d.get("fitted_on") or {}),
                   float(d.get("d", 0.0)), float(d.get("e", 0.0)),
                   None if d.get("max_steadiness") is None else float(d["max_steadiness"]))


def steadiness(codes: np.ndarray, times: np.ndarray, *, bits: int, min_gap: float = 1.0,
               max_windows: int = 200) -> float:
    """How alike a query's windows at least ``min_gap`` s apart are: the mean of
    ``max(0, 1 - distance / (bits / 2))`` over those pairs, 0 (every part differs, as music does) to 1
    (a steady tone). 0 when no two windows are that far apart."""
    from soundalike.fingerprint.codes import hamming

    codes = np.asarray(codes)
    times = np.asarray(times, np.float64)
    if len(codes) > max_windows:  # evenly spaced windows of a long query say as much
        pick = np.linspace(0, len(codes) - 1, max_windows).round().astype(np.int64)
        codes, times = codes[pick], times[pick]
    far = np.abs(times[:, None] - times[None, :]) >= min_gap
    if not far.any():
        return 0.0
    sim = np.clip(1.0 - hamming(codes, codes) / (bits / 2.0), 0.0, 1.0)
    return float(sim[far].mean())


class Fingerprinter:
    """A fingerprint encoder with its front-end: 1 s windows every ``hop`` -> packed binary codes."""

    #: How far (seconds) another offset of the top track must be to count as a different place in it.
    OTHER_OFFSET = 1.5
    #: Seconds of query windows that must agree on a match for its full confidence (see :meth:`match_codes`).
    MIN_EVIDENCE_SECONDS = 1.0

    def __init__(self, encoder: Any, *, query_hop_frames: int | None = None, k: int = 10,
                 batch_size: int = 512) -> None:
        from soundalike.features.mel import MelFrontend

        self.encoder = encoder
        self.fe = encoder.frontend
        self.bits = int(encoder.embed_dim)
        if self.bits % 8:
            raise ModelError(f"model {encoder.name!r} gives {self.bits}-d embeddings; a fingerprint model needs a "
                             "multiple of 8 (one bit per dimension)")
        self.hop_seconds = self.fe.frames_to_seconds(self.fe.chunk_hop_frames)
        self.query_hop_frames = query_hop_frames  # None: 0.1 s, or 0.24 s for a large index
        self.k = int(k)
        self.batch_size = batch_size
        self.calibration = Calibration.from_dict(encoder.metadata.get("identify"))
        self._mel = MelFrontend(self.fe)
        self._noise: np.ndarray | None = None
        self._noise_index: Any = None

    @property
    def sample_rate(self) -> int:
        return int(self.fe.sample_rate)

    def _resample(self, y: np.ndarray, sr: int) -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        if sr == self.sample_rate:
            return y
        import soxr

        return np.asarray(soxr.resample(y, sr, self.sample_rate, quality="HQ"), dtype=np.float32)

    #: Windows this many dB below the loud part of their signal (the 95th percentile window) are
    #: fade-outs, reverb tails or silence: they get the all-zero code, which never votes.
    QUIET_DB = 30.0

    def _codes(self, y: np.ndarray, sr: int, hop_frames: int, *, mask_quiet: bool = True) -> np.ndarray:
        return self._windows(y, sr, hop_frames, mask_quiet=mask_quiet)[0]

    def _windows(self, y: np.ndarray, sr: int, hop_frames: int, *,
                 mask_quiet: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(codes, margins): the packed codes and ``|embedding|`` per bit (float16; small = a bit that noise
        flips easily)."""
        import torch

        from soundalike.features.mel import chunk_power, power_to_db

        x = self._resample(y, sr)
        need = self.fe.chunk_samples
        if len(x) < need:  # a window needs 1 s: pad a shorter signal with silence
            x = np.concatenate([x, np.zeros(need - len(x), np.float32)])
        with torch.inference_mode():
            power = self._mel(x)
            ch = chunk_power(power, chunk_frames=self.fe.chunk_frames, hop_frames=hop_frames)
            db = power_to_db(ch, amin=self.fe.amin, top_db=self.fe.top_db)
            level = 10.0 * torch.log10(ch.mean(dim=(1, 2)).clamp_min(self.fe.amin)).numpy()
        emb = np.asarray(self.encoder.embed_chunks(db, batch_size=self.batch_size))
        codes = pack_codes(emb)
        if mask_quiet:
            quiet = level < np.percentile(level, 95) - self.QUIET_DB
            codes[quiet] = 0
        return codes, np.abs(emb).astype(np.float16)

    #: Hamming distances to the nearest noise code at which a catalog window's votes start to count,
    #: and count fully (see :meth:`hub_weights`).
    HUB_DISTANCE = (24, 36)

    def noise_codes(self) -> np.ndarray:
        """Codes of white and pink noise, of silence and of lone sine sweeps: what a window with no music in
        it looks like."""
        if self._noise is None:
            rng = np.random.default_rng(1234)
            from soundalike.augment.waveform import colored_noise

            sr = self.sample_rate
            parts = [self._codes(colored_noise(10 * sr, rng, c) * np.float32(0.1), sr, self.fe.chunk_hop_frames,
                                 mask_quiet=False) for c in ("white", "pink")]
            parts.append(self._codes(np.zeros(2 * sr, np.float32), sr, self.fe.chunk_hop_frames, mask_quiet=False))
            # a lone sinusoid, steady or gliding through the band (test tones, sweeps, risers): windows like
            # these say nothing about which recording they are in
            t = np.arange(20 * sr) / sr
            for f0, f1 in ((150.0, 6000.0), (6000.0, 150.0)):
                k = np.log(f1 / f0) / t[-1]
                sweep = np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k).astype(np.float32) * np.float32(0.5)
                parts.append(self._codes(sweep, sr, self.fe.chunk_hop_frames, mask_quiet=False))
            self._noise = np.concatenate(parts)
        return self._noise

    def hub_weights(self, codes: np.ndarray) -> np.ndarray:
        """Per code, a factor in [0, 1]: 0 for windows that look like noise or silence (fade-outs, dither,
        hiss: they attract every noisy query), 1 for windows well away from them."""
        if len(codes) == 0:
            return np.zeros(0, np.float64)
        if self._noise_index is None:
            import faiss

            self._noise_index = faiss.IndexBinaryFlat(self.bits)
            self._noise_index.add(np.ascontiguousarray(self.noise_codes()))
        d = self._noise_index.search(np.ascontiguousarray(codes, dtype=np.uint8), 1)[0][:, 0].astype(np.float64)
        lo, hi = self.HUB_DISTANCE
        w = np.clip((d - lo) / float(hi - lo), 0.0, 1.0)
        w[~np.asarray(codes).any(axis=1)] = 0.0  # quiet windows (the all-zero code)
        return w

    def track_codes(self, y: np.ndarray, sr: int) -> np.ndarray:
        """Codes uint8 [shape=(n, bits / 8)] of windows every :attr:`hop_seconds`, for the catalog."""
        if len(y) == 0:
            raise ParameterError("cannot fingerprint an empty waveform")
        return self._codes(y, sr, self.fe.chunk_hop_frames)

    #: Seconds between query windows: for the exact scan, and for an approximate (hashed) index, where half
    #: as many windows find as many right matches (``benchmarks/identify.py --scale``) in half the time.
    QUERY_HOP, QUERY_HOP_APPROXIMATE = 0.1, 0.2

    def query_hop_frames_default(self, index: Any = None) -> int:
        """Frames between query windows (:attr:`QUERY_HOP`, or :attr:`QUERY_HOP_APPROXIMATE` for an
        approximate ``index``): denser than the catalog's windows, so some query window always lands near a
        catalog one."""
        if self.query_hop_frames is not None:
            return int(self.query_hop_frames)
        approximate = getattr(index, "kind", "exact") != "exact"
        hop = self.QUERY_HOP_APPROXIMATE if approximate else self.QUERY_HOP
        return max(1, int(round(hop * self.fe.sample_rate / self.fe.hop_length)))

    def query_windows(self, y: np.ndarray, sr: int,
                      hop_frames: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(codes [shape=(q, bits / 8)], window start times [shape=(q,)], margins [shape=(q, bits)]) of a
        query, windows every ``hop_frames`` (default :meth:`query_hop_frames_default`). The margins
        (``|embedding|`` per bit) tell a hashed index which bits to distrust."""
        if len(y) < 0.5 * sr:
            raise ParameterError(f"the excerpt is {len(y) / sr:.2f} s long; identification needs at least 0.5 s "
                                 "(3-10 s works best)")
        hop = int(hop_frames or self.query_hop_frames_default())
        codes, margins = self._windows(y, sr, hop)
        times = np.arange(len(codes), dtype=np.float64) * self.fe.frames_to_seconds(hop)
        return codes, times, margins

    def query_codes(self, y: np.ndarray, sr: int, hop_frames: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(codes, window start times) of a query: :meth:`query_windows` without the margins."""
        codes, times, _ = self.query_windows(y, sr, hop_frames)
        return codes, times

    def match(self, index: WindowIndex, y: np.ndarray, sr: int, *, top: int = 5) -> list[Candidate]:
        """Best (track, offset) candidates for a query waveform, with calibrated confidence."""
        codes, times, margins = self.query_windows(y, sr, self.query_hop_frames_default(index))
        return self.match_codes(index, codes, times, top=top, margins=margins)

    #: Nearest windows of each track an approximate index points at that join each query window's hits.
    WIDEN_PER_TRACK = 10
    #: How many of the tracks an approximate index's hits vote for are searched exactly.
    WIDEN_TRACKS = 24

    def _vote(self, hits: Hits, times: np.ndarray, top: int) -> list[Candidate]:
        """The best ``2 * top`` (at least 8) (track, offset) candidates of the hits, hub windows discounted."""
        ok = hits.tracks >= 0
        hw = np.zeros(hits.tracks.shape, np.float64)
        hw[ok] = self.hub_weights(hits.codes[ok])
        return vote(hits, times, bits=self.bits, bin_seconds=self.hop_seconds, top=max(2 * top, 8),
                    per_track=False, hit_weights=hw)

    def _shortlist(self, hits: Hits, n: int) -> list[int]:
        """The ``n`` tracks with the most hit weight (each query code counted once per track, by its
        nearest hit in it), best first."""
        ok = hits.tracks >= 0
        if not ok.any():
            return []
        qi = np.nonzero(ok)[0]
        tr, w = hits.tracks[ok], np.clip(1.0 - hits.distances[ok] / (self.bits / 2.0), 0.0, None)
        order = np.lexsort((-w, qi, tr))
        first = np.ones(len(order), bool)
        first[1:] = (tr[order][1:] != tr[order][:-1]) | (qi[order][1:] != qi[order][:-1])
        sel = order[first]
        ids, inv = np.unique(tr[sel], return_inverse=True)
        total = np.bincount(inv, weights=w[sel])
        return [int(t) for t in ids[np.argsort(-total, kind="stable")[:n]]]

    def _widen(self, index: WindowIndex, codes: np.ndarray, hits: Hits, tracks: list[int],
               track_codes: Callable[[int], np.ndarray]) -> Hits:
        """The ``k`` nearest of ``hits`` and, per query code, the :attr:`WIDEN_PER_TRACK` nearest windows of
        each of ``tracks`` that are at most as far as the farthest hit found for it (what an exact scan
        would have found)."""
        from soundalike.fingerprint.codes import hamming

        q = len(codes)
        # as far as the k-th hit found (an index that found fewer: as far as it keeps hits)
        cap = getattr(index, "max_distance", self.bits)
        limit = np.where(hits.tracks[:, -1] >= 0, hits.distances[:, -1], cap) if hits.distances.shape[1] else \
            np.full(q, cap)
        per = [track_codes(t) for t in tracks]
        keep = [(t, tc) for t, tc in zip(tracks, per, strict=True) if len(tc)]
        parts = [hits]
        if keep:
            dist_all = hamming(codes, np.concatenate([tc for _, tc in keep]))  # one pass over every track
            a = 0
            for t, tc in keep:
                dist = dist_all[:, a: a + len(tc)]
                a += len(tc)
                take = min(self.WIDEN_PER_TRACK, len(tc))
                j = np.argpartition(dist, take - 1, axis=1)[:, :take] if take < len(tc) else \
                    np.broadcast_to(np.arange(len(tc)), (q, len(tc)))
                d = np.take_along_axis(dist, j, 1)
                near = d <= limit[:, None]
                parts.append(Hits(np.where(near, d, self.bits).astype(np.int32),
                                  np.where(near, t, -1).astype(np.int64), j * self.hop_seconds, tc[j]))
        merged = Hits(*(np.concatenate([getattr(p, f) for p in parts], axis=1)
                        for f in ("distances", "tracks", "times", "codes")))
        # as many hits per query code as an exact scan gives (the k nearest of all that were found): more
        # would let the shortlisted tracks outvote the rest and lift unrelated queries over the threshold
        return merged.nearest(self.k, self.hop_seconds, self.bits)

    def match_codes(self, index: WindowIndex, codes: np.ndarray, times: np.ndarray, *, top: int = 5,
                    margins: np.ndarray | None = None, found: Hits | None = None) -> list[Candidate]:
        """:meth:`match` from a query's codes and their times (seconds from the query's start); ``margins``:
        from :meth:`query_windows` (a hashed index probes better with them); ``found``: the hits of these
        codes when they were already searched (a long recording searches once)."""
        loud = codes.any(axis=1)  # quiet query windows (all-zero codes) carry no evidence
        if not loud.any():
            return []
        step = float(np.median(np.diff(times))) if len(times) > 1 else self.hop_seconds
        codes, times = codes[loud], times[loud]
        if found is None:
            hits = index.search_hits(codes, self.k, None if margins is None else margins[loud])
        else:
            hits = found[loud]
        held: dict[int, np.ndarray] = {}

        def track_codes(t: int) -> np.ndarray:  # each track read once per query
            if t not in held:
                held[t] = index.track_codes(t)
            return held[t]

        if getattr(index, "kind", "exact") != "exact":
            # an approximate index finds only some of the windows an exact scan would: the tracks it points
            # at most are searched exactly, and the vote is taken with everything they hold that is as near
            # as what was found
            hits = self._widen(index, codes, hits, self._shortlist(hits, self.WIDEN_TRACKS), track_codes)
        cands = self._vote(hits, times, top)
        for c in cands:  # exact alignment: the offset to ~20 ms, and a score that tells near-repeats apart
            tc = track_codes(c.track_id)
            off, sim = refine(c, codes, times, tc, bits=self.bits, hop_seconds=self.hop_seconds,
                              window_weights=self.hub_weights(tc))
            c.offset, c.score = off, 0.5 * (c.score + max(sim, 0.0))
        # an excerpt cannot start well before its track (a little: silence or a fade-in cut differently)
        cands = [c for c in cands if c.offset >= -2 * self.hop_seconds]
        for c in cands:  # ... and no excerpt starts before its track does
            c.offset = max(0.0, c.offset)
        cands.sort(key=lambda c: -c.score)
        best: dict[int, Candidate] = {}
        for c in cands:  # the best offset of each track
            best.setdefault(c.track_id, c)
        alt = {c.track_id: max((o.score for o in cands if o.track_id == c.track_id
                                and abs(o.offset - c.offset) >= self.OTHER_OFFSET), default=0.0)
               for c in best.values()}
        steady = steadiness(codes, times, bits=self.bits)
        cands = list(best.values())[: max(top, 2)]
        for i, c in enumerate(cands):
            other = next((o.score for o in cands if o.track_id != c.track_id), 0.0) if i == 0 else cands[0].score
            c.margin, c.offset_margin, c.steadiness = c.score - other, c.score - alt[c.track_id], steady
            c.confidence = self.calibration.confidence(*c.evidence())
            # a match resting on less than MIN_EVIDENCE_SECONDS of agreeing windows (a sweep whose few loud
            # windows happen to fit) is not believed in proportion
            c.confidence *= min(1.0, c.windows * step / self.MIN_EVIDENCE_SECONDS)
        return cands[:top]
