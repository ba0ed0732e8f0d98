"""Encoders (registered by name), self-describing checkpoints, and their factory."""

from soundalike.models.checkpoint import AudioEncoder, load_model_file
from soundalike.models.factory import DEFAULT_MODEL, create_encoder, list_pretrained, load_encoder
from soundalike.models.registry import list_encoders, register_encoder

__all__ = [
    "DEFAULT_MODEL",
    "AudioEncoder",
    "create_encoder",
    "list_encoders",
    "list_pretrained",
    "load_encoder",
    "load_model_file",
    "register_encoder",
]
