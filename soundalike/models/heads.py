"""Heads that sit on an encoder's chunk features: registered by name, saved like encoders.

A head reads ``encoder.net.features(chunks)`` (the pooled features the
embedding is computed from), so one encoder pass gives both the embedding and
the head's outputs. A saved head is ``NAME.safetensors`` + ``NAME.json``: its
registered name and config, its output names (tags), whether the outputs are
independent (multi-label: sigmoid) or one choice (softmax), and the
fingerprint of the encoder whose features it was trained on; loading it
against another encoder fails.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from soundalike.errors import ModelError, ParameterError

FORMAT = "soundalike.head"
HEADS: dict[str, type] = {}


def register_head(name: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        HEADS[name] = cls
        return cls

    return wrap


@register_head("tag_mlp")
class TagMLP(nn.Module):
    """features -> dense + ReLU + dropout -> dense: one logit per tag."""

    @dataclass(frozen=True)
    class Config:
        in_dim: int = 128  # the encoder's feature size
        hidden: int = 256
        n_tags: int = 50
        dropout: float = 0.2

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = c = config or self.Config()
        if min(c.in_dim, c.hidden, c.n_tags) < 1 or not 0 <= c.dropout < 1:
            raise ParameterError(f"bad head config {c}")
        self.net = nn.Sequential(nn.Linear(c.in_dim, c.hidden), nn.ReLU(inplace=True), nn.Dropout(c.dropout),
                                 nn.Linear(c.hidden, c.n_tags))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) -> (B, n_tags) logits."""
        return self.net(features)


class HeadModel:
    """A trained head, its output names, and the encoder it belongs to."""

    def __init__(self, net: Any, *, head: str, tags: tuple[str, ...], multi_label: bool, encoder_fingerprint: str,
                 name: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        n_out = int(getattr(net.config, "n_tags", len(tags)))
        if n_out != len(tags):
            raise ModelError(f"head has {n_out} outputs but {len(tags)} tag names")
        self.net, self.head, self.tags = net.eval(), head, tuple(tags)
        self.multi_label, self.encoder_fingerprint = bool(multi_label), str(encoder_fingerprint)
        self.name = name or head
        self.metadata = dict(metadata or {})

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Encoder features [shape=(n, in_dim)] -> scores in [0, 1] [shape=(n, n_tags)] (softmax rows sum to 1)."""
        with torch.inference_mode():
            logits = self.net(torch.as_tensor(np.asarray(features), dtype=torch.float32))
            out = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
        return out.numpy()

    def check_encoder(self, encoder: Any) -> None:
        if encoder.fingerprint != self.encoder_fingerprint:
            raise ModelError(f"head {self.name!r} was trained on the features of encoder {self.encoder_fingerprint}, "
                             f"not of {encoder.name!r} ({encoder.fingerprint}); use it with that encoder or retrain it")

    def _weights_digest(self) -> str:
        h = hashlib.sha256()
        for key, tensor in sorted(self.net.state_dict().items()):
            h.update(key.encode())
            h.update(np.ascontiguousarray(tensor.detach().cpu().numpy()).tobytes())
        return h.hexdigest()[:16]

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        from soundalike.models.checkpoint import _atomic_write, _stem

        stem = _stem(Path(path))
        stem.parent.mkdir(parents=True, exist_ok=True)
        desc = {"format": FORMAT, "format_version": 1, "name": self.name, "head": self.head,
                "config": asdict(self.net.config), "tags": list(self.tags), "multi_label": self.multi_label,
                "encoder_fingerprint": self.encoder_fingerprint, "metadata": self.metadata,
                "weights_sha256": self._weights_digest()}
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        _atomic_write(stem.with_suffix(".safetensors"), lambda p: save_file(tensors, str(p)))
        _atomic_write(stem.with_suffix(".json"),
                      lambda p: Path(p).write_text(json.dumps(desc, indent=2, sort_keys=True) + "\n"))
        return stem.with_suffix(".safetensors")


def load_head(path: str | Path) -> HeadModel:
    """Load a head saved by :meth:`HeadModel.save` (``NAME``, ``NAME.json`` or ``NAME.safetensors``)."""
    from safetensors.torch import load_file

    from soundalike.models.checkpoint import _stem

    stem = _stem(Path(path))
    try:
        desc = json.loads(stem.with_suffix(".json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read head description {stem.with_suffix('.json')}: {exc}") from exc
    if not isinstance(desc, dict) or desc.get("format") != FORMAT:
        raise ModelError(f"{stem.with_suffix('.json')} is not a soundalike head (format != {FORMAT!r})")
    cls = HEADS.get(str(desc.get("head")))
    if cls is None:
        raise ModelError(f"unknown head {desc.get('head')!r}; registered: {', '.join(sorted(HEADS))}")
    net = cls(cls.Config(**desc["config"]))  # type: ignore[attr-defined]
    try:
        net.load_state_dict(load_file(str(stem.with_suffix(".safetensors"))))
    except Exception as exc:  # missing file, wrong shapes
        raise ModelError(f"cannot load head weights {stem.with_suffix('.safetensors')}: {exc}") from exc
    model = HeadModel(net, head=desc["head"], tags=tuple(desc["tags"]), multi_label=desc["multi_label"],
                      encoder_fingerprint=desc["encoder_fingerprint"], name=desc.get("name"),
                      metadata=desc.get("metadata"))
    if desc.get("weights_sha256") and desc["weights_sha256"] != model._weights_digest():
        raise ModelError(f"{stem}.safetensors does not match its JSON: the weights were replaced or damaged")
    return model
