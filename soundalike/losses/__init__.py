"""Training losses: InfoNCE over instance pairs, supervised contrastive over groups."""

from soundalike.losses.infonce import info_nce
from soundalike.losses.supcon import sup_con

__all__ = ["info_nce", "sup_con"]
