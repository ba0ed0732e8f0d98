"""A catalog of tracks on disk, bound to the model that filled it.

:class:`Catalog` opens or creates a catalog (the SQLite store of :mod:`soundalike.index.store`), reads its
tracks, searches its song embeddings (FAISS, :mod:`soundalike.index.vectors`) and says what it holds. What is
kept beside each track (fingerprints, hash codes, tag scores) lives in the side tables of
:mod:`soundalike.index.sides`; adding audio is :mod:`soundalike.index.ingest`. The use cases (similar, identify,
tag, recommend) are in :mod:`soundalike.tasks` and use this typed surface; the catalog knows no use case.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import (
    CatalogError,
    CatalogMismatchError,
    ModelError,
    ParameterError,
    TrackNotFoundError,
)
from soundalike.index.ingest import INGEST_SHARDS, ingest
from soundalike.index.rows import IndexReport, Match, Track
from soundalike.index.sides import (
    SIDE_TABLES,
    Fingerprints,
    HashCodes,
    NoteFeatures,
    Rhythm,
    SideTable,
    TagScores,
)
from soundalike.index.store import DB_NAME, SCHEMA_VERSION, Store, check
from soundalike.index.vectors import IndexSpec, VectorIndex, resolve_spec
from soundalike.limits import DEFAULT_MAX_DURATION

VECTORS_NAME = "vectors.faiss"

__all__ = ["DB_NAME", "INGEST_SHARDS", "SCHEMA_VERSION", "VECTORS_NAME", "Catalog", "IndexReport", "Match", "Track"]


#: The ids SQLite can hold (a 64-bit signed INTEGER); any other number is no track of any catalog.
_SQLITE_IDS = range(-(2**63), 2**63)


def _index_request(index: str | IndexSpec, dim: int) -> dict[str, Any]:
    """What a catalog stores about the vector index asked for (``auto``, a kind, or a full spec), checked."""
    value = index.to_dict() if isinstance(index, IndexSpec) else {"kind": str(index)}
    resolve_spec(value, 0, dim)  # ParameterError for an unknown kind or bad parameters
    return value


def _tagger_for(encoder: Any, tag_heads: Any) -> Any:
    """The Tagger for ``tag_heads`` on ``encoder``; ``"default"`` gives None when the shipped heads were
    trained on another encoder (a catalog of a custom model then simply keeps no tags)."""
    from soundalike.tagging.tagger import load_tagger

    if tag_heads is None:
        return None
    try:
        return load_tagger(tag_heads, model=encoder)
    except ModelError:
        if tag_heads == "default":
            return None
        raise


class Catalog:
    """Tracks, their embeddings and side data, and a vector index, tied to one model."""

    fingerprints: Fingerprints
    hash_codes: HashCodes
    tag_scores: TagScores
    rhythm: Rhythm
    notes: NoteFeatures

    def __init__(self, store: Store, encoder: Any, *, shards: int = 0, ray_address: str | None = None) -> None:
        self.store = store
        self.root = store.root
        self.encoder = encoder
        #: every side table by name (fingerprints, hash_codes, tag_scores); each is also an attribute
        self.sides: dict[str, SideTable] = {name: cls(store, encoder) for name, cls in SIDE_TABLES.items()}
        for name, side in self.sides.items():
            setattr(self, name, side)
        #: per-open-catalog results of the use-case layers (a fitted recommender), keyed by their name
        self.derived: dict[str, Any] = {}
        #: set when the catalog was made with a shipped model the default has since replaced: how to re-index
        self.model_notice: str | None = None
        self._index: VectorIndex | Any = None
        self._index_generation = -1
        self._shards, self._ray_address = int(shards), ray_address

    # ------------------------------------------------------------ open/create
    @classmethod
    def exists(cls, path: str | Path) -> bool:
        return Store.exists(path)

    @classmethod
    def create(cls, path: str | Path, *, model: Any = None, fingerprint_model: Any = "default",
               hash_model: Any = None, tag_heads: Any = "default", index: str | IndexSpec = "auto",
               events_model: Any = None, notes_model: Any = None, exist_ok: bool = False) -> Catalog:
        """Make a new, empty catalog at ``path`` bound to ``model`` (default: the shipped model).

        ``fingerprint_model`` (default: the shipped fingerprint model; ``None``:
        no fingerprints) is the encoder whose binary codes ``identify`` matches.
        ``hash_model`` (default ``None``: none; ``"default"``: the shipped
        hash_cnn-music) gives every track a compact binary code for
        ``similar(..., hash=True)``. ``tag_heads`` (default: the shipped heads, when they were trained on
        ``model``; ``None``: no tags; or head names/paths) tags every track at index time, in the
        embedding's own encoder pass. ``events_model`` (default ``None``: none; ``"default"``: the shipped
        events model) keeps tempo and a rhythm descriptor per track (``--where "tempo>120"``). ``notes_model``
        (default ``None``: none; ``"default"``: the shipped transcription model) keeps a note feature per track
        (``similar(..., by="notes")``). ``index`` picks the vector index: ``auto`` (flat up to 200k tracks,
        HNSW above), ``flat``, ``hnsw``, ``ivfpq`` or an :class:`IndexSpec`; it is stored in the catalog.
        """
        from soundalike.models.checkpoint import AudioEncoder
        from soundalike.models.factory import load_encoder

        root = Path(path).expanduser()
        if cls.exists(root):
            if exist_ok:
                return cls.open(root, model=model)
            raise CatalogError(f"a catalog already exists at {root}; open it, or choose another path")
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise CatalogError(f"{root} exists and is not an empty folder; choose a new path for the catalog")
        enc = model if isinstance(model, AudioEncoder) else load_encoder(model)
        if enc.source is None:
            raise ModelError("a catalog needs a saved model (shipped name or file); save the encoder first")
        chosen: dict[str, Any] = {}
        if fingerprint_model is not None:
            from soundalike.fingerprint import load_fingerprinter

            chosen["fingerprints"] = load_fingerprinter(None if fingerprint_model == "default" else fingerprint_model)
        if hash_model is not None:
            from soundalike.hashing.coder import load_hasher

            chosen["hash_codes"] = load_hasher(hash_model)
        tagger = _tagger_for(enc, tag_heads)
        if tagger is not None:
            chosen["tag_scores"] = tagger
        if events_model is not None:
            from soundalike.events import load_events_model

            chosen["rhythm"] = load_events_model(events_model)
        if notes_model is not None:
            from soundalike.transcribe import load_transcription_model

            chosen["notes"] = load_transcription_model(notes_model)
        index_meta = json.dumps(_index_request(index, enc.embed_dim))  # an unknown kind fails before anything is made
        root.mkdir(parents=True, exist_ok=True)
        meta = {
            "model_fingerprint": enc.fingerprint,
            "model_ref": str(enc.source),
            "model_name": enc.name,
            "encoder": enc.encoder,
            "embed_dim": str(enc.embed_dim),
            "frontend": json.dumps(enc.frontend.to_dict(), sort_keys=True),
            "created_at": str(time.time()),
            "index_spec": index_meta,
        }
        for name, obj in chosen.items():
            meta.update(SIDE_TABLES[name].model_meta(obj))
        cat = cls(Store.create(root, meta), enc)
        for name, obj in chosen.items():
            cat.sides[name].use(obj)
        return cat

    @classmethod
    def open(cls, path: str | Path, *, model: Any = None, shards: int = 0, ray_address: str | None = None) -> Catalog:
        """Open an existing catalog. ``model`` (name, path or encoder) must be the one that filled it;
        left out, the catalog loads its own model. ``shards`` > 0 searches song embeddings held by that many
        Ray actors (:class:`~soundalike.index.distributed.ShardedIndex`) on the cluster at ``ray_address``."""
        from soundalike.models.checkpoint import AudioEncoder
        from soundalike.models.factory import load_encoder

        root = Path(path).expanduser()
        store = Store.open(root)
        want = store.meta("model_fingerprint")
        ref = store.meta("model_ref")
        try:
            if model is None:
                try:
                    enc = load_encoder(ref)
                except ModelError as exc:
                    raise CatalogError(f"catalog {root} was built with model {ref!r}, which cannot be loaded "
                                       f"({exc}); pass that model with --model PATH") from exc
            else:
                enc = model if isinstance(model, AudioEncoder) else load_encoder(model)
            if enc.fingerprint != want:
                raise CatalogMismatchError(
                    f"catalog {root} was filled by model {store.meta('model_name')!r} ({ref}, fingerprint "
                    f"{want}), but the model in use is {enc.name!r} ({enc.source}, fingerprint {enc.fingerprint}). "
                    "Embeddings of different models cannot be compared. Either query with the catalog's own model "
                    "(leave out --model), or re-index the music with this model into a new catalog: "
                    f"`soundalike index MUSIC_FOLDER --catalog NEW_CATALOG --model {enc.source}`.")
        except BaseException:
            store.close()
            raise
        cat = cls(store, enc, shards=shards, ray_address=ray_address)
        if model is None:
            from soundalike.models.factory import upgrade_notice

            cat.model_notice = upgrade_notice(ref, root.name)
        return cat

    @classmethod
    def check(cls, path: str | Path, *, repair: bool = False) -> dict[str, Any]:
        """Check the catalog database at ``path`` (SQLite's integrity check); with ``repair``, rebuild a damaged
        one from every row still readable (see :func:`soundalike.index.db.repair`: the damaged file is kept,
        lost side rows are recomputed by the next ``index``)."""
        return check(Path(path).expanduser(), repair=repair, caches=(VECTORS_NAME, VECTORS_NAME + ".json",
                                                                 Fingerprints.HASH_NAME + ".json"))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ meta
    @property
    def generation(self) -> int:
        """Moves on with every change: anything cached from the catalog at another generation is stale."""
        return self.store.generation

    @property
    def fingerprint(self) -> str:
        """The fingerprint of the model (weights and front-end) that filled the catalog."""
        return self.store.meta("model_fingerprint")

    @property
    def embed_dim(self) -> int:
        return int(self.store.meta("embed_dim"))

    @property
    def model_ref(self) -> str:
        return self.store.meta("model_ref")

    def __len__(self) -> int:
        return self.store.count("tracks")

    @contextmanager
    def writing(self) -> Iterator[Any]:
        """The writer's lock and one transaction: ``with catalog.writing() as conn: conn.execute(...)``."""
        with self.store.write_lock(), self.store.transaction() as conn:
            yield conn

    # --------------------------------------------------------------- writing
    def add(self, paths: str | Path | Sequence[str | Path], *, manifest: str | Path | None = None,
            prune: bool = False, max_duration: float | None = DEFAULT_MAX_DURATION,
            progress: bool | Callable[[dict[str, Any]], None] = False, ray: bool = False,
            ray_address: str | None = None, ray_workers: int = 2) -> IndexReport:
        """Index audio files and folders.

        Unchanged files (same size and mtime) are skipped; changed ones are
        re-embedded in place; files whose content is already in the catalog, or
        met before in this run, reuse its embeddings. ``prune`` removes tracks under ``paths`` whose file
        is gone. Files that cannot be decoded are reported in
        ``IndexReport.failed`` (pipes and devices in ``skipped``) and the rest is still indexed. ``ray``
        computes the embeddings (and tags and fingerprints) on a Ray cluster (``ray_address``;
        default: the running one, else a local one) with ``ray_workers`` actors;
        everything else, and every guarantee above, is the same code.
        """
        return ingest(self, paths, manifest=manifest, prune=prune, max_duration=max_duration, progress=progress,
                      ray=ray, ray_address=ray_address, ray_workers=ray_workers)

    def remove(self, track_ids: Iterable[int]) -> int:
        """Remove tracks (with their side rows and listens); returns how many ids were given."""
        ids = [int(i) for i in track_ids]
        if not ids:
            return 0
        with self.store.transaction():
            self.store.conn.executemany("DELETE FROM tracks WHERE id = ?", [(i,) for i in ids])
        self._index = None
        return len(ids)

    # ---------------------------------------------------------------- reading
    def vector_index(self, *, rebuild: bool = False) -> VectorIndex:
        """The FAISS index of song embeddings: loaded from ``vectors.faiss`` while it is current, else built
        (and saved when the catalog is writable); Ray shards when the catalog was opened with ``shards``."""
        if rebuild:
            self._index = None
        if self._index is not None and self._index_generation == self.generation:
            return self._index
        gen, fp, dim = self.generation, self.fingerprint, self.embed_dim
        if self._shards:
            from soundalike.index.distributed import ShardedIndex

            ids, vecs = self.song_matrix()
            sharded: Any = ShardedIndex(ids, vecs, dim, n_shards=self._shards, key=f"{fp}-{gen}",
                                        spec=resolve_spec(self.index_request, len(ids) // self._shards + 1, dim),
                                        address=self._ray_address)
            self._index, self._index_generation = sharded, gen
            return sharded
        vpath = self.root / VECTORS_NAME
        spec = resolve_spec(self.index_request, len(self), dim)
        vi = VectorIndex.load_if_current(vpath, generation=gen, fingerprint=fp, dim=dim, spec=spec)
        if vi is None:
            ids, vecs = self.song_matrix()
            vi = VectorIndex.build(ids, vecs, dim, spec)
            try:
                vi.save(vpath, generation=gen, fingerprint=fp)
            except OSError:
                pass  # a read-only catalog still answers from memory
        self._index, self._index_generation = vi, gen
        return vi

    def song_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(track ids [shape=(n,)], song embeddings [shape=(n, embed_dim)]) of every track, by id."""
        dim = self.embed_dim
        rows = self.store.execute("SELECT id, song_emb FROM tracks ORDER BY id").fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vecs = (np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(-1, dim)
                if rows else np.zeros((0, dim), np.float32))
        return ids, vecs

    def song_vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Stored song embeddings of ``ids`` [shape=(len(ids), embed_dim)], in that order (zeros for unknown ids):
        what exact re-ranking of compressed-index candidates reads."""
        d = self.embed_dim
        qs = ",".join("?" * len(ids))
        rows = dict(self.store.execute(f"SELECT id, song_emb FROM tracks WHERE id IN ({qs})", [int(i) for i in ids]))
        return np.stack([np.frombuffer(rows[int(i)], np.float32) if int(i) in rows else np.zeros(d, np.float32)
                         for i in ids]) if len(ids) else np.zeros((0, d), np.float32)

    @property
    def index_request(self) -> dict[str, Any]:
        """The vector index asked for at creation (``{"kind": "auto"}`` unless chosen); older catalogs: auto."""
        value = self.store.meta_or("index_spec")
        return json.loads(value) if value else {"kind": "auto"}

    def set_index(self, index: str | IndexSpec) -> IndexSpec:
        """Ask for another vector index (``auto``, a kind or an :class:`IndexSpec`); rebuilt now."""
        value = _index_request(index, self.embed_dim)
        spec = resolve_spec(value, len(self), self.embed_dim)
        with self.store.write_lock():
            with self.store.transaction(bump=False):
                self.store.set_meta({"index_spec": json.dumps(value)})
            return self.vector_index(rebuild=True).spec if len(self) else spec

    _TRACK_COLS = "id, path, duration, file_hash, title, artist, album, genre, tags, labels, n_chunks"

    @staticmethod
    def _track_from_row(r: Sequence[Any]) -> Track:
        return Track(id=r[0], path=r[1], duration=r[2], file_hash=r[3], title=r[4], artist=r[5], album=r[6],
                     genre=r[7], tags=json.loads(r[8]), labels=json.loads(r[9]), n_chunks=r[10])

    def tracks(self, ids: Iterable[int] | None = None) -> list[Track]:
        """Every track by id, or the tracks of ``ids`` that exist, in that order."""
        if ids is None:
            rows = self.store.execute(f"SELECT {self._TRACK_COLS} FROM tracks ORDER BY id").fetchall()
            return [self._track_from_row(r) for r in rows]
        ids = [i for i in (int(x) for x in ids) if i in _SQLITE_IDS]
        qs = ",".join("?" * len(ids))
        by_id = {r[0]: r for r in self.store.execute(f"SELECT {self._TRACK_COLS} FROM tracks WHERE id IN ({qs})", ids)}
        return [self._track_from_row(by_id[i]) for i in ids if i in by_id]

    def track_id(self, track_id: int | str) -> int:
        """``track_id`` as an int SQLite can hold; any other number is no track of this catalog."""
        try:
            i = int(track_id)
        except (TypeError, ValueError):
            raise TrackNotFoundError(f"{track_id!r} is not a track id (ids are whole numbers)") from None
        if i not in _SQLITE_IDS:
            raise TrackNotFoundError(f"no track {i} in catalog {self.root}: ids are below 2^63; `soundalike info "
                                     f"--catalog {self.root} --tracks` lists them")
        return i

    def track(self, ref: int | str) -> Track:
        """A track by id, or by its (absolute or relative) file path."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit() and not os.path.exists(ref)):
            row = self.store.execute(f"SELECT {self._TRACK_COLS} FROM tracks WHERE id = ?",
                                     (self.track_id(ref),)).fetchone()
        else:
            row = self.store.execute(f"SELECT {self._TRACK_COLS} FROM tracks WHERE path = ?",
                                     (str(Path(ref).expanduser().resolve()),)).fetchone()
        if row is None:
            raise TrackNotFoundError(f"no track {ref!r} in catalog {self.root}; `soundalike info --catalog "
                                     f"{self.root} --tracks` lists them")
        return self._track_from_row(row)

    def embeddings(self, track_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk embeddings [shape=(n, d)], song embedding [shape=(d,)]) of one track."""
        row = self.store.execute("SELECT chunk_emb, song_emb FROM tracks WHERE id = ?",
                                 (self.track_id(track_id),)).fetchone()
        if row is None:
            raise TrackNotFoundError(f"no track {track_id} in catalog {self.root}")
        d = self.embed_dim
        return np.frombuffer(row[0], np.float32).reshape(-1, d), np.frombuffer(row[1], np.float32)

    def identify_segments(self, recording: str | Path, **kw: Any) -> Any:
        """Every track of this catalog heard in a long recording: see
        :func:`soundalike.tasks.identify.identify_segments` (the same keywords)."""
        from soundalike.tasks.identify import identify_segments

        return identify_segments(self, recording, **kw)

    def chunk_embeddings(self, track_ids: Sequence[int]) -> list[np.ndarray]:
        """The stored chunk embeddings [shape=(n_i, d)] of tracks, in the order asked (one query)."""
        ids = [int(i) for i in track_ids]
        if not ids:
            return []
        rows = dict(self.store.execute(f"SELECT id, chunk_emb FROM tracks WHERE id IN ({','.join('?' * len(ids))})",
                                       ids).fetchall())
        missing = [i for i in ids if i not in rows]
        if missing:
            raise TrackNotFoundError(f"no track {missing[0]} in catalog {self.root}")
        d = self.embed_dim
        return [np.frombuffer(rows[i], np.float32).reshape(-1, d) for i in ids]

    def search(self, vector: np.ndarray, *, k: int = 10, exclude: Iterable[int] = (),
               allow: Iterable[int] | None = None) -> list[Match]:
        """Nearest tracks to a song embedding [shape=(d,)] by cosine similarity (only ``allow``, if given)."""
        if k < 1:
            raise ParameterError("k must be at least 1")
        skip = set(exclude)
        index = self.vector_index()
        ok = None if allow is None else {int(i) for i in allow}
        depth = k + len(skip) if ok is None else len(index)  # a filter ranks everything, then keeps its own
        scores, ids = index.search(np.asarray(vector, np.float32)[None], depth, rerank=self.song_vectors)
        pairs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True)
                 if i >= 0 and int(i) not in skip and (ok is None or int(i) in ok)][:k]
        by_id = {t.id: t for t in self.tracks([i for i, _ in pairs])}
        return [Match(rank=n + 1, score=s, track=by_id[i]) for n, (i, s) in enumerate(pairs) if i in by_id]

    def failures(self) -> list[tuple[str, str]]:
        """(path, reason) of every file that could not be indexed, by path."""
        return [(p, r) for p, r in self.store.execute("SELECT path, reason FROM failures ORDER BY path")]

    # ------------------------------------------------------ side data (typed shortcuts)
    @property
    def has_fingerprints(self) -> bool:
        """Whether this catalog keeps fingerprints (made with a fingerprint model) for ``identify``."""
        return self.fingerprints.enabled

    @property
    def fingerprinter(self) -> Any:
        """The catalog's :class:`~soundalike.fingerprint.Fingerprinter` (loaded on first use)."""
        return self.fingerprints.model

    def window_index(self, *, progress: bool = False) -> Any:
        """The index of every fingerprint window that ``identify`` searches: exact in memory for a small
        catalog, the persistent hashed index (``fingerprints.hash.json`` and its folder) for a large one
        (see :class:`~soundalike.index.sides.Fingerprints`)."""
        if self._shards:
            return self._sharded_windows()
        return self.fingerprints.window_index(progress=progress)

    def _sharded_windows(self) -> Any:
        """The fingerprint windows in Ray shards (a catalog opened with ``shards``), like the song embeddings."""
        from soundalike.index.distributed import ShardedWindowIndex

        fps = self.fingerprints
        fp = fps.model
        nbytes = fp.bits // 8

        def build() -> Any:
            rows = self.store.execute("SELECT track_id, hop, codes FROM fingerprints ORDER BY track_id").fetchall()
            tracks = [(int(t), np.frombuffer(c, np.uint8).reshape(-1, nbytes), float(h)) for t, h, c in rows]
            windows = sum(len(c) for _, c, _ in tracks)
            kind = fps.index_kind if fps.index_kind != "auto" else (
                "hashed" if windows >= fps.HASH_MIN_WINDOWS * self._shards else "exact")
            return ShardedWindowIndex(fp.bits, tracks, n_shards=self._shards, kind=kind,
                                      key=f"{self.fingerprint}-{fps.identity(fp)}-{self.generation}",
                                      address=self._ray_address)

        return fps.cached(build)

    def enable_fingerprints(self, fingerprint_model: Any = None, *, rebuild: bool = False,
                            progress: bool = False, max_duration: float | None = DEFAULT_MAX_DURATION) -> IndexReport:
        """Start keeping fingerprints made by ``fingerprint_model`` (default: the shipped one) and compute
        them for every track that lacks them. ``rebuild`` drops existing codes first (another model)."""
        from soundalike.fingerprint import load_fingerprinter

        return self.fingerprints.enable(load_fingerprinter(fingerprint_model), rebuild=rebuild, progress=progress,
                                        max_duration=max_duration)

    @property
    def has_hash_codes(self) -> bool:
        """Whether this catalog keeps a hash model's binary code per track (for ``similar(..., hash=True)``)."""
        return self.hash_codes.enabled

    @property
    def hasher(self) -> Any:
        """The catalog's :class:`~soundalike.hashing.coder.TrackHasher` (loaded on first use)."""
        return self.hash_codes.model

    def enable_hash_codes(self, hash_model: Any = None, *, rebuild: bool = False, progress: bool = False,
                          max_duration: float | None = DEFAULT_MAX_DURATION) -> IndexReport:
        """Start keeping ``hash_model``'s code (default: the shipped hash_cnn-music) for every track, and
        compute the missing ones. ``rebuild`` replaces the codes of another hash model."""
        from soundalike.hashing.coder import load_hasher

        return self.hash_codes.enable(load_hasher(hash_model), rebuild=rebuild, progress=progress,
                                      max_duration=max_duration)

    def hash_code(self, track_id: int) -> np.ndarray:
        """The stored hash code uint8 [shape=(bits / 8,)] of one track."""
        code = self.hash_codes.code(self.track_id(track_id))
        if code is None:
            self.track(track_id)  # raises TrackNotFoundError for an unknown id
            raise CatalogError(f"track {track_id} of {self.root} has no hash code yet; `soundalike index` fills it")
        return code

    def hash_search(self, code: np.ndarray, *, k: int = 10, exclude: Iterable[int] = (),
                    allow: Iterable[int] | None = None) -> list[Match]:
        """Nearest tracks to a packed code [shape=(bits / 8,)] by Hamming distance (score = 1 - d / bits)."""
        return self.hash_codes.search(code, k=k, exclude=exclude, allow=allow, tracks=self.tracks)

    @property
    def has_tags(self) -> bool:
        """Whether this catalog tags its tracks (tag heads chosen at creation or with ``enable_tags``)."""
        return self.tag_scores.enabled

    @property
    def tag_names(self) -> tuple[str, ...]:
        return self.tag_scores.names

    @property
    def tagger(self) -> Any:
        """The catalog's :class:`~soundalike.tagging.tagger.Tagger` (loaded on first use)."""
        return self.tag_scores.model

    def enable_tags(self, tag_heads: Any = "default", *, rebuild: bool = False, progress: bool = False,
                    max_duration: float | None = DEFAULT_MAX_DURATION) -> IndexReport:
        """Start tagging with ``tag_heads`` (default: the shipped heads) and tag every track that has no
        tags yet. ``rebuild`` replaces the tags of other heads."""
        from soundalike.tagging.tagger import load_tagger

        return self.tag_scores.enable(load_tagger(tag_heads, model=self.encoder), rebuild=rebuild,
                                      progress=progress, max_duration=max_duration)

    def enable_events(self, events_model: Any = "default", *, rebuild: bool = False, progress: bool = False,
                      max_duration: float | None = DEFAULT_MAX_DURATION) -> IndexReport:
        """Start keeping tempo and a rhythm descriptor per track from ``events_model`` (default: the shipped
        events model) and analyse every track that has none yet. ``rebuild`` replaces another model's."""
        from soundalike.events import load_events_model

        return self.rhythm.enable(load_events_model(events_model), rebuild=rebuild, progress=progress,
                                  max_duration=max_duration)

    def enable_notes(self, notes_model: Any = "default", *, rebuild: bool = False, progress: bool = False,
                     max_duration: float | None = DEFAULT_MAX_DURATION) -> IndexReport:
        """Start keeping a note feature per track from ``notes_model`` (default: the shipped transcription
        model) and transcribe every track that has none yet. ``rebuild`` replaces another model's."""
        from soundalike.transcribe import load_transcription_model

        return self.notes.enable(load_transcription_model(notes_model), rebuild=rebuild, progress=progress,
                                 max_duration=max_duration)

    def track_rhythm(self, ref: int | str) -> dict[str, Any] | None:
        """A track's stored tempo, tempo confidence, beats per bar, onset rate and rhythm descriptor (None
        when the catalog keeps none for it)."""
        if not self.rhythm.enabled:
            return None
        return self.rhythm.values(self.track(ref).id)

    def tag_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(track ids [shape=(n,)], whole-track tag scores [shape=(n, n_tags)], columns in ``tag_names``
        order) of every tagged track; cached until the catalog changes."""
        return self.tag_scores.matrix()

    def top_tags(self, ids: Sequence[int], n: int = 5) -> dict[int, dict[str, float]]:
        """The ``n`` best stored tags of each of ``ids`` (``{}`` for a catalog without tags)."""
        return self.tag_scores.top(ids, n)

    def track_tags(self, ref: int | str) -> Any:
        """The stored :class:`~soundalike.tagging.tagger.TagResult` of a track (id or path): whole-track
        scores and the timeline at the catalog's chunk hop."""
        from soundalike.tagging.tagger import TagResult

        track = self.track(ref)
        tags = self.tag_names
        if not tags:
            self.tagger  # noqa: B018  (raises: no tags kept)
        row = self.tag_scores.read(track.id)
        if row is None:
            raise CatalogError(f"track {track.id} of {self.root} has no tags yet; `soundalike index` fills them")
        scores, n, hop, timeline = row[0], int(row[1]), float(row[2]), row[3]
        return TagResult(tags, np.frombuffer(scores, np.float32).copy(), np.arange(n) * hop,
                         np.frombuffer(timeline, np.float16).reshape(n, len(tags)).astype(np.float32),
                         self.encoder.frontend.chunk_seconds, hop, track.duration, track.path)

    def filter_tracks(self, where: Sequence[str] | str) -> np.ndarray:
        """Ids of the tracks whose stored tags and rhythm meet every condition (``"tag:piano>0.5"``,
        ``"tempo>120"``: see :mod:`soundalike.tagging.filters`)."""
        from soundalike.tagging.filters import split_where

        tag_exprs, fields = split_where(where)
        ids: np.ndarray | None = self.tag_scores.filter(tag_exprs) if tag_exprs else None
        if fields:
            by_rhythm = self.rhythm.filter(fields)
            ids = by_rhythm if ids is None else np.intersect1d(ids, by_rhythm)
        return ids if ids is not None else np.array([t.id for t in self.tracks()], np.int64)

    # -------------------------------------------------------------- listens
    def add_listens(self, rows: Sequence[tuple[str, int, float, int]]) -> int:
        """Insert (user, track id, unix time, plays) rows in one transaction; rows already there are skipped.
        Returns how many were new."""
        with self.writing() as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO listens(user, track_id, at, plays) VALUES (?,?,?,?)", rows)
            return int(conn.total_changes - before)

    def listens(self, user: str | None = None) -> list[tuple[str, int, float, int]]:
        """(user, track id, unix time, plays) rows, by time; one user's with ``user``."""
        q = "SELECT user, track_id, at, plays FROM listens"
        args: tuple[Any, ...] = ()
        if user is not None:
            q, args = q + " WHERE user = ?", (user,)
        return [(str(u), int(t), float(a), int(p)) for u, t, a, p in self.store.execute(q + " ORDER BY at, id", args)]

    def has_listens(self) -> bool:
        return self.store.execute("SELECT 1 FROM listens LIMIT 1").fetchone() is not None

    def listens_summary(self) -> tuple[int, int, int]:
        """(listens, highest listen id, plays): changes whenever listens are added or removed."""
        n, last, plays = self.store.execute(
            "SELECT count(*), coalesce(max(id), 0), coalesce(sum(plays), 0) FROM listens").fetchone()
        return int(n), int(last), int(plays)

    def users(self, limit: int | None = None) -> list[tuple[str, int, int]]:
        """(user, listens, plays) of every user with listens, by name (the first ``limit``)."""
        q = "SELECT user, count(*), sum(plays) FROM listens GROUP BY user ORDER BY user"
        rows = self.store.execute(q + (" LIMIT ?" if limit else ""), (int(limit),) if limit else ()).fetchall()
        return [(str(u), int(n), int(p)) for u, n, p in rows]

    # ------------------------------------------------------------------ info
    def info(self) -> dict[str, Any]:
        """What the catalog holds: tracks, hours, model, front-end, side data, labels, the vector index."""
        n, secs, chunks = self.store.execute(
            "SELECT COUNT(*), COALESCE(SUM(duration), 0), COALESCE(SUM(n_chunks), 0) FROM tracks").fetchone()
        size = sum(f.stat().st_size for f in self.root.iterdir() if f.is_file())
        labels: dict[str, dict[str, int]] = {}
        for (lab,) in self.store.execute("SELECT labels FROM tracks"):
            for key, val in json.loads(lab).items():
                if isinstance(val, str | int | float | bool) and key in ("collection", "composer", "ensemble",
                                                                        "genre", "label", "package"):
                    labels.setdefault(key, {}).setdefault(str(val), 0)
                    labels[key][str(val)] += 1
        meta = self.store.all_meta()
        return {
            "catalog": str(self.root),
            "tracks": int(n),
            "hours": round(float(secs) / 3600.0, 3),
            "chunks": int(chunks),
            "failed_files": self.store.count("failures"),
            "model": meta["model_name"],
            "model_ref": meta["model_ref"],
            "encoder": meta["encoder"],
            "model_fingerprint": meta["model_fingerprint"],
            "embed_dim": int(meta["embed_dim"]),
            "frontend": json.loads(meta["frontend"]),
            "schema_version": SCHEMA_VERSION,
            "generation": int(meta["generation"]),
            "disk_bytes": size,
            "labels": labels,
            "fingerprints": self.fingerprints.info(),
            "hash_codes": self.hash_codes.info(),
            "tags": self.tag_scores.info(),
            "rhythm": self.rhythm.info(),
            "notes": self.notes.info(),
            "vector_index": {"asked": self.index_request.get("kind", "auto"), **self.vector_index().spec.to_dict()},
        }
