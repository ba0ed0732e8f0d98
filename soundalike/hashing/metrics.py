"""Retrieval quality of codes and embeddings: queries against a database, relevant = same label.

Hamming ranking ties are frequent with short codes. They are broken by one
seeded random order of the database (the same for every query and method), so
a method gains nothing from the order the database happens to be stored in.
"""

from __future__ import annotations

import numpy as np

from soundalike.errors import ParameterError
from soundalike.evaluation.metrics import average_precision, precision_at_k
from soundalike.fingerprint.codes import hamming


def ranking_scores(distances: np.ndarray, query_labels: np.ndarray, db_labels: np.ndarray, *, k: int = 10,
                   seed: int = 0) -> dict[str, float]:
    """MAP and precision@k of ranking the database by ascending distance, per query.

    distances [shape=(n_queries, n_db)]; ties broken by a seeded random order of the database.
    Queries whose label no database item has are skipped.
    """
    d = np.asarray(distances)
    ql, dl = np.asarray(query_labels), np.asarray(db_labels)
    if d.shape != (len(ql), len(dl)):
        raise ParameterError(f"distances {d.shape} do not match {len(ql)} queries x {len(dl)} database items")
    perm = np.random.default_rng(seed).permutation(len(dl))
    aps, precs = [], []
    for i in range(len(ql)):
        rel_all = dl == ql[i]
        n_rel = int(rel_all.sum())
        if n_rel == 0:
            continue
        order = perm[np.argsort(d[i, perm], kind="stable")]
        rel = rel_all[order]
        aps.append(average_precision(rel, n_rel))
        precs.append(precision_at_k(rel, k))
    return {"map": float(np.mean(aps)) if aps else float("nan"),
            f"precision@{k}": float(np.mean(precs)) if precs else float("nan"), "queries": len(aps)}


def hamming_ranking(query_codes: np.ndarray, db_codes: np.ndarray, query_labels: np.ndarray,
                    db_labels: np.ndarray, *, k: int = 10, seed: int = 0) -> dict[str, float]:
    """MAP and precision@k of Hamming ranking; codes packed uint8 [shape=(n, bits / 8)]."""
    return ranking_scores(hamming(query_codes, db_codes), query_labels, db_labels, k=k, seed=seed)


def cosine_ranking(query: np.ndarray, db: np.ndarray, query_labels: np.ndarray, db_labels: np.ndarray, *,
                   k: int = 10, seed: int = 0) -> dict[str, float]:
    """MAP and precision@k of ranking by cosine similarity of float embeddings."""
    q = np.asarray(query, dtype=np.float64)
    b = np.asarray(db, dtype=np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return ranking_scores(-(q @ b.T), query_labels, db_labels, k=k, seed=seed)
