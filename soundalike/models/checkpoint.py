"""Self-describing model files and the :class:`AudioEncoder` that wraps a network.

A model is two files side by side: ``NAME.safetensors`` (weights) and
``NAME.json`` (the encoder's registered name, its config, the exact front-end
settings, label names and versions). Loading never executes pickled code, and
inference reads its front-end from the JSON only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import ModelError, ParameterError
from soundalike.features.mel import FrontendConfig

FORMAT = "soundalike.model"
FORMAT_VERSION = 1

# front-end fields that only say how densely a track is sampled at inference
# time; they do not change what a chunk embedding means.
_NON_SEMANTIC_FRONTEND = ("chunk_hop_frames",)
# encoder settings added after models were shipped, with the value those models had: a config that holds it
# fingerprints as it did before the setting existed, so catalogs made with those models keep matching them.
_LEGACY_CONFIG_DEFAULTS: dict[str, Any] = {"song_pool": "mean"}


def song_embedding(chunk_embeddings: np.ndarray) -> np.ndarray:
    """Mean of unit chunk embeddings, re-normalised to unit length.

    chunk_embeddings : [shape=(n, d)] -> [shape=(d,)]
    """
    if chunk_embeddings.ndim != 2 or len(chunk_embeddings) == 0:
        raise ParameterError("need at least one chunk embedding of shape (n, d)")
    m = chunk_embeddings.astype(np.float64).mean(axis=0)
    norm = float(np.linalg.norm(m))
    if norm < 1e-12:  # chunks cancel out: fall back to the first chunk
        m, norm = chunk_embeddings[0].astype(np.float64), 1.0
    return (m / norm).astype(np.float32)


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=list)


class AudioEncoder:
    """A network plus the front-end it was trained with.

    ``net``: torch module mapping log-mel chunks (B, n_mels, chunk_frames) to
    unit-norm embeddings (B, embed_dim).
    """

    def __init__(self, net: Any, *, encoder: str, frontend: FrontendConfig, name: str | None = None,
                 labels: tuple[str, ...] = (), metadata: dict[str, Any] | None = None,
                 source: str | None = None) -> None:
        self.net = net
        self.encoder = encoder
        self.frontend = frontend
        self.name = name or encoder
        self.labels = tuple(labels)
        self.metadata = dict(metadata or {})
        self.source = source  # the path or pretrained name it was loaded from
        self._fingerprint: str | None = None
        self._inference_ready = False
        #: "onnx": inference passes run on ONNX Runtime where they can (set for models loaded from a file,
        #: see :mod:`soundalike.models.runtime`); "torch": eager torch (a model being built or trained)
        self.runtime = "torch"
        self._graphs: dict[str, Any] = {}

    # ----------------------------------------------------------- description
    @property
    def embed_dim(self) -> int:
        return int(self.net.embed_dim)

    @property
    def config(self) -> dict[str, Any]:
        return asdict(self.net.config)

    def describe(self) -> dict[str, Any]:
        from soundalike import __version__

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "encoder": self.encoder,
            "config": self.config,
            "frontend": self.frontend.to_dict(),
            "embed_dim": self.embed_dim,
            "labels": list(self.labels),
            "soundalike_version": __version__,
            "metadata": self.metadata,
        }

    @property
    def fingerprint(self) -> str:
        """sha256 over architecture, config, front-end and every weight (16 hex digits)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            fe = {k: v for k, v in self.frontend.to_dict().items() if k not in _NON_SEMANTIC_FRONTEND}
            cfg = {k: v for k, v in self.config.items()
                   if not (k in _LEGACY_CONFIG_DEFAULTS and v == _LEGACY_CONFIG_DEFAULTS[k])}
            h.update(_canonical({"encoder": self.encoder, "config": cfg, "frontend": fe}).encode())
            for key, tensor in sorted(self.net.state_dict().items()):
                h.update(key.encode())
                h.update(np.ascontiguousarray(tensor.detach().cpu().numpy()).tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def invalidate_fingerprint(self) -> None:
        """Call after changing weights in place (training)."""
        self._fingerprint = None
        self._inference_ready = False
        self.runtime = "torch"  # weights that change are never run from a stale export
        self._graphs.clear()

    # ------------------------------------------------------------- inference
    def _prepare(self) -> None:
        if not self._inference_ready:
            import torch

            self.net.eval()
            self.net.to(memory_format=torch.channels_last)
            self._inference_ready = True

    def embed_chunks(self, chunks: Any, *, batch_size: int = 128) -> np.ndarray:
        """Embed log-mel chunks.

        chunks : torch.Tensor or np.ndarray [shape=(n, n_mels, chunk_frames)], dB
        returns np.ndarray [shape=(n, embed_dim), dtype=float32], unit rows
        """
        return self._batched(self.net, chunks, batch_size, graph=("embed",))

    def song_embedding(self, chunk_embeddings: np.ndarray) -> np.ndarray:
        """A track's song embedding from its chunk embeddings [shape=(n, d)] -> [shape=(d,)], unit: the
        model's learnt song pooling when it has one (``song_pool: attention``), else the mean."""
        if getattr(self.net, "song_head", None) is None:
            return song_embedding(chunk_embeddings)
        if chunk_embeddings.ndim != 2 or len(chunk_embeddings) == 0:
            raise ParameterError("need at least one chunk embedding of shape (n, d)")
        import torch

        with torch.inference_mode():
            return self.net.song(torch.from_numpy(np.ascontiguousarray(chunk_embeddings, dtype=np.float32))).numpy()

    def chunk_features(self, chunks: Any, *, batch_size: int = 128) -> np.ndarray:
        """The pooled features the embedding is computed from (what tag heads read).

        chunks : [shape=(n, n_mels, chunk_frames)], dB -> np.ndarray [shape=(n, d), dtype=float32]
        """
        if not hasattr(self.net, "features"):
            raise ModelError(f"encoder {self.name!r} ({self.encoder}) exposes no chunk features for tag heads")
        return self._batched(self.net.features, chunks, batch_size, graph=("features",))

    def embed_with_heads(self, chunks: Any, heads: Any, *, batch_size: int = 128) -> tuple[np.ndarray, list[np.ndarray]]:
        """One pass over log-mel chunks gives the embeddings [shape=(n, embed_dim)] and each head's scores
        [shape=(n, n_tags)]: the heads read the encoder's own block maps (``net.trunk``)."""
        if not hasattr(self.net, "trunk"):
            raise ModelError(f"encoder {self.name!r} ({self.encoder}) exposes no block maps for tag heads")
        heads = list(heads)
        for h in heads:
            h.check_encoder(self)

        def both(x: Any) -> list[Any]:
            maps = self.net.trunk(x)
            return [self.net.embed_maps(maps), *(h.scores_from_maps(maps) for h in heads)]

        out = self._batched(both, chunks, batch_size, graph=("heads", *(h.weights_digest for h in heads)),
                            owners=heads)
        return out[0], out[1:]

    def _graph(self, fn: Any, key: tuple[str, ...], owners: list[Any], frames: int) -> Any:
        """The ONNX Runtime graph of ``fn`` for this model (built or loaded once), or None: run in torch."""
        from soundalike.models import runtime

        if self.runtime != "onnx" or not getattr(self.net, "onnx_exportable", True) or not runtime.runtime_wanted():
            return None
        name = "/".join((*key, str(frames)))
        if name not in self._graphs:
            self._graphs[name] = runtime.build_graph(
                fn, [self.net, *(getattr(o, "net", o) for o in owners)],
                key_parts=(self.fingerprint, *key, f"frames={frames}"), n_mels=self.frontend.n_mels, frames=frames)
        return self._graphs[name]

    def _batched(self, fn: Any, chunks: Any, batch_size: int, *, graph: tuple[str, ...] | None = None,
                 owners: list[Any] | None = None) -> Any:
        """``fn`` over batches of chunks; its tensor (or list of tensors) concatenated as float32 numpy.
        ``graph`` names the pass for ONNX Runtime (see :meth:`_graph`); without it, or without a graph,
        the pass runs in eager torch."""
        import torch

        self._prepare()
        x = torch.as_tensor(chunks, dtype=torch.float32)
        if x.ndim != 3 or x.shape[1] != self.frontend.n_mels:
            raise ModelError(
                f"expected chunks of shape (n, {self.frontend.n_mels}, frames), got {tuple(x.shape)}"
            )
        from soundalike.limits import check_deadline

        onnx = self._graph(fn, graph, list(owners or ()), int(x.shape[2])) if graph and x.shape[0] else None
        if onnx is not None and graph is not None:
            xn = x.numpy()
            outs: list[list[np.ndarray]] = []
            for i in range(0, xn.shape[0], batch_size):
                check_deadline()
                outs.append(onnx(xn[i : i + batch_size]))
            cat = [np.concatenate([o[j] for o in outs]) for j in range(onnx.n_outputs)]
            return cat if graph[0] == "heads" else cat[0]

        parts = []
        with torch.inference_mode():
            for i in range(0, max(x.shape[0], 1), batch_size):
                check_deadline()  # a request past its time limit stops between batches
                parts.append(fn(x[i : i + batch_size]))
        if isinstance(parts[0], list | tuple):  # no chunks: one empty batch, (0, d)
            return [np.concatenate([p[j].numpy() for p in parts]).astype(np.float32, copy=False)
                    for j in range(len(parts[0]))]
        return np.concatenate([p.numpy() for p in parts]).astype(np.float32, copy=False)

    # ------------------------------------------------------------- saving
    def save(self, path: str | Path) -> Path:
        """Write ``path.safetensors`` and ``path.json`` (``path`` without suffix or with either)."""
        from safetensors.torch import save_file

        stem = _stem(Path(path))
        stem.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        desc = self.describe()
        desc["fingerprint"] = self.fingerprint
        atomic_write(stem.with_suffix(".safetensors"), lambda p: save_file(tensors, str(p)))
        atomic_write(stem.with_suffix(".json"),
                      lambda p: Path(p).write_text(json.dumps(desc, indent=2, sort_keys=True) + "\n"))
        return stem.with_suffix(".safetensors")


def _stem(path: Path) -> Path:
    if path.suffix in (".safetensors", ".json"):
        return path.with_suffix("")
    return path


def atomic_write(target: Path, write: Any) -> None:
    """``write(tmp_path)`` then rename onto ``target``: a reader sees the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a model file is meant to be shared
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_model_json(path: str | Path, *, fmt: str = FORMAT, version: int = FORMAT_VERSION,
                    kind: str = "model", names_only: bool = False) -> dict[str, Any]:
    """The JSON half of ``NAME.safetensors`` + ``NAME.json``, checked: it exists, parses, is of format ``fmt`` and
    not newer than ``version``. ``kind`` names the model in errors; ``names_only``: errors name files, not paths."""
    stem = _stem(Path(path))
    jpath = stem.with_suffix(".json")
    shown = jpath.name if names_only else str(jpath)
    if not jpath.is_file():
        raise ModelError(f"{kind} description {shown} is missing: a {kind} is NAME.safetensors plus NAME.json")
    try:
        desc = json.loads(jpath.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {kind} description {shown}: {exc}") from exc
    if not isinstance(desc, dict) or desc.get("format") != fmt:
        raise ModelError(f"{shown} is not a soundalike {kind} description (format != {fmt!r})")
    if int(desc.get("format_version", 0)) > version:
        raise ModelError(f"{shown} was written by a newer soundalike (format {desc['format_version']}); upgrade")
    return desc


def load_weights(net: Any, wpath: Path, *, what: str, names_only: bool = False) -> None:
    """Load ``wpath`` (safetensors) into ``net``, every tensor and no other, and set eval mode; ``what`` names
    the network in errors, ``names_only``: errors name the file, not its path."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    shown = wpath.name if names_only else str(wpath)
    try:
        state = load_file(str(wpath))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"cannot read weights {shown}: {exc}") from exc
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape: weights of another configuration
        detail = str(exc).split("\n\t")[1:2] or [str(exc)]
        raise ModelError(f"weights {shown} do not fit {what}: {detail[0].strip()}") from exc
    if missing or unexpected:
        raise ModelError(f"weights {shown} do not fit {what}: missing {missing}, unexpected {unexpected}")
    net.eval()


def load_model_file(path: str | Path) -> AudioEncoder:
    """Load ``NAME.safetensors`` + ``NAME.json`` into an :class:`AudioEncoder` (eval mode)."""

    from soundalike.models.registry import build_config, get_encoder_entry

    stem = _stem(Path(path))
    desc = read_model_json(stem)
    wpath = stem.with_suffix(".safetensors")
    if not wpath.is_file():
        raise ModelError(f"weights {wpath} are missing beside {stem.with_suffix('.json')}")
    entry = get_encoder_entry(str(desc.get("encoder")))
    net = entry.cls(build_config(entry.name, desc.get("config") or {}))
    load_weights(net, wpath, what=f"encoder {entry.name!r}")
    enc = AudioEncoder(net, encoder=entry.name, frontend=FrontendConfig.from_dict(desc["frontend"]),
                       name=desc.get("name"), labels=tuple(desc.get("labels") or ()),
                       metadata=desc.get("metadata") or {}, source=str(stem))
    enc.runtime = "onnx"
    stored = desc.get("fingerprint")
    if stored and stored != enc.fingerprint:
        raise ModelError(f"{wpath} does not match the fingerprint in its JSON ({stored} != {enc.fingerprint}): "
                         "the weights were replaced or damaged; re-export the model")
    return enc
