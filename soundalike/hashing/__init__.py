"""Compact binary codes for whole clips: the hash-CNN's training and the classic hashing baselines.

- :mod:`soundalike.hashing.methods`: LSH, PCA-ITQ and KSH over float features (registry ``HASHERS``).
- :mod:`soundalike.hashing.metrics`: MAP / precision@k of Hamming and cosine ranking.
- :mod:`soundalike.hashing.data`: labelled whole-track mels, the track-level split, 29.12 s clips.
- :mod:`soundalike.hashing.train`: backbone pre-training, cached feature maps, head training.

The model itself is the registered encoder ``hash_cnn`` (:mod:`soundalike.models.encoders.hash_cnn`).
"""

from soundalike.hashing.methods import HASHERS, create_hasher
from soundalike.hashing.metrics import cosine_ranking, hamming_ranking

DEFAULT_HASH_MODEL = "hash_cnn-music"

__all__ = ["DEFAULT_HASH_MODEL", "HASHERS", "cosine_ranking", "create_hasher", "hamming_ranking"]
