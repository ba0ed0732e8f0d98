"""Encoder registry: ``@register_encoder`` + :func:`list_encoders`.

Each registered encoder is a ``torch.nn.Module`` class whose ``Config``
attribute is a dataclass of its hyper-parameters; the CLI's ``--encoder``
choices come from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from soundalike.errors import ModelError


@dataclass(frozen=True)
class EncoderEntry:
    name: str
    cls: type
    config_cls: type
    description: str


_REGISTRY: dict[str, EncoderEntry] = {}


def register_encoder(name: str, *, description: str = "") -> Callable[[type], type]:
    """Class decorator that makes an encoder buildable by name."""

    def wrap(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ModelError(f"encoder name {name!r} is registered twice")
        config_cls = getattr(cls, "Config", None)
        if config_cls is None:
            raise ModelError(f"encoder {cls.__name__} needs a nested Config dataclass")
        _REGISTRY[name] = EncoderEntry(name, cls, config_cls, description or (cls.__doc__ or "").strip().split("\n")[0])
        return cls

    return wrap


#: Built-in encoders by name -> the module that registers them. Listing names
#: needs no import (so ``soundalike --help`` stays fast); building one imports torch.
BUILTIN_ENCODERS: dict[str, str] = {
    "contrastive_cnn": "soundalike.models.encoders.contrastive_cnn",
    "contrastive_cnn_small": "soundalike.models.encoders.contrastive_cnn",
    "resnet_cnn": "soundalike.models.encoders.resnet_cnn",
    "dilated_cnn": "soundalike.models.encoders.dilated_cnn",
    "crnn": "soundalike.models.encoders.crnn",
    "fcn5": "soundalike.models.encoders.fcn5",
    "fingerprint_cnn": "soundalike.models.encoders.fingerprint_cnn",
    "hash_cnn": "soundalike.models.encoders.hash_cnn",
}


def list_encoders() -> list[str]:
    return sorted(set(_REGISTRY) | set(BUILTIN_ENCODERS))


def get_encoder_entry(name: str) -> EncoderEntry:
    if name not in _REGISTRY and name in BUILTIN_ENCODERS:
        import importlib

        importlib.import_module(BUILTIN_ENCODERS[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown encoder {name!r}; registered: {', '.join(sorted(_REGISTRY))}") from None


def build_config(name: str, overrides: dict[str, Any] | None = None) -> Any:
    entry = get_encoder_entry(name)
    from dataclasses import fields

    known = {f.name for f in fields(entry.config_cls)}
    bad = set(overrides or {}) - known
    if bad:
        raise ModelError(f"encoder {name!r} has no settings {sorted(bad)}; it has {sorted(known)}")
    cfg = dict(overrides or {})
    for k, v in list(cfg.items()):  # JSON gives lists where the dataclass has tuples
        if isinstance(v, list):
            cfg[k] = tuple(v)
    return entry.config_cls(**cfg)


#: The tag-head kinds :func:`soundalike.models.heads.register_head` registers, by name, for command-line choices
#: that must not import torch (``soundalike --help`` stays fast); a test keeps it equal to the registry.
HEAD_KINDS: tuple[str, ...] = ("tag_conv", "tag_mlp")
