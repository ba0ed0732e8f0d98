"""Supervised contrastive loss (Khosla et al., 2020) over labelled embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sup_con(z: torch.Tensor, labels: torch.Tensor, *, temperature: float = 0.1) -> torch.Tensor:
    """SupCon ("L_out"): each anchor's positives are the other rows with its label.

    z : (N, D) unit rows; labels : (N,) integers. For every anchor with at least
    one positive: minus the mean over its positives of log softmax (over every
    other row) of the positive's similarity. Returns the mean over those anchors
    (0 when no row has a positive).
    """
    if z.ndim != 2 or labels.shape != (z.shape[0],):
        raise ValueError(f"need z (N, D) and labels (N,), got {tuple(z.shape)} and {tuple(labels.shape)}")
    n = z.shape[0]
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = (z @ z.t() / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = F.log_softmax(logits, dim=1)
    pos = (labels[:, None] == labels[None, :]) & ~self_mask
    n_pos = pos.sum(dim=1)
    has = n_pos > 0
    if not bool(has.any()):
        return z.sum() * 0.0
    mean_pos = log_prob.masked_fill(~pos, 0.0).sum(dim=1)[has] / n_pos[has]
    return -mean_pos.mean()
