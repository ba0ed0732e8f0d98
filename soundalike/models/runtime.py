"""Inference graphs on ONNX Runtime: the CNN passes of indexing, tagging and fingerprinting, 3-5x faster
than eager torch on a laptop CPU and steadier under load.

A model loaded from a file (a shipped name or a path) runs its inference passes through ONNX Runtime when
``onnxruntime`` and ``onnx`` are installed (both are dependencies of soundalike). Each graph (the encoder
alone, its pooled features, or the encoder with a set of tag heads in one pass) is exported once from the
torch module and kept under :func:`cache_dir` by a key of the model's fingerprint, the heads' weights and
the torch and ONNX versions, so later runs start at once. Outputs match eager torch to about 1e-6.

``SOUNDALIKE_RUNTIME=torch`` turns it off (every pass runs in eager torch); a model being trained always
runs in torch. When ONNX Runtime is missing or an export fails, the pass runs in torch and a warning says why,
once per process.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: ``torch`` turns ONNX Runtime off; ``onnx`` (or unset) uses it where it can.
RUNTIME_ENV = "SOUNDALIKE_RUNTIME"
#: where exported graphs are kept (default ``$XDG_CACHE_HOME/soundalike`` or ``~/.cache/soundalike``)
CACHE_ENV = "SOUNDALIKE_CACHE_DIR"
OPSET = 17

_warned: set[str] = set()
_lock = threading.Lock()


def runtime_wanted() -> bool:
    """False when ``SOUNDALIKE_RUNTIME=torch`` asks for eager torch everywhere."""
    value = os.environ.get(RUNTIME_ENV, "onnx").strip().lower()
    return value not in ("torch", "eager", "0", "off", "no")


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_dir() -> Path:
    """Where soundalike keeps what it derives on this machine (exported graphs): ``$SOUNDALIKE_CACHE_DIR``,
    else ``$XDG_CACHE_HOME/soundalike``, else ``~/.cache/soundalike``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "soundalike"


def _warn_once(what: str, message: str) -> None:
    if what not in _warned:
        _warned.add(what)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


class OnnxGraph:
    """One exported graph: float32 chunks [shape=(n, n_mels, frames)] in, a list of float32 arrays out."""

    def __init__(self, session: Any, n_outputs: int) -> None:
        self.session = session
        self.n_outputs = n_outputs
        self._input = session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        out = self.session.run(None, {self._input: np.ascontiguousarray(x, dtype=np.float32)})
        return [np.asarray(o, dtype=np.float32) for o in out]


def _as_module(fn: Any, owners: Sequence[Any]) -> Any:
    """A torch module whose forward is ``fn`` (chunks -> a tensor or a list of tensors), holding the
    modules ``owners`` whose weights ``fn`` uses: what gets exported."""
    import torch

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.owners = torch.nn.ModuleList(list(owners))

        def forward(self, x: Any) -> Any:
            out = fn(x)
            return tuple(out) if isinstance(out, list | tuple) else out

    return Graph().eval()


def graph_key(parts: Sequence[str]) -> str:
    import onnxruntime
    import torch

    h = hashlib.sha256("|".join([*parts, torch.__version__, onnxruntime.__version__, str(OPSET)]).encode())
    return h.hexdigest()[:24]


def build_graph(fn: Any, owners: Sequence[Any], *, key_parts: Sequence[str], n_mels: int | None = None,
                frames: int | None = None, shape: Sequence[int | str] | None = None,
                threads: int | None = None) -> OnnxGraph | None:
    """Export ``fn`` (chunks -> tensor or list of tensors; its weights in the modules ``owners``) to ONNX, or
    reuse the cached export, and open it in ONNX Runtime. The input is ``(batch, n_mels, frames)`` chunks, or
    of ``shape`` (a name for each axis whose size varies: ``("batch", 7, 176, "frames")``). None (and one
    warning) when that cannot be done: the caller runs the pass in torch."""
    dims: list[int | str] = list(shape) if shape is not None else ["batch", int(n_mels or 0), int(frames or 0)]
    if not onnx_available():
        _warn_once("missing", "onnxruntime or onnx is not installed: CNN passes run in eager torch, 3-5x slower "
                   "(pip install onnxruntime onnx)")
        return None
    import onnxruntime as ort
    import torch

    key = graph_key(key_parts)
    path = cache_dir() / "onnx" / f"{key}.onnx"
    try:
        with _lock:
            data = path.read_bytes() if path.is_file() else None
            if data is None:
                data = _export(fn, owners, dims)
                _store(path, data)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads or torch.get_num_threads()))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # idle pool threads sleep instead of spinning: they would take the core the decode thread runs on
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        got = session.get_inputs()[0]
        if got.name != "chunks" or list(got.shape) != dims:
            raise ValueError(f"the cached graph takes {got.name} {got.shape}, not chunks {dims}")
    except Exception as exc:  # an operator the exporter does not know, a damaged cache file
        path.unlink(missing_ok=True)
        _warn_once(f"export:{key}", f"cannot run this model on ONNX Runtime ({type(exc).__name__}: {exc}); "
                   "its CNN passes run in eager torch")
        return None
    return OnnxGraph(session, len(session.get_outputs()))


def _export(fn: Any, owners: Sequence[Any], dims: list[int | str]) -> bytes:
    """The ONNX bytes of ``fn``, exported in a thread of its own: a caller's ``torch.inference_mode`` (it is
    per thread) would make the tracer drop the input's name and its dynamic axes."""
    from concurrent.futures import ThreadPoolExecutor

    import onnx

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="soundalike-onnx-export") as pool:
        data = pool.submit(_trace, fn, owners, dims).result()
    graph = onnx.load_from_string(data).graph
    got = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] if graph.input else []
    if len(graph.input) != 1 or graph.input[0].name != "chunks" or got != dims:
        raise ValueError(f"the export's input is not chunks {dims}")
    return data


def _trace(fn: Any, owners: Sequence[Any], dims: list[int | str]) -> bytes:
    import io

    import torch

    module = _as_module(fn, owners)
    # a named (varying) axis gets 2 in the example: the batch, or a time axis of a fully convolutional net
    example = torch.zeros(*[d if isinstance(d, int) else 2 for d in dims], dtype=torch.float32)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), buf, dynamo=False,  # type: ignore[arg-type]  # a file object works
                          input_names=["chunks"], opset_version=OPSET,
                          dynamic_axes={"chunks": {i: d for i, d in enumerate(dims) if isinstance(d, str)}})
    return buf.getvalue()


def _store(path: Path, data: bytes) -> None:
    """Write the export atomically; a cache that cannot be written (read-only home) is not an error."""
    from soundalike.models.checkpoint import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    except OSError:
        pass
