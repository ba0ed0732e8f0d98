""""Where did this come from?": binary fingerprints of 1 s windows, a Hamming index, and
offset-consistent voting.

Heavy modules (torch, faiss) load on first use.
"""

from __future__ import annotations

from typing import Any

from soundalike.fingerprint.codes import hamming, pack_codes
from soundalike.fingerprint.match import Candidate, vote

#: The shipped fingerprint model, used when none is named.
DEFAULT_FINGERPRINT_MODEL = "fingerprint_cnn-music"
#: Encoders whose embeddings are meant to be binarised into window codes.
FINGERPRINT_ENCODERS = ("fingerprint_cnn",)


def load_fingerprinter(model: Any = None, **kwargs: Any) -> Any:
    """A :class:`Fingerprinter` for ``model``: a shipped name, a path, an
    :class:`~soundalike.models.checkpoint.AudioEncoder`, or ``None`` for the default."""
    from soundalike.errors import ModelError
    from soundalike.fingerprint.fingerprinter import Fingerprinter
    from soundalike.models.checkpoint import AudioEncoder
    from soundalike.models.factory import load_encoder

    if isinstance(model, Fingerprinter):
        return model
    enc = model if isinstance(model, AudioEncoder) else load_encoder(
        DEFAULT_FINGERPRINT_MODEL if model in (None, "default") else model)
    if enc.encoder not in FINGERPRINT_ENCODERS:
        raise ModelError(f"model {enc.name!r} is a {enc.encoder!r} encoder, not a fingerprint model "
                         f"({', '.join(FINGERPRINT_ENCODERS)}); use {DEFAULT_FINGERPRINT_MODEL!r} or train one with "
                         "configs/fingerprint.yaml")
    return Fingerprinter(enc, **kwargs)


__all__ = ["DEFAULT_FINGERPRINT_MODEL", "FINGERPRINT_ENCODERS", "Candidate", "hamming", "load_fingerprinter",
           "pack_codes", "vote"]
