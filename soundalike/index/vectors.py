"""FAISS indexes over unit-norm song embeddings (inner product = cosine), chosen by catalog size.

- ``flat``: exact search (``IndexFlatIP``), up to about 200k tracks;
- ``hnsw``: ``IndexHNSWFlat`` (M 32, efSearch tuned for recall@10 >= 0.99 by ``benchmarks/index_scale.py``)
  above that;
- ``ivfpq``: ``IndexIVFPQ`` codes in memory, candidates re-ranked exactly with the stored embeddings
  (``rerank``), for when memory is the limit.

:func:`choose_index` makes the choice; a catalog stores what was asked for (``auto`` or a kind with its
parameters) and every saved index records the spec it was built with.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import ParameterError

KINDS = ("flat", "hnsw", "ivfpq")
FLAT_MAX = 200_000  # tracks: exact search stays under a few ms up to about here
IVFPQ_MIN = 1_000  # fewer vectors than this cannot train IVF-PQ codes; such an index is built flat


def faiss_module() -> Any:
    import faiss

    return faiss


@dataclass(frozen=True)
class IndexSpec:
    """Which FAISS index, with which parameters."""

    kind: str = "flat"  # flat | hnsw | ivfpq
    m: int = 32  # hnsw: links per node
    ef_construction: int = 80  # hnsw: build-time beam
    ef_search: int = 128  # hnsw: query-time beam (recall@10 0.9975 at 1M in benchmarks/index_scale.py; 96: 0.991)
    nlist: int = 0  # ivfpq: inverted lists (0: 4 * sqrt(n), at least 16)
    pq_m: int = 16  # ivfpq: sub-quantisers = bytes per vector (8-bit codes)
    nprobe: int = 32  # ivfpq: lists visited per query
    refine: int = 16  # ivfpq: candidates re-ranked exactly = k * refine

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(f"unknown index type {self.kind!r}; choose one of {', '.join(KINDS)} (or auto)")
        if min(self.m, self.ef_construction, self.ef_search, self.pq_m, self.nprobe, self.refine) < 1 or self.nlist < 0:
            raise ParameterError(f"bad index parameters {self}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexSpec:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in known})


def choose_index(n: int, dim: int = 128, *, memory_mb: float | None = None) -> IndexSpec:
    """The index for ``n`` vectors: flat up to :data:`FLAT_MAX`, HNSW above, IVF-PQ when the flat or HNSW
    index would not fit in ``memory_mb``."""
    flat_mb = n * dim * 4 / 2**20
    hnsw_mb = flat_mb + n * 32 * 2 * 4 / 2**20  # vectors + about 2M links of 4 bytes per node
    if memory_mb is not None and (flat_mb if n <= FLAT_MAX else hnsw_mb) > memory_mb:
        return IndexSpec(kind="ivfpq")
    return IndexSpec(kind="flat") if n <= FLAT_MAX else IndexSpec(kind="hnsw")


def resolve_spec(asked: str | IndexSpec | dict[str, Any] | None, n: int, dim: int) -> IndexSpec:
    """``auto``/None -> :func:`choose_index`; a kind name -> its defaults; a spec or dict as given."""
    if asked is None or asked == "auto":
        return choose_index(n, dim)
    if isinstance(asked, IndexSpec):
        return asked
    if isinstance(asked, dict):
        return resolve_spec(asked.get("kind", "auto"), n, dim) if asked.get("kind", "auto") == "auto" \
            else IndexSpec.from_dict(asked)
    return IndexSpec(kind=str(asked))


class VectorIndex:
    """Cosine search over track ids: a flat, HNSW or IVF-PQ FAISS index (see :class:`IndexSpec`)."""

    def __init__(self, dim: int, index: Any = None, spec: IndexSpec | None = None) -> None:
        faiss = faiss_module()
        self.dim = dim
        self.spec = spec or IndexSpec()
        self._keep: Any = None  # Python objects the FAISS index points to (an IVF quantizer)
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._tune()

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def _tune(self) -> None:
        faiss = faiss_module()
        inner = faiss.downcast_index(self.index.index) if hasattr(self.index, "index") else self.index
        if self.spec.kind == "hnsw":
            inner.hnsw.efSearch = self.spec.ef_search
        elif self.spec.kind == "ivfpq":
            inner.nprobe = self.spec.nprobe

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, dim: int, spec: IndexSpec | None = None) -> VectorIndex:
        """ids [shape=(n,), int64], vectors [shape=(n, dim), float32, unit rows]."""
        faiss = faiss_module()
        spec = spec or IndexSpec()
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        n = len(ids)
        if spec.kind == "ivfpq" and n < IVFPQ_MIN:  # too few vectors to train codes: exact search is small anyway
            spec = replace(spec, kind="flat")
        if spec.kind == "hnsw":
            # L2 on unit vectors ranks exactly as cosine (|a - b|^2 = 2 - 2 cos), and HNSW's graph works
            # better with a metric than with inner products; search() turns distances back into cosines.
            inner = faiss.IndexHNSWFlat(dim, spec.m)
            inner.hnsw.efConstruction = spec.ef_construction
        elif spec.kind == "ivfpq":
            if dim % spec.pq_m:
                raise ParameterError(f"pq_m={spec.pq_m} must divide the embedding size {dim}")
            nlist = spec.nlist or max(16, int(4 * math.sqrt(max(n, 1))))
            nlist = min(nlist, max(1, n // 39))  # FAISS wants about 39 training points per list
            quantizer = faiss.IndexFlatIP(dim)
            inner = faiss.IndexIVFPQ(quantizer, dim, nlist, spec.pq_m, 8 if n >= 256 * 39 else 4,
                                     faiss.METRIC_INNER_PRODUCT)
            if n:
                rng = np.random.default_rng(0)
                train = x if n <= 200_000 else x[rng.choice(n, 200_000, replace=False)]
                inner.train(train)
            vi = cls(dim, faiss.IndexIDMap2(inner), replace(spec, nlist=nlist))
            vi._keep = quantizer  # the IVF index does not own its quantizer in Python: keep it alive
            if n:
                vi.index.add_with_ids(x, np.ascontiguousarray(ids, dtype=np.int64))
            return vi
        else:
            inner = faiss.IndexFlatIP(dim)
        vi = cls(dim, faiss.IndexIDMap2(inner), spec)
        if n:
            vi.index.add_with_ids(x, np.ascontiguousarray(ids, dtype=np.int64))
        return vi

    def search(self, queries: np.ndarray, k: int,
               rerank: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """queries [shape=(q, dim)] -> (scores [shape=(q, k)], ids [shape=(q, k)]; -1 pads).

        For IVF-PQ, ``rerank(ids) -> vectors [shape=(len(ids), dim)]`` gives the stored embeddings, and the
        ``k * refine`` candidates are re-scored exactly with them."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if not len(self):
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        k = max(1, min(int(k), len(self)))
        if self.spec.kind == "hnsw":
            dist, ids = self.index.search(q, k)
            return np.where(ids >= 0, 1.0 - dist / 2.0, -np.inf).astype(np.float32), ids
        if self.spec.kind != "ivfpq" or rerank is None:
            return self.index.search(q, k)
        depth = min(len(self), k * self.spec.refine)
        _, cand = self.index.search(q, depth)
        scores = np.full((len(q), k), -np.inf, np.float32)
        ids = np.full((len(q), k), -1, np.int64)
        for i, row in enumerate(cand):
            row = row[row >= 0]
            if not len(row):
                continue
            exact = np.asarray(rerank(row), np.float32) @ q[i]
            top = np.argsort(-exact, kind="stable")[:k]
            scores[i, : len(top)], ids[i, : len(top)] = exact[top], row[top]
        return scores, ids

    def memory_bytes(self) -> int:
        """Bytes the index takes when serialised (about what it holds in memory)."""
        return int(faiss_module().serialize_index(self.index).nbytes)

    def save(self, path: str | Path, *, generation: int, fingerprint: str) -> None:
        """Write atomically: ``path`` (FAISS) and ``path.json`` (which catalog state and spec it holds)."""
        faiss = faiss_module()
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, path)
        meta = path.with_name(path.name + ".json")
        tmpm = meta.with_name(f".{meta.name}.tmp")
        tmpm.write_text(json.dumps({"generation": generation, "fingerprint": fingerprint,
                                    "count": len(self), "dim": self.dim, "spec": self.spec.to_dict()}))
        os.replace(tmpm, meta)

    @classmethod
    def load_if_current(cls, path: str | Path, *, generation: int, fingerprint: str, dim: int,
                        spec: IndexSpec | None = None) -> VectorIndex | None:
        """The saved index if it holds exactly this catalog state (and ``spec``, when given), else None."""
        path = Path(path)
        meta = path.with_name(path.name + ".json")
        try:
            m = json.loads(meta.read_text())
            if m.get("generation") != generation or m.get("fingerprint") != fingerprint or m.get("dim") != dim:
                return None
            saved = IndexSpec.from_dict(m.get("spec") or {})
            if spec is not None and saved != (spec if spec.nlist else replace(spec, nlist=saved.nlist)) and not (
                spec.kind == "ivfpq" and saved.kind == "flat" and m.get("count", 0) < IVFPQ_MIN):
                return None
            index = faiss_module().read_index(str(path))
        except (OSError, ValueError, RuntimeError, ParameterError):
            return None
        vi = cls(dim, index, saved)
        return vi if len(vi) == m.get("count") else None
