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
    """The average-pooled map of encoder block ``tap`` -> dense + ReLU + dropout -> dense: one logit per tag.

    With ``tap = -1`` it reads exactly the pooled features the embedding is made from.
    """

    @dataclass(frozen=True)
    class Config:
        in_dim: int = 128  # channels of the tapped block
        hidden: int = 256
        n_tags: int = 50
        dropout: float = 0.2
        tap: int = -1  # encoder block whose output map is read (-1: the last)

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = c = config or self.Config()
        if min(c.in_dim, c.hidden, c.n_tags) < 1 or not 0 <= c.dropout < 1:
            raise ParameterError(f"bad head config {c}")
        self.net = nn.Sequential(nn.Linear(c.in_dim, c.hidden), nn.ReLU(inplace=True), nn.Dropout(c.dropout),
                                 nn.Linear(c.hidden, c.n_tags))

    def head_input(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """The encoder's block maps -> what :meth:`forward` reads: (B, in_dim)."""
        return maps[self.config.tap].mean(dim=(-2, -1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) -> (B, n_tags) logits."""
        return self.net(features)


@register_head("tag_conv")
class TagConv(nn.Module):
    """A tagging branch off the encoder: the map of block ``tap`` -> conv 3x3 + BN + ReLU + max-pool 2 ->
    conv 3x3 + BN + ReLU -> mean and max over the map -> dense + ReLU -> dense: one logit per tag.

    The encoder's blocks up to ``tap`` are shared with the embedding (one pass gives both); only this
    branch is trained, so the embedding and every catalog built on it stay unchanged.
    """

    @dataclass(frozen=True)
    class Config:
        in_channels: int = 64  # channels of the tapped block
        channels: tuple[int, ...] = (96, 128)
        hidden: int = 256
        n_tags: int = 50
        dropout: float = 0.3
        tap: int = 1  # encoder block whose output map is read (0-based)

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = c = config or self.Config()
        if min(c.in_channels, c.hidden, c.n_tags, *c.channels) < 1 or not 0 <= c.dropout < 1 or not c.channels:
            raise ParameterError(f"bad head config {c}")
        layers: list[nn.Module] = []
        cin = c.in_channels
        for i, cout in enumerate(c.channels):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            if i < len(c.channels) - 1:
                layers.append(nn.MaxPool2d(2))
            cin = cout
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(2 * cin, c.hidden), nn.ReLU(inplace=True),
                                nn.Dropout(c.dropout), nn.Linear(c.hidden, c.n_tags))

    def head_input(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """The encoder's block maps -> what :meth:`forward` reads: (B, in_channels, M', T')."""
        return maps[self.config.tap]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, M', T') -> (B, n_tags) logits."""
        h = self.blocks(x)
        return self.fc(torch.cat([h.mean(dim=(-2, -1)), h.amax(dim=(-2, -1))], dim=1))


def activate(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Logits -> scores in [0, 1]: sigmoid per tag (multi-label) or softmax over tags (one choice)."""
    return torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)


def head_config(name: str, values: dict[str, Any]) -> Any:
    cls = HEADS.get(name)
    if cls is None:
        raise ModelError(f"unknown head {name!r}; registered: {', '.join(sorted(HEADS))}")
    fields = cls.Config.__dataclass_fields__  # type: ignore[attr-defined]
    unknown = set(values) - set(fields)
    if unknown:
        raise ModelError(f"head {name!r} has no settings {sorted(unknown)}")
    vals = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls.Config(**vals)  # type: ignore[attr-defined]


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
        self.ref = self.name  # how it was loaded: a shipped name or a path (set by load_head)
        self._digest: str | None = None  # the verified digest of weights loaded from a file (never trained after)

    @property
    def tap(self) -> int:
        return int(self.net.config.tap)

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        return activate(logits, self.multi_label)

    def scores_from_maps(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """The encoder's block maps (:meth:`ContrastiveCNN.trunk`) -> scores (B, n_tags)."""
        return self.activate(self.net(self.net.head_input(maps)))

    def scores(self, inputs: np.ndarray) -> np.ndarray:
        """Head inputs (what ``head_input`` gives, e.g. pooled features [shape=(n, in_dim)]) -> scores in
        [0, 1] [shape=(n, n_tags)] (softmax rows sum to 1)."""
        with torch.inference_mode():
            out = self.activate(self.net(torch.as_tensor(np.asarray(inputs), dtype=torch.float32)))
        return out.numpy()

    def check_encoder(self, encoder: Any) -> None:
        if encoder.fingerprint != self.encoder_fingerprint:
            raise ModelError(f"head {self.name!r} was trained on the features of encoder {self.encoder_fingerprint}, "
                             f"not of {encoder.name!r} ({encoder.fingerprint}); use it with that encoder or retrain it")

    @property
    def weights_digest(self) -> str:
        """sha256 of the weights (16 hex digits): which trained head this is."""
        return self._digest or self._weights_digest()

    def _weights_digest(self) -> str:
        h = hashlib.sha256()
        for key, tensor in sorted(self.net.state_dict().items()):
            h.update(key.encode())
            h.update(np.ascontiguousarray(tensor.detach().cpu().numpy()).tobytes())
        return h.hexdigest()[:16]

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        from soundalike.models.checkpoint import _stem, atomic_write

        stem = _stem(Path(path))
        stem.parent.mkdir(parents=True, exist_ok=True)
        desc = {"format": FORMAT, "format_version": 1, "name": self.name, "head": self.head,
                "config": asdict(self.net.config), "tags": list(self.tags), "multi_label": self.multi_label,
                "encoder_fingerprint": self.encoder_fingerprint, "metadata": self.metadata,
                "weights_sha256": self._weights_digest()}
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        atomic_write(stem.with_suffix(".safetensors"), lambda p: save_file(tensors, str(p)))
        atomic_write(stem.with_suffix(".json"),
                      lambda p: Path(p).write_text(json.dumps(desc, indent=2, sort_keys=True) + "\n"))
        return stem.with_suffix(".safetensors")


HEADS_DIR = Path(__file__).with_name("weights") / "heads"


def list_shipped_heads() -> list[str]:
    """Names of the heads shipped inside the package."""
    return sorted(p.stem for p in HEADS_DIR.glob("*.json") if p.with_suffix(".safetensors").exists())


def load_head(path: str | Path) -> HeadModel:
    """Load a head by shipped name (:func:`list_shipped_heads`) or a path saved by :meth:`HeadModel.save`
    (``NAME``, ``NAME.json`` or ``NAME.safetensors``)."""
    from safetensors.torch import load_file

    from soundalike.models.checkpoint import _stem

    stem = _stem(Path(path).expanduser())
    if not stem.with_suffix(".json").exists() and str(path) in list_shipped_heads():
        stem = HEADS_DIR / str(path)
    elif not stem.with_suffix(".json").exists():
        raise ModelError(f"no head {str(path)!r}: not a file, and not a shipped head "
                         f"({', '.join(list_shipped_heads()) or 'none shipped'})")
    try:
        desc = json.loads(stem.with_suffix(".json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read head description {stem.with_suffix('.json')}: {exc}") from exc
    if not isinstance(desc, dict) or desc.get("format") != FORMAT:
        raise ModelError(f"{stem.with_suffix('.json')} is not a soundalike head (format != {FORMAT!r})")
    name = str(desc.get("head"))
    net = HEADS[name](head_config(name, desc.get("config") or {}))
    try:
        net.load_state_dict(load_file(str(stem.with_suffix(".safetensors"))))
    except Exception as exc:  # missing file, wrong shapes
        raise ModelError(f"cannot load head weights {stem.with_suffix('.safetensors')}: {exc}") from exc
    model = HeadModel(net, head=desc["head"], tags=tuple(desc["tags"]), multi_label=desc["multi_label"],
                      encoder_fingerprint=desc["encoder_fingerprint"], name=desc.get("name"),
                      metadata=desc.get("metadata"))
    model._digest = model._weights_digest()
    if desc.get("weights_sha256") and desc["weights_sha256"] != model._digest:
        raise ModelError(f"{stem}.safetensors does not match its JSON: the weights were replaced or damaged")
    model.ref = str(path) if stem == HEADS_DIR / str(path) else str(stem.resolve())
    return model
