"""Augmentations that make "same track" survive real-world change.

:mod:`soundalike.augment.waveform` (gain, noise, EQ, codec, pitch, tempo,
reverb), :mod:`soundalike.augment.spec` (noise in the power-mel domain,
masking) and :mod:`soundalike.augment.chain` (:class:`AugmentConfig` and the
random chains used in training).
"""

from soundalike.augment.chain import AugmentConfig, augment_chunk, augment_waveform

__all__ = ["AugmentConfig", "augment_chunk", "augment_waveform"]
