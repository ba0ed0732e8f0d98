"""Training objectives."""

from soundalike.losses.infonce import info_nce

__all__ = ["info_nce"]
