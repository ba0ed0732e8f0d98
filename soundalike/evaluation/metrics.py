"""Retrieval and classification metrics, in plain numpy so each can be checked by hand.

Ranks are 1-based. Relevance is binary (same label or not).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from soundalike.errors import ParameterError


def rank_of(scores: np.ndarray, true_index: np.ndarray) -> np.ndarray:
    """1-based rank of the true item in each row of ``scores`` [shape=(q, n)] (ties count against it)."""
    scores = np.asarray(scores, dtype=np.float64)
    true_index = np.asarray(true_index, dtype=np.int64)
    if scores.ndim != 2 or len(true_index) != len(scores):
        raise ParameterError("scores must be (queries, items) with one true index per query")
    true = scores[np.arange(len(scores)), true_index][:, None]
    return (scores >= true).sum(axis=1).astype(np.int64)


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Share of queries whose true item ranks in the top ``k``."""
    ranks = np.asarray(ranks)
    return float(np.mean(ranks <= k)) if len(ranks) else float("nan")


def mean_reciprocal_rank(ranks: np.ndarray) -> float:
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(np.mean(1.0 / ranks)) if len(ranks) else float("nan")


def precision_at_k(relevant: np.ndarray, k: int) -> float:
    """``relevant``: booleans of a ranked list; share of the first ``k`` that are relevant."""
    rel = np.asarray(relevant, dtype=bool)[:k]
    return float(rel.sum() / k)


def average_precision(relevant: np.ndarray, n_relevant: int | None = None) -> float:
    """Mean of precision@i over the ranks i of relevant items (over all ``n_relevant``)."""
    rel = np.asarray(relevant, dtype=bool)
    total = int(rel.sum()) if n_relevant is None else int(n_relevant)
    if total == 0:
        return float("nan")
    hits = np.cumsum(rel)
    ranks = np.arange(1, len(rel) + 1)
    return float(np.sum((hits / ranks)[rel]) / total)


def ndcg_at_k(relevant: np.ndarray, k: int, n_relevant: int | None = None) -> float:
    """Binary-gain NDCG@k: DCG = sum rel_i / log2(i + 1), over the DCG of a perfect ranking."""
    rel = np.asarray(relevant, dtype=np.float64)[:k]
    total = int(np.asarray(relevant, dtype=bool).sum()) if n_relevant is None else int(n_relevant)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = discounts[: min(k, total)].sum()
    if ideal == 0:
        return float("nan")
    return float((rel * discounts[: len(rel)]).sum() / ideal)


def label_retrieval(embeddings: np.ndarray, labels: list[str], *, k: int = 10) -> dict[str, float]:
    """Leave-one-out retrieval by cosine similarity: each track queries all others.

    Relevant = same label. Tracks whose label no other track has are not queries.
    Returns precision@k, MAP and NDCG@k (means over queries) and the number of queries.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    lab = np.asarray(labels)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    p, ap, nd = [], [], []
    for i in range(len(x)):
        n_rel = int((lab == lab[i]).sum()) - 1
        if n_rel == 0:
            continue
        order = np.argsort(-sims[i], kind="stable")[:-1]  # drop self (at -inf, last)
        rel = lab[order] == lab[i]
        p.append(precision_at_k(rel, k))
        ap.append(average_precision(rel, n_rel))
        nd.append(ndcg_at_k(rel, k, n_rel))
    return {f"precision@{k}": float(np.mean(p)) if p else float("nan"), "map": float(np.mean(ap)) if ap else float("nan"),
            f"ndcg@{k}": float(np.mean(nd)) if nd else float("nan"), "queries": len(p)}


def silhouette(embeddings: np.ndarray, labels: list[str]) -> float:
    """Mean silhouette with cosine distance: > 0 when tracks sit nearer their own label than others'."""
    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    lab = np.asarray(labels)
    d = 1.0 - x @ x.T
    uniq = np.unique(lab)
    if len(uniq) < 2:
        return float("nan")
    s = []
    for i in range(len(x)):
        own = (lab == lab[i])
        if own.sum() < 2:
            continue
        a = d[i, own].sum() / (own.sum() - 1)
        b = min(d[i, lab == u].mean() for u in uniq if u != lab[i])
        s.append((b - a) / max(a, b, 1e-12))
    return float(np.mean(s)) if s else float("nan")


def stratified_folds(labels: list[str], n_folds: int, seed: int) -> np.ndarray:
    """Fold number per item, each label spread evenly over the folds."""
    lab = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(lab), dtype=np.int64)
    for u in np.unique(lab):
        idx = np.flatnonzero(lab == u)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % n_folds
    return fold


def _fit_logreg(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float) -> tuple[np.ndarray, np.ndarray]:
    import torch

    X = torch.from_numpy(x).double()
    Y = torch.from_numpy(y).long()
    W = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(X @ W + b, Y) + l2 * (W**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return W.detach().numpy(), b.detach().numpy()


def linear_probe(embeddings: np.ndarray, labels: list[str], *, n_folds: int = 5, l2: float = 1e-3,
                 seed: int = 0) -> dict[str, float]:
    """Cross-validated accuracy of multinomial logistic regression on standardised embeddings.

    Also reports the majority-class accuracy (what guessing the commonest label scores).
    """
    x = np.asarray(embeddings, dtype=np.float64)
    lab = np.asarray(labels)
    classes, y = np.unique(lab, return_inverse=True)
    if len(classes) < 2:
        raise ParameterError("a linear probe needs at least 2 labels")
    n_folds = int(min(n_folds, np.bincount(y).max()))
    n_folds = max(2, n_folds)
    fold = stratified_folds(list(lab), n_folds, seed)
    correct = 0
    for f in range(n_folds):
        tr, te = fold != f, fold == f
        if not te.any() or len(np.unique(y[tr])) < 2:
            continue
        mu, sd = x[tr].mean(axis=0), x[tr].std(axis=0) + 1e-8
        W, b = _fit_logreg((x[tr] - mu) / sd, y[tr], len(classes), l2)
        pred = np.argmax(((x[te] - mu) / sd) @ W + b, axis=1)
        correct += int((pred == y[te]).sum())
    return {"accuracy": correct / len(x), "majority": float(np.bincount(y).max() / len(y)), "folds": n_folds,
            "classes": len(classes)}


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random negative
    (ties count half). ``nan`` when either class is missing."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks over ties (1-based)
    uniq, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def pr_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision: the mean of precision at the rank of each
    positive, ranking by descending score. ``nan`` without positives."""
    y = np.asarray(labels, dtype=bool)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return average_precision(y[order], int(y.sum()))


def per_tag_auc(labels: np.ndarray, scores: np.ndarray, tags: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """ROC-AUC and PR-AUC of each tag column of labels/scores [shape=(n, n_tags)], and their means over the
    tags that have both positives and negatives."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.shape[1] != len(tags):
        raise ParameterError(f"labels {y.shape}, scores {s.shape} and {len(tags)} tags do not match")
    per = {t: {"roc_auc": roc_auc(y[:, i], s[:, i]), "pr_auc": pr_auc(y[:, i], s[:, i]), "positives": int(y[:, i].sum())}
           for i, t in enumerate(tags)}
    valid = [v for v in per.values() if not np.isnan(v["roc_auc"])]
    return {"tags": per, "mean_roc_auc": float(np.mean([v["roc_auc"] for v in valid])) if valid else float("nan"),
            "mean_pr_auc": float(np.mean([v["pr_auc"] for v in valid])) if valid else float("nan"),
            "tags_scored": len(valid)}
