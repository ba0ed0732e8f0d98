"""Built-in encoders; importing this package registers them."""

from soundalike.models.encoders.contrastive_cnn import ContrastiveCNN

__all__ = ["ContrastiveCNN"]
