"""Ray: ingest (``Catalog.add(ray=True)``) and sharded search (:class:`ShardedIndex`).

Ingest runs the decode + embed (+ tags, + fingerprints) step of ``Catalog.add`` as a Ray Data pipeline,
one model load per worker actor. Workers write each result as a shard file in the catalog's
``ingest-shards`` folder (on a multi-node cluster that folder must be on storage every node can write);
the driver merges them in input order through the very same insert loop as the local path (one
transaction per track) and deletes each shard once its track is committed. A killed run loses nothing:
committed tracks stay, and shards already written are merged by the next run without recomputing them.
Ray is optional: ``pip install 'soundalike[ray]'``.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
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
    """A Ray Data worker: loads the catalog's models once, then embeds batches of files, writing each result
    as a shard file (``DIGEST.pkl``, atomically) into the catalog's ``ingest-shards`` folder."""

    def __init__(self, model_ref: str, tag_refs: list[str] | None, fp_ref: str | None,
                 max_duration: float | None, shard_dir: str) -> None:
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
        self.shard_dir = shard_dir

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import os

        for path, digest in zip(batch["path"], batch["digest"], strict=True):
            result: Any
            try:
                audio = self.embedder.decode(str(path))  # decoded once, for the embedding and the fingerprints
                result = self.embedder.embed_waveform(audio.samples, path=str(path), tags=audio.info.tags)
                if self.fp is not None:
                    result.fp_codes = self.fp.track_codes(audio.samples, audio.sr)
            except AudioDecodeError as exc:
                result = exc
            dest = os.path.join(self.shard_dir, f"{digest}.pkl")
            with open(dest + ".tmp", "wb") as fh:
                pickle.dump(result, fh)
            os.replace(dest + ".tmp", dest)
        return {"path": list(batch["path"]), "digest": list(batch["digest"])}


def _portable(ref: str | None) -> str | None:
    """A model reference a worker in another directory can load: shipped names as they are, paths absolute."""
    if ref is None:
        return None
    p = Path(ref).expanduser()
    return str(p.resolve()) if p.with_suffix(".json").exists() or p.exists() else ref


def ray_embed_files(items: Sequence[tuple[str, str]], *, model_ref: str, tag_refs: list[str] | None,
                    fp_ref: str | None, max_duration: float | None, shard_dir: Path, address: str | None = None,
                    workers: int = 2, batch_size: int = 4) -> Iterator[tuple[str, Any]]:
    """Yield ``(path, TrackEmbedding | AudioDecodeError)`` for ``items`` = ``(path, content digest)``, in order.

    Ray actors write each result as a shard file in ``shard_dir``; each is merged (yielded to the caller's
    insert loop) in input order and deleted once the caller asks for the next one, i.e. after its track is
    committed. Shards left by a killed run are merged without recomputing them. Joins the cluster at
    ``address`` (default: the running one, else a local one)."""
    shard_dir.mkdir(parents=True, exist_ok=True)
    missing = [(p, d) for p, d in items if not (shard_dir / f"{d}.pkl").exists()]
    rows: Iterator[Any] = iter(())
    if missing:
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # merged in input order: the same ids as the local path
        ds = ray.data.from_items([{"path": p, "digest": d} for p, d in missing])
        refs = (_portable(model_ref), [str(_portable(r)) for r in tag_refs] if tag_refs else None,
                _portable(fp_ref))
        ds = ds.map_batches(_EmbedActor, fn_constructor_args=(*refs, max_duration, str(shard_dir.resolve())),
                            concurrency=max(1, workers), batch_size=batch_size, batch_format="numpy")
        rows = iter(ds.iter_rows())
    todo = {d for _, d in missing}
    for path, digest in items:
        shard = shard_dir / f"{digest}.pkl"
        if digest in todo:
            row = next(rows)
            if str(row["digest"]) != digest:  # pragma: no cover - preserve_order guarantees it
                raise SoundalikeError(f"Ray returned {row['digest']} where {digest} was expected")
        with open(shard, "rb") as fh:
            result = pickle.load(fh)
        yield path, result
        shard.unlink(missing_ok=True)  # the caller committed it


class _ShardActor:
    """One shard of a catalog's song embeddings, searched where it lives."""

    def __init__(self, ids: Any, vectors: Any, dim: int, spec: dict[str, Any]) -> None:
        from soundalike.index.vectors import IndexSpec, VectorIndex

        self.index = VectorIndex.build(ids, vectors, dim, IndexSpec.from_dict(spec))

    def search(self, queries: Any, k: int) -> tuple[Any, Any]:
        return self.index.search(queries, k)

    def size(self) -> int:
        return len(self.index)


class ShardedIndex:
    """Song embeddings split into ``n_shards`` Ray actors; a search asks every shard for its top k and merges
    them, so the answer is exactly the top k of one index over everything (for exact shard indexes).

    Same ``search``/``len`` interface as :class:`~soundalike.index.vectors.VectorIndex`. Actors are named by
    ``key`` (catalog fingerprint and generation), so every thread and process that opens the same catalog
    state shares them.
    """

    def __init__(self, ids: Any, vectors: Any, dim: int, *, n_shards: int, key: str, spec: Any = None,
                 address: str | None = None) -> None:
        import numpy as np

        from soundalike.index.vectors import IndexSpec

        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        self.dim, self.spec = dim, spec or IndexSpec()
        self.n = len(ids)
        actor = ray.remote(num_cpus=0)(_ShardActor)
        parts = np.array_split(np.arange(self.n), max(1, n_shards))
        self.shards = [actor.options(name=f"soundalike-{key}-{i}-of-{len(parts)}", get_if_exists=True,
                                     lifetime="detached" if address else None)
                       .remote(ids[p], vectors[p], dim, self.spec.to_dict()) for i, p in enumerate(parts)]
        self._ray = ray

    def __len__(self) -> int:
        return self.n

    def search(self, queries: Any, k: int, rerank: Any = None) -> tuple[Any, Any]:
        """queries [shape=(q, dim)] -> (scores, ids) [shape=(q, k)], merged exactly from every shard's top k."""
        import numpy as np

        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if not self.n:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        k = max(1, min(int(k), self.n))
        answers = self._ray.get([s.search.remote(q, k) for s in self.shards])
        scores = np.concatenate([a[0] for a in answers], axis=1)
        ids = np.concatenate([a[1] for a in answers], axis=1)
        scores = np.where(ids >= 0, scores, -np.inf)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, 1).astype(np.float32), np.take_along_axis(ids, order, 1)


class _WindowShardActor:
    """One shard of a catalog's fingerprint windows (whole tracks), searched where it lives."""

    def __init__(self, bits: int, tracks: list[tuple[int, Any, float]], kind: str) -> None:
        from soundalike.fingerprint.index import BinaryIndex, HashedIndex

        if kind == "hashed":
            self.index: Any = HashedIndex.build(bits, [t for t, _, _ in tracks], [len(c) for _, c, _ in tracks],
                                                [h for _, _, h in tracks], lambda: (c for _, c, _ in tracks))
        else:
            self.index = BinaryIndex.build(bits, tracks)

    def search_hits(self, codes: Any, k: int, margins: Any) -> Any:
        return self.index.search_hits(codes, k, margins)

    def track_codes(self, track_id: int) -> Any:
        return self.index.track_codes(track_id)

    def size(self) -> int:
        return len(self.index)


class ShardedWindowIndex:
    """Fingerprint windows split by track into ``n_shards`` Ray actors, as :class:`ShardedIndex` splits song
    embeddings: a search asks every shard for each query code's ``k`` nearest windows and keeps the ``k``
    nearest of them all, so with exact shards the answer is exactly one exact index's. ``kind``: ``exact``
    shards (an in-memory scan each) or ``hashed`` ones (see :class:`~soundalike.fingerprint.index.HashedIndex`).

    Same interface as the local window indexes (``search_hits``, ``track_codes``, ``len``, ``kind``)."""

    def __init__(self, bits: int, tracks: list[tuple[int, Any, float]], *, n_shards: int, key: str,
                 kind: str = "exact", address: str | None = None) -> None:
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        self.bits, self.kind = bits, kind
        self.n = int(sum(len(c) for _, c, _ in tracks))
        n_shards = max(1, min(int(n_shards), max(1, len(tracks))))
        parts: list[list[tuple[int, Any, float]]] = [[] for _ in range(n_shards)]
        self._owner: dict[int, int] = {}
        sizes = [0] * n_shards
        for t in sorted(tracks, key=lambda t: -len(t[1])):  # whole tracks, the biggest first to the emptiest shard
            i = sizes.index(min(sizes))
            parts[i].append(t)
            sizes[i] += len(t[1])
            self._owner[int(t[0])] = i
        actor = ray.remote(num_cpus=0)(_WindowShardActor)
        self.shards = [actor.options(name=f"soundalike-fp-{key}-{i}-of-{n_shards}", get_if_exists=True,
                                     lifetime="detached" if address else None).remote(bits, p, kind)
                       for i, p in enumerate(parts)]
        self._ray = ray

    def __len__(self) -> int:
        return self.n

    def search_hits(self, codes: Any, k: int, margins: Any = None) -> Any:
        import numpy as np

        from soundalike.fingerprint.index import Hits

        answers = self._ray.get([s.search_hits.remote(codes, k, margins) for s in self.shards])
        fields = ("distances", "tracks", "times", "codes")
        d, tr, tm, c = (np.concatenate([getattr(a, f) for a in answers], axis=1) for f in fields)
        d = np.where(tr >= 0, d, self.bits + 1)
        order = np.argsort(d, axis=1, kind="stable")[:, : max(1, int(k))]
        pick = np.take_along_axis
        return Hits(np.minimum(pick(d, order, 1), self.bits).astype(np.int32), pick(tr, order, 1),
                    pick(tm, order, 1), np.take_along_axis(c, order[:, :, None], 1))

    def track_codes(self, track_id: int) -> Any:
        import numpy as np

        i = self._owner.get(int(track_id))
        if i is None:
            return np.zeros((0, self.bits // 8), np.uint8)
        return self._ray.get(self.shards[i].track_codes.remote(int(track_id)))
