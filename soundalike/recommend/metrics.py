"""Ranking metrics on held-out listens: recall@k and NDCG@k, overall and per segment (warm / cold tracks).

``scores`` is a (users, tracks) matrix where tracks a user must not be offered (already heard) are ``-inf``;
``targets[u]`` holds the column indices of the tracks user ``u`` played in the held-out period. Ties go to the
lower column (the lower track id), as in :func:`soundalike.recommend.rank.recommend`.

- recall@k = hits in the top k / held-out tracks (segment recall: hits among that segment's held-out
  tracks / that segment's held-out tracks, over the same single top-k list);
- NDCG@k = DCG of the hits / DCG of an ideal list (min(k, held-out) hits at the top).

Both are averaged over the users that have held-out tracks (in that segment).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's ``k`` best scores, best first; ties to the lower column."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else \
        np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    # the partition may cut inside a tie: widen to every column scoring at least the k-th best, then sort
    kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
    out = np.empty((scores.shape[0], k), np.int64)
    for r in range(scores.shape[0]):
        cand = np.flatnonzero(scores[r] >= kth[r, 0])
        order = np.lexsort((cand, -scores[r, cand]))
        out[r] = cand[order[:k]]
    return out


def ranking_metrics(scores: np.ndarray, targets: list[np.ndarray], k: int = 20,
                    cold: np.ndarray | None = None) -> dict[str, Any]:
    """recall@k and ndcg@k over users with targets; with ``cold`` (bool per column) also per segment."""
    users = [u for u, t in enumerate(targets) if len(t)]
    out: dict[str, Any] = {"users": len(users), "k": k}
    if not users:
        return {**out, "recall": 0.0, "ndcg": 0.0}
    top = top_k(scores[users], k)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    recall, ndcg = [], []
    seg: dict[str, list[float]] = {"warm": [], "cold": []}
    for row, u in enumerate(users):
        want = set(int(t) for t in targets[u])
        hit = np.array([int(c) in want for c in top[row]], bool)
        recall.append(hit.sum() / len(want))
        ndcg.append(float((hit * disc[:len(hit)]).sum() / disc[:min(k, len(want))].sum()))
        if cold is not None:
            for name, flag in (("cold", True), ("warm", False)):
                part = {t for t in want if bool(cold[t]) == flag}
                if part:
                    seg[name].append(sum(int(c) in part for c in top[row]) / len(part))
    out.update(recall=float(np.mean(recall)), ndcg=float(np.mean(ndcg)))
    if cold is not None:
        for name, vals in seg.items():
            out[f"recall_{name}"] = float(np.mean(vals)) if vals else None
            out[f"users_{name}"] = len(vals)
    return out
