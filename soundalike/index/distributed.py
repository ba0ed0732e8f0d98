"""Ingest on a Ray cluster: the decode + embed (+ tags, + fingerprints) step of ``Catalog.add`` as a Ray Data
pipeline, one model load per worker actor, results streamed back in input order into the very same
insert loop as the local path (one transaction per track: an interrupted run loses nothing and the next
run continues). Ray is optional: ``pip install 'soundalike[ray]'``.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from typing import Any

from soundalike.errors import AudioDecodeError, SoundalikeError

RAY_HINT = "pip install 'soundalike[ray]' (or: pip install 'ray[data]')"


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise SoundalikeError(f"--ray needs Ray, which is not installed: {RAY_HINT}") from exc
    return ray


class _EmbedActor:
    """A Ray Data worker: loads the catalog's models once, then embeds batches of files."""

    def __init__(self, model_ref: str, tag_refs: list[str] | None, fp_ref: str | None,
                 max_duration: float | None) -> None:
        from soundalike.inference.embed import Embedder
        from soundalike.models.factory import load_encoder

        enc = load_encoder(model_ref)
        tagger = None
        if tag_refs:
            from soundalike.tagging.tagger import load_tagger

            tagger = load_tagger(tag_refs, model=enc)
        self.fp = None
        if fp_ref:
            from soundalike.fingerprint import load_fingerprinter

            self.fp = load_fingerprinter(fp_ref)
        self.embedder = Embedder(enc, max_duration=max_duration, tagger=tagger)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = []
        for path in batch["path"]:
            try:
                emb = self.embedder.embed_file(str(path))
            except AudioDecodeError as exc:
                out.append(pickle.dumps(exc))
                continue
            if self.fp is not None:
                audio = self.embedder.decode(str(path))
                emb.fp_codes = self.fp.track_codes(audio.samples, audio.sr)  # type: ignore[attr-defined]
            out.append(pickle.dumps(emb))
        return {"path": list(batch["path"]), "result": out}


def _portable(ref: str | None) -> str | None:
    """A model reference a worker in another directory can load: shipped names as they are, paths absolute."""
    from pathlib import Path

    if ref is None:
        return None
    p = Path(ref).expanduser()
    return str(p.resolve()) if p.with_suffix(".json").exists() or p.exists() else ref


def ray_embed_files(paths: Sequence[str], *, model_ref: str, tag_refs: list[str] | None, fp_ref: str | None,
                    max_duration: float | None, address: str | None = None, workers: int = 2,
                    batch_size: int = 4) -> Iterator[tuple[str, Any]]:
    """Yield ``(path, TrackEmbedding | AudioDecodeError)`` in the order of ``paths``, computed by Ray actors.

    Joins the cluster at ``address`` (default: the running one, else a local one)."""
    ray = _ray()
    if not paths:
        return
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # the same insertion order, so the same ids, as the local path
    ds = ray.data.from_items([{"path": p} for p in paths])
    refs = (_portable(model_ref), [str(_portable(r)) for r in tag_refs] if tag_refs else None, _portable(fp_ref))
    ds = ds.map_batches(_EmbedActor, fn_constructor_args=(*refs, max_duration),
                        concurrency=max(1, workers), batch_size=batch_size, batch_format="numpy")
    for row in ds.iter_rows():
        yield str(row["path"]), pickle.loads(row["result"])
