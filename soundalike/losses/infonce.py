"""InfoNCE (NT-Xent) with in-batch negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(za: torch.Tensor, zb: torch.Tensor, *, temperature: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE over two views.

    za, zb : (B, D) unit-norm embeddings; row i of ``za`` and row i of ``zb``
    are the positive pair, every other row of either view is a negative.
    Returns (loss, accuracy): the mean cross-entropy over the 2B anchors, and
    the fraction of anchors whose most similar other row is their positive.
    """
    if za.shape != zb.shape or za.ndim != 2:
        raise ValueError(f"views must both be (B, D), got {tuple(za.shape)} and {tuple(zb.shape)}")
    b = za.shape[0]
    z = torch.cat([za, zb], dim=0)  # (2B, D)
    logits = z @ z.t() / temperature  # (2B, 2B)
    logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    loss = F.cross_entropy(logits, target)
    acc = (logits.argmax(dim=1) == target).float().mean()
    return loss, acc
