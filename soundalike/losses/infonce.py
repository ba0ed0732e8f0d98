"""InfoNCE (NT-Xent) with in-batch negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(za: torch.Tensor, zb: torch.Tensor, *, temperature: float = 0.1,
             groups: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE over two views.

    za, zb : (B, D) unit-norm embeddings; row i of ``za`` and row i of ``zb``
    are the positive pair, every other row of either view is a negative.
    groups : optional (B,) integer group of each pair (a package, a work).
    Rows of another pair in the *same* group are then left out of the
    denominator: neither positive nor negative, so the loss never pushes
    two tracks of one album apart while it learns to tell tracks apart.
    Returns (loss, accuracy): the mean cross-entropy over the 2B anchors, and
    the fraction of anchors whose most similar other row is their positive.
    """
    if za.shape != zb.shape or za.ndim != 2:
        raise ValueError(f"views must both be (B, D), got {tuple(za.shape)} and {tuple(zb.shape)}")
    b = za.shape[0]
    z = torch.cat([za, zb], dim=0)  # (2B, D)
    logits = z @ z.t() / temperature  # (2B, 2B)
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    drop = torch.eye(2 * b, dtype=torch.bool, device=z.device)
    if groups is not None:
        if groups.shape != (b,):
            raise ValueError(f"groups must be ({b},), got {tuple(groups.shape)}")
        g = torch.cat([groups, groups]).to(z.device)
        same = g[:, None] == g[None, :]
        same[torch.arange(2 * b, device=z.device), target] = False  # keep each anchor's own positive
        drop = drop | same
    logits = logits.masked_fill(drop, float("-inf"))
    loss = F.cross_entropy(logits, target)
    acc = (logits.argmax(dim=1) == target).float().mean()
    return loss, acc
