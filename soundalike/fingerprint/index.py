"""An in-memory FAISS binary index over every window of a catalog.

The catalog's SQLite database holds the codes (the only copy on disk, 16
bytes per window for 128-bit codes); this index is rebuilt from them when a
catalog is opened for identification, which costs a memory copy (about 0.1 s
per million windows), so no second copy sits on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from soundalike.errors import ParameterError


class BinaryIndex:
    """Exact Hamming k-NN (``faiss.IndexBinaryFlat``); row -> (track id, window start time)."""

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
        self._weights: np.ndarray | None = None  # per-row cache for :meth:`row_weights`

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, track_id: int, codes: np.ndarray, hop_seconds: float) -> None:
        """Append one track's window codes uint8 [shape=(n, bits / 8)], windows ``hop_seconds`` apart."""
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if codes.ndim != 2 or codes.shape[1] * 8 != self.bits:
            raise ParameterError(f"codes must be (n, {self.bits // 8}) bytes, got {codes.shape}")
        if not len(codes):
            return
        self.index.add(codes)
        self.track_ids = np.concatenate([self.track_ids, np.full(len(codes), track_id, np.int64)])
        self.times = np.concatenate([self.times, np.arange(len(codes), dtype=np.float32) * np.float32(hop_seconds)])
        self.codes = np.concatenate([self.codes, codes])
        self._rows = None
        self._weights = None

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

    def row_weights(self, rows: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``compute(codes)`` for the given rows, each row computed once for the life of this index
        (the weights of the windows that queries hit, or of the tracks they re-score, repeat)."""
        if self._weights is None:
            self._weights = np.full(len(self), np.nan)
        rows = np.asarray(rows, np.int64)
        todo = np.unique(rows[np.isnan(self._weights[rows])])
        if len(todo):
            self._weights[todo] = compute(self.codes[todo])
        return self._weights[rows]

    def search(self, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """codes uint8 [shape=(q, bits / 8)] -> (Hamming distances [shape=(q, k)], rows [shape=(q, k)]; -1 pads)."""
        q = np.ascontiguousarray(np.atleast_2d(codes), dtype=np.uint8)
        if not len(self):
            return np.zeros((len(q), 0), np.int32), np.zeros((len(q), 0), np.int64)
        d, rows = self.index.search(q, max(1, min(int(k), len(self))))
        return d, rows
