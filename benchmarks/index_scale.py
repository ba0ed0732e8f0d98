"""Vector indexes at scale: build time, memory, recall@10 and query latency for flat, HNSW and IVF-PQ.

    python benchmarks/index_scale.py [--catalog DIR] [--sizes 100000 1000000] [--queries 200]

Vectors are real embeddings plus noise (random vectors understate ANN recall): the chunk embeddings of
``--catalog`` (default: the demo catalog) are the seeds; each database vector is a seed plus Gaussian
noise, renormalised; queries are further noisy copies of seeds. Recall@10 is against exact search over
the same vectors. Latency: single queries (one at a time, 1 thread) and a batch of all queries.
HNSW is swept over efSearch to find the smallest value with recall@10 >= 0.99. Then ingest x-realtime
(`Catalog.add` on generated 30 s tracks) for the local path and Ray with 1 and 2 workers (needs Ray).
Target (issue 8): 1M tracks searched at recall@10 >= 0.99 within 1 ms per query.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from soundalike.index.vectors import IndexSpec, VectorIndex  # noqa: E402


def seeds_from(catalog: str) -> np.ndarray:
    from soundalike import Catalog

    with Catalog.open(catalog) as cat:
        return np.concatenate([cat.embeddings(t.id)[0] for t in cat.tracks()]).astype(np.float32)


def noisy(seeds: np.ndarray, n: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    x = seeds[rng.integers(0, len(seeds), n)] + sigma * rng.standard_normal((n, seeds.shape[1])).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recall_at_10(got: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, exact, strict=True)]))


def run(x: np.ndarray, q: np.ndarray, spec: IndexSpec, exact: np.ndarray | None) -> dict:
    import faiss

    ids = np.arange(len(x), dtype=np.int64)
    t0 = time.perf_counter()
    vi = VectorIndex.build(ids, x, x.shape[1], spec)
    build = time.perf_counter() - t0
    rerank = (lambda r: x[r]) if spec.kind == "ivfpq" else None
    faiss.omp_set_num_threads(1)
    single = []
    for row in q[:100]:
        t = time.perf_counter()
        vi.search(row[None], 10, rerank=rerank)
        single.append(time.perf_counter() - t)
    faiss.omp_set_num_threads(2)
    t = time.perf_counter()
    _, got = vi.search(q, 10, rerank=rerank)
    batch = time.perf_counter() - t
    out = {"kind": spec.kind, "n": len(x), "build_s": round(build, 2), "memory_mb": round(vi.memory_bytes() / 2**20, 1),
           "single_ms_p50": round(statistics.median(single) * 1000, 3),
           "batch_ms_per_query": round(batch / len(q) * 1000, 3), "spec": spec.to_dict()}
    out["recall_at_10"] = 1.0 if exact is None else round(recall_at_10(got, exact), 4)
    if spec.kind == "hnsw":
        out["ef_sweep"] = {}
        inner = faiss.downcast_index(vi.index.index)
        for ef in (16, 32, 48, 64, 96, 128, 192, 256):
            inner.hnsw.efSearch = ef
            _, g = vi.search(q, 10)
            faiss.omp_set_num_threads(1)
            t = time.perf_counter()
            for row in q[:100]:
                vi.search(row[None], 10)
            ms = (time.perf_counter() - t) / 100 * 1000
            faiss.omp_set_num_threads(2)
            out["ef_sweep"][ef] = {"recall_at_10": round(recall_at_10(g, exact), 4) if exact is not None else None,
                                   "single_ms": round(ms, 3)}
    return out


def ingest(n_tracks: int, seconds: float) -> list[dict]:
    """x-realtime of `Catalog.add` on generated tracks: the local path, and Ray with 1 and 2 worker actors
    (a fresh catalog each; embeddings, tags and fingerprints, as `soundalike index` does by default)."""
    import tempfile

    import ray

    from soundalike import Catalog
    from soundalike.testing import write_tracks

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        write_tracks(Path(tmp) / "music", list(range(1, n_tracks + 1)), duration=seconds)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            for label, kw in (("local", {}), ("ray, 1 worker", {"ray": True, "ray_workers": 1}),
                              ("ray, 2 workers", {"ray": True, "ray_workers": 2})):
                with Catalog.create(Path(tmp) / label.replace(" ", "").replace(",", "-")) as cat:
                    t0 = time.perf_counter()
                    rep = cat.add([Path(tmp) / "music"], **kw)
                    wall = time.perf_counter() - t0
                out.append({"path": label, "tracks": rep.added, "audio_s": round(rep.audio_seconds, 1),
                            "wall_s": round(wall, 2), "x_realtime": round(rep.audio_seconds / wall, 1)})
                print(json.dumps(out[-1]), flush=True)
        finally:
            ray.shutdown()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", default="demo/catalog", help="catalog whose chunk embeddings seed the vectors")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--sigma", type=float, default=0.05, help="noise per dimension around each seed")
    ap.add_argument("--out", default="docs/experiments/index_scale.json")
    ap.add_argument("--ingest-tracks", type=int, default=40, help="generated 30 s tracks for the ingest run (0: skip)")
    ap.add_argument("--skip-indexes", action="store_true", help="only the ingest run (keeps the saved index figures)")
    args = ap.parse_args()
    import faiss

    faiss.cvar.distance_compute_blas_threshold = 1000  # batch search through BLAS (see FACTS.md)
    rng = np.random.default_rng(0)
    if args.skip_indexes:
        saved = json.loads(Path(args.out).read_text())
        saved["ingest"] = ingest(args.ingest_tracks, 30.0)
        Path(args.out).write_text(json.dumps(saved, indent=1) + "\n")
        print(f"wrote {args.out}")
        return 0
    seeds = seeds_from(args.catalog)
    print(f"{len(seeds)} real chunk embeddings from {args.catalog} seed the vectors (sigma {args.sigma})", flush=True)
    results = []
    for n in args.sizes:
        x = noisy(seeds, n, args.sigma, rng)
        q = noisy(seeds, args.queries, args.sigma, rng)
        flat = run(x, q, IndexSpec(kind="flat"), None)
        _, exact = VectorIndex.build(np.arange(n, dtype=np.int64), x, x.shape[1]).search(q, 10)
        results.append(flat)
        for spec in (IndexSpec(kind="hnsw"), IndexSpec(kind="ivfpq")):
            results.append(run(x, q, spec, exact))
        for r in results[-3:]:
            print(json.dumps({k: v for k, v in r.items() if k != "spec"}), flush=True)
        hn = results[-2]
        ok = [ef for ef, v in hn["ef_sweep"].items() if v["recall_at_10"] >= 0.99]
        if ok:
            print(f"n={n}: smallest efSearch with recall@10 >= 0.99: {ok[0]} "
                  f"({hn['ef_sweep'][ok[0]]['single_ms']} ms per query)", flush=True)
        del x
    doc = {"sigma": args.sigma, "seeds": len(seeds), "queries": args.queries, "results": results}
    if args.ingest_tracks:
        doc["ingest"] = ingest(args.ingest_tracks, 30.0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
