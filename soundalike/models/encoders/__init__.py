"""Built-in encoders; importing this package registers them."""

from soundalike.models.encoders.contrastive_cnn import ContrastiveCNN
from soundalike.models.encoders.fingerprint_cnn import FingerprintCNN
from soundalike.models.encoders.hash_cnn import HashCNN

__all__ = ["ContrastiveCNN", "FingerprintCNN", "HashCNN"]
