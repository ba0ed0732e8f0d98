"""Window indexes: where in the catalog each query window's nearest codes are.

Two kinds answer the same questions (:class:`WindowIndex`): for each query code, its ``k`` nearest
catalog windows (:class:`Hits`: distance, track, time in the track, code), and a track's codes in time
order (for the exact alignment that settles an offset).

- :class:`BinaryIndex`: an exact Hamming scan (``faiss.IndexBinaryFlat``), built in memory from the
  catalog's SQLite rows when a catalog is opened for identification. It costs about 1 ms per query window
  per million catalog windows, so it serves catalogs up to about 1,000 tracks.
- :class:`HashedIndex`: a multi-probe hash table on ``key`` bits of the code, kept on disk beside the
  catalog and memory-mapped, so opening it costs nothing and a query reads only the buckets it probes. Each
  query window probes the buckets of its key with the bits it is least sure of flipped (the smallest
  ``|embedding|``, where noise flips bits), and ranks what those buckets hold by exact Hamming distance.
  ``benchmarks/identify.py --scale`` measures it against the exact scan at 100,000 and 1,000,000 tracks.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from soundalike.errors import ParameterError


@dataclass
class Hits:
    """The ``k`` nearest catalog windows of each of ``q`` query codes, nearest first."""

    distances: np.ndarray  # int32 [shape=(q, k)]; padding: ``bits`` (never votes)
    tracks: np.ndarray  # int64 [shape=(q, k)]; padding: -1
    times: np.ndarray  # float64 [shape=(q, k)]: start of the hit window in its track (s)
    codes: np.ndarray  # uint8 [shape=(q, k, bits / 8)]: the hit windows' codes

    def __len__(self) -> int:
        return int(self.distances.shape[0])

    def __getitem__(self, sel: Any) -> Hits:
        """The hits of some query codes (a slice or a mask over the ``q`` axis)."""
        return Hits(self.distances[sel], self.tracks[sel], self.times[sel], self.codes[sel])

    def nearest(self, k: int, hop_seconds: float, bits: int) -> Hits:
        """The ``k`` nearest distinct windows of each row (a window found twice, e.g. by an approximate
        index and again by an exact search of its track, counts once), nearest first."""
        q, m = self.distances.shape
        if m == 0:
            return self
        big = np.iinfo(np.int32).max
        dist = np.where(self.tracks >= 0, self.distances, big).astype(np.int64)
        key = self.tracks * (1 << 31) + np.rint(self.times / hop_seconds).astype(np.int64)
        by_key = np.argsort(key, axis=1, kind="stable")
        ks = np.take_along_axis(key, by_key, 1)
        dup = np.zeros((q, m), bool)
        dup[:, 1:] = ks[:, 1:] == ks[:, :-1]
        np.put_along_axis(dist, by_key, np.where(dup, big, np.take_along_axis(dist, by_key, 1)), 1)
        order = np.argsort(dist, axis=1, kind="stable")[:, :k]
        keep = np.take_along_axis(dist, order, 1) < big
        out = self.__class__(*(np.take_along_axis(getattr(self, f), order if f != "codes" else order[..., None], 1)
                               for f in ("distances", "tracks", "times", "codes")))
        out.tracks[~keep], out.distances[~keep] = -1, bits
        return out

    @classmethod
    def empty(cls, q: int, nbytes: int, bits: int) -> Hits:
        return cls(np.full((q, 0), bits, np.int32), np.full((q, 0), -1, np.int64), np.zeros((q, 0)),
                   np.zeros((q, 0, nbytes), np.uint8))


class WindowIndex(Protocol):
    """What :meth:`~soundalike.fingerprint.Fingerprinter.match_codes` needs of an index."""

    bits: int

    def __len__(self) -> int: ...

    def search_hits(self, codes: np.ndarray, k: int, margins: np.ndarray | None = None) -> Hits: ...

    def track_codes(self, track_id: int) -> np.ndarray: ...


def _check_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    c = np.ascontiguousarray(np.atleast_2d(codes), dtype=np.uint8)
    if c.ndim != 2 or c.shape[1] * 8 != bits:
        raise ParameterError(f"codes must be (n, {bits // 8}) bytes, got {c.shape}")
    return c


class BinaryIndex:
    """Exact Hamming k-NN (``faiss.IndexBinaryFlat``); row -> (track id, window start time)."""

    kind = "exact"

    def __init__(self, bits: int) -> None:
        import faiss

        if bits % 8 or bits <= 0:
            raise ParameterError(f"bits must be a positive multiple of 8, got {bits}")
        self.bits = bits
        self.index: Any = faiss.IndexBinaryFlat(bits)
        self.track_ids = np.zeros(0, np.int64)
        self.times = np.zeros(0, np.float32)
        self.codes = np.zeros((0, bits // 8), np.uint8)  # a copy for exact re-scoring (16 B per window)
        self._rows: dict[int, tuple[int, int]] | None = None

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, track_id: int, codes: np.ndarray, hop_seconds: float) -> None:
        """Append one track's window codes uint8 [shape=(n, bits / 8)], windows ``hop_seconds`` apart."""
        codes = _check_codes(codes, self.bits) if len(codes) else codes
        if not len(codes):
            return
        self.index.add(codes)
        self.track_ids = np.concatenate([self.track_ids, np.full(len(codes), track_id, np.int64)])
        self.times = np.concatenate([self.times, np.arange(len(codes), dtype=np.float32) * np.float32(hop_seconds)])
        self.codes = np.concatenate([self.codes, codes])
        self._rows = None

    @classmethod
    def build(cls, bits: int, tracks: list[tuple[int, np.ndarray, float]]) -> BinaryIndex:
        """One index from ``(track_id, codes, hop_seconds)`` per track (one allocation, not one per track)."""
        bi = cls(bits)
        tracks = [t for t in tracks if len(t[1])]
        if tracks:
            bi.codes = np.ascontiguousarray(np.concatenate([t[1] for t in tracks]), dtype=np.uint8)
            bi.index.add(bi.codes)
            bi.track_ids = np.concatenate([np.full(len(c), tid, np.int64) for tid, c, _ in tracks])
            bi.times = np.concatenate([np.arange(len(c), dtype=np.float32) * np.float32(h) for _, c, h in tracks])
        return bi

    def track_rows(self, track_id: int) -> np.ndarray:
        """The rows of one track's windows, in time order (empty if the track is not indexed)."""
        if self._rows is None:
            rows: dict[int, tuple[int, int]] = {}
            if len(self.track_ids):
                change = np.flatnonzero(np.diff(self.track_ids)) + 1
                starts = np.concatenate([[0], change])
                ends = np.concatenate([change, [len(self.track_ids)]])
                for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
                    rows[int(self.track_ids[a])] = (a, b)
            self._rows = rows
        a, b = self._rows.get(int(track_id), (0, 0))
        return np.arange(a, b)

    def track_codes(self, track_id: int) -> np.ndarray:
        """The codes of one track's windows, in time order (empty if the track is not indexed)."""
        return self.codes[self.track_rows(track_id)]

    def search(self, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """codes uint8 [shape=(q, bits / 8)] -> (Hamming distances [shape=(q, k)], rows [shape=(q, k)]; -1 pads)."""
        q = _check_codes(codes, self.bits)
        if not len(self):
            return np.zeros((len(q), 0), np.int32), np.zeros((len(q), 0), np.int64)
        d, rows = self.index.search(q, max(1, min(int(k), len(self))))
        return d, rows

    def search_hits(self, codes: np.ndarray, k: int, margins: np.ndarray | None = None) -> Hits:
        """The exact ``k`` nearest windows of each code (``margins`` is for the hashed index; unused here)."""
        d, rows = self.search(codes, k)
        ok = rows >= 0
        r = np.where(ok, rows, 0)
        if not len(self):
            return Hits.empty(len(d), self.bits // 8, self.bits)
        return Hits(np.where(ok, d, self.bits).astype(np.int32), np.where(ok, self.track_ids[r], -1),
                    np.where(ok, self.times[r], 0.0).astype(np.float64), self.codes[r])


# --------------------------------------------------------------------------------------------- hashed
#: Windows per bucket the key width aims at (2^key_bits ~ windows / BUCKET).
BUCKET = 32
#: Buckets each query window probes (its own and those with its least sure key bits flipped) with a key of
#: up to PROBE_WIDTH bits; a longer key (a bigger index) needs more flips to reach as far: each bit more
#: doubles the probes, up to every flip set there is (1,471). ``benchmarks/identify.py --scale``: 200 at
#: 100,000 tracks (21 bits), 1,471 at 1,000,000 (24 bits).
PROBES, PROBE_WIDTH = 200, 21
#: The least sure key bits that probes flip, at most this many at a time.
FLIP_BITS, FLIP_DEPTH = 14, 4
FORMAT_VERSION = 1
ROW_CHUNK = 1 << 22  # rows per build step (64 MB of 128-bit codes)
SAMPLE = 200_000  # windows that choose the key bits


def key_width(n_windows: int, bits: int) -> int:
    """Key bits for an index of ``n_windows``: about :data:`BUCKET` windows per bucket (4 to 30 bits)."""
    return int(min(bits, 30, max(4, round(math.log2(max(n_windows, 1) / BUCKET)))))


def choose_key_bits(sample: np.ndarray, width: int) -> np.ndarray:
    """``width`` code bit positions for the hash key, from a sample of codes: balanced bits (set about half
    the time) that say little about each other, picked greedily; keys then spread evenly over buckets."""
    x = np.unpackbits(np.atleast_2d(np.asarray(sample, np.uint8)), axis=1).astype(np.float32)
    n, bits = x.shape
    if n < 2:
        return np.arange(width, dtype=np.int64)
    p = x.mean(axis=0)
    balance = 1.0 - np.abs(2.0 * p - 1.0)  # 1: set half the time; 0: constant
    xc = x - p
    sd = np.sqrt((xc * xc).mean(axis=0)) + 1e-6
    corr = np.abs((xc.T @ xc) / n / np.outer(sd, sd))
    chosen: list[int] = []
    worst = np.zeros(bits, np.float32)  # each bit's largest |correlation| with a chosen one
    for _ in range(width):
        score = balance - worst
        score[chosen] = -np.inf
        j = int(np.argmax(score))
        chosen.append(j)
        worst = np.maximum(worst, corr[j])
    return np.asarray(chosen, np.int64)


def _keys(codes: np.ndarray, key_bits: np.ndarray) -> np.ndarray:
    """The hash key (uint32 [shape=(n,)]) of packed codes: their ``key_bits``, most significant first."""
    key = np.zeros(len(codes), np.uint32)
    for b in key_bits.tolist():
        key = (key << np.uint32(1)) | ((codes[:, b >> 3] >> np.uint8(7 - (b & 7))) & np.uint8(1)).astype(np.uint32)
    return key


def _flip_sets(n_bits: int, depth: int) -> np.ndarray:
    """Every set of at most ``depth`` of ``n_bits`` positions, as rows of a 0/1 matrix [shape=(sets, n_bits)]."""
    from itertools import combinations

    rows = [np.zeros(n_bits, np.float32)]
    for r in range(1, depth + 1):
        for combo in combinations(range(n_bits), r):
            v = np.zeros(n_bits, np.float32)
            v[list(combo)] = 1.0
            rows.append(v)
    return np.stack(rows)


class HashedIndex:
    """Multi-probe hash table over every window, memory-mapped from a folder (see the module docstring).

    Arrays (all rows in catalog order: tracks by id, each track's windows in time order):
    ``codes``/``rows`` are the codes and their row numbers sorted by key, ``offsets`` where each key's
    bucket starts in them, ``position`` where each row went; ``track_ids``, ``starts`` (first row of each
    track, then the row count) and ``hops`` describe the tracks.
    """

    kind = "hashed"
    FILES = ("codes", "rows", "position", "offsets", "track_ids", "starts", "hops", "key_bits")

    def __init__(self, bits: int, arrays: dict[str, np.ndarray], *, probes: int | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        self.bits = int(bits)
        self.meta = dict(meta or {})
        self.codes, self.rows, self.position = arrays["codes"], arrays["rows"], arrays["position"]
        self.offsets = np.asarray(arrays["offsets"], np.int64)
        self.track_ids = np.asarray(arrays["track_ids"], np.int64)
        self.starts = np.asarray(arrays["starts"], np.int64)
        self.hops = np.asarray(arrays["hops"], np.float64)
        self.key_bits = np.asarray(arrays["key_bits"], np.int64)
        self.probes = int(probes) if probes is not None else PROBES << max(0, self.width - PROBE_WIDTH)
        self._by_id = {int(t): i for i, t in enumerate(self.track_ids.tolist())}
        self._flips: np.ndarray | None = None
        #: Hits farther than this are dropped (weight ``1 - d / (bits / 2)`` below 1/4 at 3/8 of the bits).
        self.max_distance = (3 * self.bits) // 8

    def __len__(self) -> int:
        return int(self.starts[-1]) if len(self.starts) else 0

    @property
    def width(self) -> int:
        return int(len(self.key_bits))

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, bits: int, track_ids: Sequence[int], lengths: Sequence[int], hops: Sequence[float],
              chunks: Callable[[], Iterable[np.ndarray]], *, folder: str | Path | None = None,
              width: int | None = None, probes: int | None = None, progress: Any = None) -> HashedIndex:
        """An index over tracks ``track_ids`` (in that order) of ``lengths`` windows ``hops`` s apart, whose
        codes ``chunks()`` yields in row order (any chunking; it is called twice, so the codes never need
        to sit in memory at once). With ``folder`` the arrays are written there (see :meth:`save`);
        without, they are held in memory. ``progress(rows_done, passes_rows_total)`` is called as it goes."""
        nbytes = bits // 8
        lengths_a = np.asarray(lengths, np.int64)
        n = int(lengths_a.sum())
        starts = np.concatenate([[0], np.cumsum(lengths_a)]).astype(np.int64)
        width = key_width(n, bits) if width is None else int(width)
        row_t = np.uint32 if n < 2**32 else np.uint64
        # pass 1: the first SAMPLE windows pick the key bits; every row's key
        keys = np.empty(n, np.uint32)
        key_bits: np.ndarray | None = None
        held: list[np.ndarray] = []
        a = 0

        def add_keys(c: np.ndarray) -> None:
            nonlocal a
            if a + len(c) > n:
                raise ParameterError(f"the chunks hold more windows than the track lengths say ({n})")
            assert key_bits is not None
            keys[a: a + len(c)] = _keys(c, key_bits)
            a += len(c)
            if progress is not None:
                progress(a, 2 * n)

        for c in chunks():
            c = _check_codes(c, bits) if len(c) else np.zeros((0, nbytes), np.uint8)
            if key_bits is None:
                held.append(c)
                if sum(len(h) for h in held) < SAMPLE:
                    continue
                pool = np.concatenate(held)
                key_bits = choose_key_bits(pool[np.linspace(0, len(pool) - 1, SAMPLE).astype(np.int64)], width)
                del pool
                for h in held:
                    add_keys(h)
                held = []
            else:
                add_keys(c)
        if key_bits is None:
            key_bits = choose_key_bits(np.concatenate(held) if held else np.zeros((0, nbytes), np.uint8), width)
            for h in held:
                add_keys(h)
        if a != n:
            raise ParameterError(f"the chunks hold {a} windows, the track lengths say {n}")
        counts = np.bincount(keys, minlength=1 << width).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        # pass 2: a counting sort, chunk by chunk, straight into the (memory-mapped) outputs
        out = cls._allocate(folder, n, nbytes, row_t)
        cursor = offsets[:-1].copy()
        a = 0
        for c in chunks():
            c = np.ascontiguousarray(c, dtype=np.uint8)
            for s in range(0, len(c), ROW_CHUNK):
                part = c[s: s + ROW_CHUNK]
                if a + len(part) > n:
                    raise ParameterError(f"the chunks held more than {n} windows the second time")
                k = keys[a: a + len(part)]
                o = np.argsort(k, kind="stable")
                ks = k[o]
                new = np.concatenate([[True], ks[1:] != ks[:-1]])
                group = np.maximum.accumulate(np.where(new, np.arange(len(ks)), 0))
                pos = cursor[ks] + (np.arange(len(ks)) - group)
                uk = ks[new]
                cursor[uk] += np.diff(np.concatenate([np.flatnonzero(new), [len(ks)]]))
                rows = (a + o).astype(row_t)
                out["position"][rows] = pos.astype(row_t)
                out["rows"][pos] = rows
                out["codes"][pos] = part[o]
                a += len(part)
                if progress is not None:
                    progress(n + a, 2 * n)
        if a != n:
            raise ParameterError(f"the chunks held {a} windows the second time, {n} the first")
        arrays = {**out, "offsets": offsets, "track_ids": np.asarray(track_ids, np.int64), "starts": starts,
                  "hops": np.asarray(hops, np.float64), "key_bits": key_bits}
        index = cls(bits, arrays, probes=probes)
        if folder is None:
            return index
        index._write(Path(folder))
        del index, arrays, out
        return cls.load(folder, probes=probes)  # memory-mapped, as it will be opened

    @staticmethod
    def _allocate(folder: str | Path | None, n: int, nbytes: int, row_t: Any) -> dict[str, np.ndarray]:
        # in memory even when the index goes to a folder: the counting sort scatters rows all over these
        # arrays, which a file mapping would write back page by page many times over; they are written out
        # in one sequential pass at the end (peak memory: about 28 bytes per window for 128-bit codes)
        return {"codes": np.empty((n, nbytes), np.uint8), "rows": np.empty(n, row_t), "position": np.empty(n, row_t)}

    def _write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for k in self.FILES:
            np.save(folder / f"{k}.npy", getattr(self, k))

    @classmethod
    def load(cls, folder: str | Path, *, probes: int | None = None, meta: dict[str, Any] | None = None) -> HashedIndex:
        """The index saved in ``folder``, its big arrays memory-mapped (read only)."""
        folder = Path(folder)
        arrays = {k: np.load(folder / f"{k}.npy", mmap_mode="r" if k in ("codes", "rows", "position") else None)
                  for k in cls.FILES}
        bits = int(arrays["codes"].shape[1]) * 8
        return cls(bits, arrays, probes=probes, meta=meta)

    def nbytes(self) -> int:
        """Bytes of the index's arrays (on disk; the big ones are paged in as queries touch them)."""
        return int(sum(getattr(self, k).nbytes for k in self.FILES))

    # ------------------------------------------------------------------ searching
    def locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows -> (track ids, window start times in their tracks)."""
        rows = np.asarray(rows, np.int64)
        t = np.searchsorted(self.starts, rows, side="right") - 1
        return self.track_ids[t], (rows - self.starts[t]) * self.hops[t]

    def track_codes(self, track_id: int) -> np.ndarray:
        """The codes of one track's windows, in time order (empty if the track is not indexed)."""
        i = self._by_id.get(int(track_id))
        if i is None:
            return np.zeros((0, self.bits // 8), np.uint8)
        pos = np.asarray(self.position[self.starts[i]: self.starts[i + 1]], np.int64)
        return np.asarray(self.codes[pos])

    def probe_keys(self, codes: np.ndarray, margins: np.ndarray | None, probes: int) -> np.ndarray:
        """The keys each query code probes [shape=(q, probes)]: its own, then those with its least sure key
        bits flipped, cheapest first (the cost of a flip set is the summed ``margins`` of its bits; without
        margins every bit counts the same, so fewer flips come first)."""
        w = self.width
        key = _keys(codes, self.key_bits).astype(np.int64)
        nf = min(FLIP_BITS, w)
        if self._flips is None or self._flips.shape[1] != nf:
            self._flips = _flip_sets(nf, min(FLIP_DEPTH, nf))
        flips = self._flips
        probes = max(1, min(int(probes), len(flips)))
        if margins is None:
            m = np.ones((len(codes), w), np.float32) + np.arange(w, dtype=np.float32)[None, :] * 1e-3
        else:
            m = np.abs(np.asarray(margins, np.float32))[:, self.key_bits]
        order = np.argsort(m, axis=1, kind="stable")[:, :nf]  # least sure key bits first
        cost = np.take_along_axis(m, order, 1) @ flips.T  # [shape=(q, sets)]
        best = np.argsort(cost, axis=1, kind="stable")[:, :probes]
        power = (np.int64(1) << (w - 1 - order)).astype(np.int64)  # key value of each of those bits
        masks = (flips[best] * power[:, None, :]).sum(axis=2).astype(np.int64)
        return key[:, None] ^ masks

    def search_hits(self, codes: np.ndarray, k: int, margins: np.ndarray | None = None,
                    probes: int | None = None) -> Hits:
        """The ``k`` nearest windows of each code among those in the buckets it probes (see
        :meth:`probe_keys`); ``margins`` [shape=(q, bits)]: ``|embedding|`` of each code bit."""
        q = _check_codes(codes, self.bits)
        nq, nbytes = len(q), self.bits // 8
        if not len(self) or not nq:
            return Hits.empty(nq, nbytes, self.bits)
        keys = self.probe_keys(q, margins, self.probes if probes is None else probes)
        lo, hi = self.offsets[keys], self.offsets[keys + 1]
        n = (hi - lo).reshape(-1)
        total = int(n.sum())
        k = max(1, int(k))
        if total == 0:
            return Hits.empty(nq, nbytes, self.bits)
        owner = np.repeat(np.repeat(np.arange(nq), keys.shape[1]), n)
        ends = np.cumsum(n)
        pos = np.arange(total, dtype=np.int64) - np.repeat(ends - n - lo.reshape(-1), n)
        found = np.asarray(self.codes[pos])
        qa = q.view(np.uint64) if nbytes % 8 == 0 else None
        if qa is not None:
            d = np.bitwise_count(found.view(np.uint64) ^ qa[owner]).sum(axis=1, dtype=np.int32)
        else:
            d = np.bitwise_count(found ^ q[owner]).sum(axis=1, dtype=np.int32)
        near = np.flatnonzero(d <= self.max_distance)  # farther hits would weigh next to nothing
        if not len(near):
            return Hits.empty(nq, nbytes, self.bits)
        d, owner, pos, found = d[near], owner[near], pos[near], found[near]
        total = len(d)
        order = np.argsort(owner.astype(np.int64) * (self.bits + 1) + d, kind="stable")  # by query, nearest first
        so = owner[order]
        first = np.searchsorted(so, np.arange(nq))
        rank = np.arange(total) - first[so]
        keep = order[rank < k]
        slot = rank[rank < k]
        dist = np.full((nq, k), self.bits, np.int32)
        rows = np.full((nq, k), -1, np.int64)
        hit_codes = np.zeros((nq, k, nbytes), np.uint8)
        o = owner[keep]
        dist[o, slot] = d[keep]
        rows[o, slot] = np.asarray(self.rows[pos[keep]], np.int64)
        hit_codes[o, slot] = found[keep]
        ok = rows >= 0
        tr, tm = self.locate(np.where(ok, rows, 0))
        return Hits(dist, np.where(ok, tr, -1), np.where(ok, tm, 0.0), hit_codes)


# --------------------------------------------------------------------------------------------- on disk
def save_folder(build: Callable[[Path], HashedIndex], root: Path, name: str, meta: dict[str, Any]) -> HashedIndex:
    """Build an index into a new folder beside ``root / name`` and make it current atomically: the pointer
    file ``name.json`` (which names the folder and holds ``meta``) is replaced in one step, and only then
    are older folders removed. A crash at any point leaves the previous index, or none, never a torn one."""
    folder = root / f".{name}-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        index = build(folder)
        pointer = root / f"{name}.json"
        tmp = root / f".{name}.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({**meta, "folder": folder.name, "format": FORMAT_VERSION,
                                   "count": len(index), "key_bits": index.width}))
        os.replace(tmp, pointer)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    for old in root.glob(f".{name}-*"):
        if old.name != folder.name:
            shutil.rmtree(old, ignore_errors=True)
    index.meta = {**meta, "folder": folder.name}
    return index


def load_folder(root: Path, name: str, *, probes: int | None = None) -> HashedIndex | None:
    """The index the pointer file ``root / name.json`` names, or None (no index, an older format, or a
    damaged one)."""
    try:
        meta = json.loads((root / f"{name}.json").read_text())
        folder = str(meta["folder"])
        if meta.get("format") != FORMAT_VERSION or not folder.startswith(f".{name}-") or "/" in folder or \
                "\\" in folder:  # only a folder this code made, beside the pointer
            return None
        index = HashedIndex.load(root / folder, probes=probes, meta=meta)
        return index if len(index) == meta.get("count") else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def restamp_folder(root: Path, name: str, meta: dict[str, Any]) -> None:
    """Merge ``meta`` into the pointer file ``root / name.json`` (atomically; silently not when read-only)."""
    pointer = root / f"{name}.json"
    try:
        old = json.loads(pointer.read_text())
        tmp = root / f".{name}.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({**old, **meta}))
        os.replace(tmp, pointer)
    except (OSError, ValueError):
        pass


def chunked(rows: Iterator[tuple[Any, ...]] | Iterable[tuple[Any, ...]], nbytes: int,
            rows_per_chunk: int = 4096) -> Iterator[np.ndarray]:
    """Code blobs (the last item of each row) -> arrays [shape=(n, nbytes)], a few thousand tracks at a time."""
    buf: list[bytes] = []
    for r in rows:
        buf.append(r[-1])
        if len(buf) >= rows_per_chunk:
            yield np.frombuffer(b"".join(buf), np.uint8).reshape(-1, nbytes)
            buf = []
    if buf:
        yield np.frombuffer(b"".join(buf), np.uint8).reshape(-1, nbytes)
