"""FAISS index over unit-norm song embeddings (inner product = cosine)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np


def _faiss() -> Any:
    import faiss

    return faiss


class VectorIndex:
    """Exact cosine search: ``IndexIDMap2(IndexFlatIP(d))`` keyed by track id."""

    def __init__(self, dim: int, index: Any = None) -> None:
        faiss = _faiss()
        self.dim = dim
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, dim: int) -> VectorIndex:
        """ids [shape=(n,), int64], vectors [shape=(n, dim), float32, unit rows]."""
        vi = cls(dim)
        if len(ids):
            vi.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                  np.ascontiguousarray(ids, dtype=np.int64))
        return vi

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """queries [shape=(q, dim)] -> (scores [shape=(q, k)], ids [shape=(q, k)]; -1 pads)."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(int(k), len(self))) if len(self) else 1
        if not len(self):
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        scores, ids = self.index.search(q, k)
        return scores, ids

    def save(self, path: str | Path, *, generation: int, fingerprint: str) -> None:
        """Write atomically: ``path`` (FAISS) and ``path.json`` (which catalog state it holds)."""
        faiss = _faiss()
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, path)
        meta = path.with_name(path.name + ".json")
        tmpm = meta.with_name(f".{meta.name}.tmp")
        tmpm.write_text(json.dumps({"generation": generation, "fingerprint": fingerprint,
                                    "count": len(self), "dim": self.dim}))
        os.replace(tmpm, meta)

    @classmethod
    def load_if_current(cls, path: str | Path, *, generation: int, fingerprint: str, dim: int) -> VectorIndex | None:
        """The saved index if it holds exactly this catalog state, else None (rebuild it)."""
        path = Path(path)
        meta = path.with_name(path.name + ".json")
        try:
            m = json.loads(meta.read_text())
            if m.get("generation") != generation or m.get("fingerprint") != fingerprint or m.get("dim") != dim:
                return None
            index = _faiss().read_index(str(path))
        except (OSError, ValueError, RuntimeError):
            return None
        vi = cls(dim, index)
        return vi if len(vi) == m.get("count") else None
