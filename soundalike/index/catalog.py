"""A catalog of tracks on disk.

Layout of a catalog directory::

    catalog.sqlite      tracks (path, hash, size, mtime, duration, tags, labels,
                        chunk and song embeddings), fingerprints (binary codes
                        of 1 s windows, for ``identify``), failures, and meta
                        (schema version, the two models' fingerprints, front-end,
                        generation)
    vectors.faiss       FAISS index over song embeddings (a cache of the database)
    vectors.faiss.json  the database generation and model the index was built from
    recommender.npz     the fitted hybrid recommender (ALS factors, tuned blend), refitted when listens change
    LOCK                held by the one process that may write

SQLite is the source of truth and every track is committed on its own, so an
indexing run can be killed at any moment and re-run: nothing is lost or
duplicated, and a stale FAISS file is rebuilt on the next open.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.audio.io import is_audio_path, regular_file
from soundalike.errors import (
    AudioDecodeError,
    CatalogCorruptError,
    CatalogError,
    CatalogMismatchError,
    ModelError,
    NotAFileError,
    ParameterError,
    TrackNotFoundError,
)
from soundalike.index.vectors import IndexSpec, VectorIndex, resolve_spec
from soundalike.limits import DEFAULT_MAX_DURATION

SCHEMA_VERSION = 5  # 2: fingerprints; 3: hash_codes; 4: track_tags; 5: listens (older ones are upgraded on open)
DB_NAME = "catalog.sqlite"
VECTORS_NAME = "vectors.faiss"
INGEST_SHARDS = "ingest-shards"  # `add(ray=True)`: results written by Ray workers, merged and deleted in order

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tracks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    file_hash TEXT NOT NULL,
    duration REAL NOT NULL,
    title TEXT, artist TEXT, album TEXT, genre TEXT,
    tags TEXT NOT NULL DEFAULT '{}',
    labels TEXT NOT NULL DEFAULT '{}',
    n_chunks INTEGER NOT NULL,
    chunk_hop REAL NOT NULL,
    chunk_emb BLOB NOT NULL,
    song_emb BLOB NOT NULL,
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tracks_hash ON tracks(file_hash);
CREATE TABLE IF NOT EXISTS fingerprints (
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    hop REAL NOT NULL,
    codes BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS hash_codes (
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    code BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS track_tags (
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    scores BLOB NOT NULL,
    n INTEGER NOT NULL,
    hop REAL NOT NULL,
    timeline BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS listens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    at REAL NOT NULL,
    plays INTEGER NOT NULL DEFAULT 1,
    UNIQUE(user, track_id, at)
);
CREATE INDEX IF NOT EXISTS listens_user ON listens(user);
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, reason TEXT NOT NULL, at REAL NOT NULL
);
"""


@dataclass
class Track:
    """One catalog row, without its embeddings."""

    id: int
    path: str
    duration: float
    file_hash: str
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    genre: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    n_chunks: int = 0

    @property
    def display_name(self) -> str:
        if self.title and self.artist:
            return f"{self.artist} - {self.title}"
        return self.title or Path(self.path).name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Match:
    """One answer to a similarity query."""

    rank: int
    score: float  # cosine similarity of song embeddings in [-1, 1]; with hash codes, 1 - hamming / bits
    track: Track
    hamming: int | None = None  # differing bits, for a search over hash codes

    def to_dict(self) -> dict[str, Any]:
        extra = {} if self.hamming is None else {"hamming": int(self.hamming)}
        return {"rank": self.rank, "score": round(float(self.score), 6), **extra, **self.track.to_dict()}


@dataclass
class IndexReport:
    """What one ``add`` run did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0  # same content as a track already embedded: embeddings copied
    pruned: int = 0
    fingerprinted: int = 0  # tracks already in the catalog that got their missing fingerprints
    hashed: int = 0  # tracks that got their hash code (catalogs made with a hash model)
    tagged: int = 0  # tracks already in the catalog that got their missing tag scores
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # not regular files (pipes, devices): never opened
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def x_realtime(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failed"] = [{"path": p, "reason": r} for p, r in self.failed]
        d["skipped"] = [{"path": p, "reason": r} for p, r in self.skipped]
        d["x_realtime"] = round(self.x_realtime, 1)
        return d


def _fingerprint_meta(fp: Any) -> dict[str, str]:
    enc = fp.encoder
    return {"fp_model_fingerprint": enc.fingerprint, "fp_model_ref": str(enc.source), "fp_model_name": enc.name,
            "fp_bits": str(fp.bits), "fp_hop": repr(fp.hop_seconds)}


def _hash_meta(hasher: Any) -> dict[str, str]:
    enc = hasher.encoder
    return {"hash_model_fingerprint": enc.fingerprint, "hash_model_ref": str(enc.source), "hash_model_name": enc.name,
            "hash_bits": str(hasher.bits)}


def _index_request(index: str | IndexSpec, dim: int) -> dict[str, Any]:
    """What a catalog stores about the vector index asked for (``auto``, a kind, or a full spec), checked."""
    value = index.to_dict() if isinstance(index, IndexSpec) else {"kind": str(index)}
    resolve_spec(value, 0, dim)  # ParameterError for an unknown kind or bad parameters
    return value


def _tag_meta(tagger: Any) -> dict[str, str]:
    return {"tag_model_fingerprint": tagger.fingerprint, "tag_model_name": tagger.name,
            "tag_model_ref": json.dumps(tagger.refs), "tag_names": json.dumps(list(tagger.tags))}


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


def file_sha256(path: str | Path, *, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def walk_audio(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Absolute paths of audio files: named files as given, folders walked (hidden entries skipped).

    Only names are looked at: what each path is (a regular file, a pipe, a dangling link) is for the
    reader to check (:func:`soundalike.audio.io.regular_file`)."""
    seen: set[str] = set()
    for p in paths:
        root = Path(p).expanduser()
        if not root.exists():
            raise ParameterError(f"{root} does not exist")
        root = root.resolve()
        if not root.is_dir():
            if str(root) not in seen:
                seen.add(str(root))
                yield root
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith(".") or not is_audio_path(name):
                    continue
                f = Path(dirpath) / name
                if str(f) not in seen:
                    seen.add(str(f))
                    yield f


def read_manifest(path: str | Path) -> dict[str, dict[str, Any]]:
    """JSONL rows with a ``path`` (relative to the manifest's folder) -> labels by absolute path."""
    mpath = Path(path).expanduser().resolve()
    if not mpath.is_file():
        raise ParameterError(f"manifest {mpath} does not exist")
    out: dict[str, dict[str, Any]] = {}
    with open(mpath) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rel = row.pop("path")
            except (ValueError, KeyError, AttributeError) as exc:
                raise ParameterError(f"{mpath}:{n}: not a JSON object with a 'path' ({exc})") from exc
            out[str((mpath.parent / rel).resolve())] = row
    return out


class Catalog:
    """Tracks, their embeddings and a vector index, tied to one model."""

    def __init__(self, root: Path, conn: sqlite3.Connection, encoder: Any) -> None:
        self.root = root
        self._conn = conn
        self.encoder = encoder
        self._index: VectorIndex | None = None
        self._fingerprinter: Any = None
        self._binary: Any = None
        self._binary_generation = -1
        self._hasher: Any = None
        self._hash_index: Any = None
        self._hash_generation = -1
        self._tagger: Any = None
        self._tag_cache: Any = None
        self._tag_generation = -1

    # ------------------------------------------------------------ open/create
    @staticmethod
    def _connect(db: Path) -> sqlite3.Connection:
        from soundalike.index.db import connect

        return connect(db)

    @classmethod
    def check(cls, path: str | Path, *, repair: bool = False) -> dict[str, Any]:
        """Check the catalog database at ``path`` (SQLite's integrity check, then that it opens); with
        ``repair``, rebuild a damaged one from every row still readable (see :func:`soundalike.index.db.repair`:
        the damaged file is kept, lost side rows are recomputed by the next ``index``)."""
        from soundalike.index.db import integrity_problems
        from soundalike.index.db import repair as rebuild

        root = Path(path).expanduser()
        db = root / DB_NAME
        if not db.is_file():
            raise CatalogError(f"no catalog at {root} (missing {DB_NAME})")
        with open(root / "LOCK", "a+") as fh:
            import fcntl

            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CatalogError(f"another process is writing to catalog {root}; wait for it to finish") from None
            problems = integrity_problems(db)
            out: dict[str, Any] = {"catalog": str(root), "ok": not problems, "problems": problems, "repaired": False}
            if problems and repair:
                rep = rebuild(db, _SCHEMA)
                (root / VECTORS_NAME).unlink(missing_ok=True)
                (root / (VECTORS_NAME + ".json")).unlink(missing_ok=True)
                out.update(repaired=True, repair=rep.to_dict(), problems_after=integrity_problems(db))
        return out

    @classmethod
    def exists(cls, path: str | Path) -> bool:
        return (Path(path).expanduser() / DB_NAME).is_file()

    @classmethod
    def create(cls, path: str | Path, *, model: Any = None, fingerprint_model: Any = "default",
               hash_model: Any = None, tag_heads: Any = "default", index: str | IndexSpec = "auto",
               exist_ok: bool = False) -> Catalog:
        """Make a new, empty catalog at ``path`` bound to ``model`` (default: the shipped model).

        ``fingerprint_model`` (default: the shipped fingerprint model; ``None``:
        no fingerprints) is the encoder whose binary codes ``identify`` matches.
        ``hash_model`` (default ``None``: none; ``"default"``: the shipped
        hash_cnn-music) gives every track a compact binary code for
        ``similar(..., hash=True)``. ``tag_heads`` (default: the shipped heads, when they were trained on
        ``model``; ``None``: no tags; or head names/paths) tags every track at index time, in the
        embedding's own encoder pass. ``index`` picks the vector index: ``auto`` (flat up to 200k tracks,
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
        fp = None
        if fingerprint_model is not None:
            from soundalike.fingerprint import load_fingerprinter

            fp = load_fingerprinter(None if fingerprint_model == "default" else fingerprint_model)
        hasher = None
        if hash_model is not None:
            from soundalike.hashing.coder import load_hasher

            hasher = load_hasher(hash_model)
        tagger = _tagger_for(enc, tag_heads)
        index_meta = json.dumps(_index_request(index, enc.embed_dim))  # an unknown kind fails before anything is made
        root.mkdir(parents=True, exist_ok=True)
        conn = cls._connect(root / DB_NAME)
        for stmt in _SCHEMA.strip().split(";"):
            if stmt.strip():
                conn.execute(stmt)
        meta = {
            "schema_version": str(SCHEMA_VERSION),
            "model_fingerprint": enc.fingerprint,
            "model_ref": str(enc.source),
            "model_name": enc.name,
            "encoder": enc.encoder,
            "embed_dim": str(enc.embed_dim),
            "frontend": json.dumps(enc.frontend.to_dict(), sort_keys=True),
            "generation": "0",
            "created_at": str(time.time()),
            "index_spec": index_meta,
        }
        if fp is not None:
            meta.update(_fingerprint_meta(fp))
        if hasher is not None:
            meta.update(_hash_meta(hasher))
        if tagger is not None:
            meta.update(_tag_meta(tagger))
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(meta.items()))
        conn.execute("COMMIT")
        cat = cls(root, conn, enc)
        cat._fingerprinter = fp
        cat._hasher = hasher
        cat._tagger = tagger
        return cat

    @classmethod
    def open(cls, path: str | Path, *, model: Any = None, shards: int = 0, ray_address: str | None = None) -> Catalog:
        """Open an existing catalog. ``model`` (name, path or encoder) must be the one that filled it;
        left out, the catalog loads its own model. ``shards`` > 0 searches song embeddings held by that many
        Ray actors (:class:`~soundalike.index.distributed.ShardedIndex`) on the cluster at ``ray_address``."""
        from soundalike.models.checkpoint import AudioEncoder
        from soundalike.models.factory import load_encoder

        root = Path(path).expanduser()
        db = root / DB_NAME
        if not db.is_file():
            raise CatalogError(f"no catalog at {root} (missing {DB_NAME}); create one with "
                               f"`soundalike index MUSIC_FOLDER --catalog {root}`")
        try:
            conn = cls._connect(db)
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except CatalogCorruptError:
            raise
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{db} is not a readable catalog database ({exc})") from exc
        version = int(meta.get("schema_version", "0"))
        if version in (1, 2, 3, 4):  # add the fingerprints / hash_codes / track_tags / listens tables
            conn.execute("BEGIN IMMEDIATE")
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
            version = SCHEMA_VERSION
        if version != SCHEMA_VERSION:
            raise CatalogError(f"{root} has catalog schema {version}, this soundalike reads {SCHEMA_VERSION}; "
                               "re-index into a new catalog")
        want = meta["model_fingerprint"]
        if model is None:
            try:
                enc = load_encoder(meta["model_ref"])
            except ModelError as exc:
                raise CatalogError(f"catalog {root} was built with model {meta['model_ref']!r}, which cannot be "
                                   f"loaded ({exc}); pass that model with --model PATH") from exc
        else:
            enc = model if isinstance(model, AudioEncoder) else load_encoder(model)
        if enc.fingerprint != want:
            conn.close()
            raise CatalogMismatchError(
                f"catalog {root} was filled by model {meta['model_name']!r} ({meta['model_ref']}, fingerprint "
                f"{want}), but the model in use is {enc.name!r} ({enc.source}, fingerprint {enc.fingerprint}). "
                "Embeddings of different models cannot be compared. Either query with the catalog's own model "
                "(leave out --model), or re-index the music with this model into a new catalog: "
                f"`soundalike index MUSIC_FOLDER --catalog NEW_CATALOG --model {enc.source}`."
            )
        cat = cls(root, conn, enc)
        cat._shards, cat._ray_address = int(shards), ray_address
        return cat

    _shards = 0
    _ray_address: str | None = None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ meta
    def _meta(self, key: str) -> str:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise CatalogError(f"catalog {self.root} lacks meta {key!r}: damaged; re-index it")
        return str(row[0])

    @property
    def generation(self) -> int:
        return int(self._meta("generation"))

    @property
    def fingerprint(self) -> str:
        return self._meta("model_fingerprint")

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM tracks").fetchone()[0])

    # --------------------------------------------------------------- writing
    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        import fcntl

        fh = open(self.root / "LOCK", "a+")
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CatalogError(f"another process is writing to catalog {self.root}; wait for it to finish") from None
            yield
        finally:
            fh.close()

    def _bump_generation(self) -> None:
        self._conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    def _insert(self, path: str, st: os.stat_result, digest: str, emb: Any, labels: dict[str, Any],
                existing_id: int | None, codes: np.ndarray | None = None) -> int:
        tags = dict(emb.tags)
        row = (path, st.st_size, st.st_mtime_ns, digest, float(emb.duration), tags.get("title"), tags.get("artist"),
               tags.get("album"), tags.get("genre"), json.dumps(tags, sort_keys=True),
               json.dumps(labels, sort_keys=True, default=str), int(len(emb.chunks)), float(emb.hop_seconds),
               np.ascontiguousarray(emb.chunks, dtype=np.float32).tobytes(),
               np.ascontiguousarray(emb.song, dtype=np.float32).tobytes(), time.time())
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            if existing_id is None:
                cur = self._conn.execute(
                    "INSERT INTO tracks(path, size, mtime_ns, file_hash, duration, title, artist, album, genre, tags,"
                    " labels, n_chunks, chunk_hop, chunk_emb, song_emb, added_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
                existing_id = int(cur.lastrowid or 0)
            else:
                self._conn.execute(
                    "UPDATE tracks SET path=?, size=?, mtime_ns=?, file_hash=?, duration=?, title=?, artist=?, album=?,"
                    " genre=?, tags=?, labels=?, n_chunks=?, chunk_hop=?, chunk_emb=?, song_emb=?, added_at=?"
                    " WHERE id=?", (*row, existing_id))
                self._conn.execute("DELETE FROM fingerprints WHERE track_id = ?", (existing_id,))
                self._conn.execute("DELETE FROM hash_codes WHERE track_id = ?", (existing_id,))
                self._conn.execute("DELETE FROM track_tags WHERE track_id = ?", (existing_id,))
            if codes is not None:
                self._put_codes(existing_id, codes)
            if emb.tag_scores is not None:
                self._put_tags(existing_id, emb.tag_scores)
            self._conn.execute("DELETE FROM failures WHERE path = ?", (path,))
            self._bump_generation()
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return existing_id

    def _copy_row(self, src_id: int, path: str, st: os.stat_result, labels: dict[str, Any] | None,
                  existing_id: int | None) -> None:
        cols = "file_hash, duration, title, artist, album, genre, tags, labels, n_chunks, chunk_hop, chunk_emb, song_emb"
        src = self._conn.execute(f"SELECT {cols} FROM tracks WHERE id = ?", (src_id,)).fetchone()
        src = list(src)
        if labels is not None:
            src[7] = json.dumps(labels, sort_keys=True, default=str)
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            if existing_id is not None:
                self._conn.execute("DELETE FROM tracks WHERE id = ?", (existing_id,))
            cur = self._conn.execute(f"INSERT INTO tracks(path, size, mtime_ns, {cols}, added_at)"
                                     " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                     (path, st.st_size, st.st_mtime_ns, *src, time.time()))
            new_id = int(cur.lastrowid or 0)
            self._conn.execute("INSERT INTO fingerprints(track_id, n, hop, codes) SELECT ?, n, hop, codes"
                               " FROM fingerprints WHERE track_id = ?", (new_id, src_id))
            self._conn.execute("INSERT INTO hash_codes(track_id, code) SELECT ?, code FROM hash_codes"
                               " WHERE track_id = ?", (new_id, src_id))
            self._conn.execute("INSERT INTO track_tags(track_id, scores, n, hop, timeline) SELECT ?, scores, n,"
                               " hop, timeline FROM track_tags WHERE track_id = ?", (new_id, src_id))
            self._conn.execute("DELETE FROM failures WHERE path = ?", (path,))
            self._bump_generation()
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def _put_codes(self, track_id: int, codes: np.ndarray) -> None:
        """Inside a transaction: store one track's window codes."""
        fp = self.fingerprinter
        c = np.ascontiguousarray(codes, dtype=np.uint8)
        self._conn.execute("INSERT OR REPLACE INTO fingerprints(track_id, n, hop, codes) VALUES (?,?,?,?)",
                           (int(track_id), int(len(c)), float(fp.hop_seconds), c.tobytes()))

    def _fill_missing(self, table: str, desc: str, sample_rate: int, compute: Callable[[np.ndarray], Any],
                      put: Callable[[int, Any], None], report: IndexReport, counter: str,
                      max_duration: float | None, progress: Any) -> None:
        """Compute ``table``'s row for every track that has none (a catalog from before that table was kept,
        or an interrupted run); one transaction per track, so an interruption loses nothing done."""
        from soundalike.audio.io import decode

        rows = self._conn.execute(f"SELECT t.id, t.path FROM tracks t LEFT JOIN {table} f ON f.track_id = t.id"
                                  " WHERE f.track_id IS NULL ORDER BY t.id").fetchall()
        it: Any = rows
        if progress is True and rows:
            from tqdm import tqdm

            it = tqdm(rows, unit="track", desc=desc, dynamic_ncols=True)
        for tid, path in it:
            try:
                audio = decode(path, sr=sample_rate, max_duration=max_duration, require_sound=True)
            except (AudioDecodeError, OSError) as exc:
                report.failed.append((path, f"{desc} failed: {exc}"))
                continue
            value = compute(audio.samples)
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                put(tid, value)
                self._bump_generation()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            setattr(report, counter, getattr(report, counter) + 1)

    def _fill_fingerprints(self, report: IndexReport, max_duration: float | None, progress: Any) -> None:
        fp = self.fingerprinter
        self._fill_missing("fingerprints", "fingerprinting", fp.sample_rate,
                           lambda y: fp.track_codes(y, fp.sample_rate), self._put_codes, report, "fingerprinted",
                           max_duration, progress)

    def _put_hash_code(self, track_id: int, code: np.ndarray) -> None:
        """Inside a transaction: store one track's hash code."""
        self._conn.execute("INSERT OR REPLACE INTO hash_codes(track_id, code) VALUES (?, ?)",
                           (int(track_id), np.ascontiguousarray(code, dtype=np.uint8).tobytes()))

    def _fill_hash_codes(self, report: IndexReport, max_duration: float | None, progress: Any) -> None:
        h = self.hasher
        self._fill_missing("hash_codes", "hashing", h.sample_rate, h.code, self._put_hash_code, report, "hashed",
                           max_duration, progress)

    def _put_tags(self, track_id: int, timeline: np.ndarray) -> None:
        """Inside a transaction: store one track's chunk tag scores and their mean."""
        from soundalike.tagging.tagger import summarise

        t = np.asarray(timeline, dtype=np.float32)
        hop = self.encoder.frontend.frames_to_seconds(self.encoder.frontend.chunk_hop_frames)
        self._conn.execute("INSERT OR REPLACE INTO track_tags(track_id, scores, n, hop, timeline) VALUES (?,?,?,?,?)",
                           (int(track_id), summarise(t).tobytes(), int(len(t)), float(hop),
                            t.astype(np.float16).tobytes()))

    def _fill_tags(self, report: IndexReport, max_duration: float | None, progress: Any) -> None:
        tagger = self.tagger
        hop = self.encoder.frontend.chunk_hop_frames
        self._fill_missing("track_tags", "tagging", self.encoder.frontend.sample_rate,
                           lambda y: tagger.tag_waveform(y, hop_frames=hop).timeline, self._put_tags, report,
                           "tagged", max_duration, progress)

    def _record_failure(self, path: str, st: os.stat_result | None, reason: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO failures(path, size, mtime_ns, reason, at) VALUES (?,?,?,?,?)",
                           (path, st.st_size if st else None, st.st_mtime_ns if st else None, reason, time.time()))

    def add(self, paths: str | Path | Sequence[str | Path], *, manifest: str | Path | None = None,
            prune: bool = False, max_duration: float | None = DEFAULT_MAX_DURATION,
            progress: bool | Callable[[dict[str, Any]], None] = False, ray: bool = False,
            ray_address: str | None = None, ray_workers: int = 2) -> IndexReport:
        """Index audio files and folders.

        Unchanged files (same size and mtime) are skipped; changed ones are
        re-embedded in place; files whose content is already in the catalog
        reuse its embeddings. ``prune`` removes tracks under ``paths`` whose file
        is gone. Files that cannot be decoded are reported in
        ``IndexReport.failed`` and the rest is still indexed. ``ray`` computes the
        embeddings (and tags and fingerprints) on a Ray cluster (``ray_address``;
        default: the running one, else a local one) with ``ray_workers`` actors;
        everything else, and every guarantee above, is the same code.
        """
        from soundalike.inference.embed import Embedder

        roots = [paths] if isinstance(paths, str | Path) else list(paths)
        if not roots:
            raise ParameterError("give at least one file or folder to index")
        labels_by_path = read_manifest(manifest) if manifest else {}
        report = IndexReport()
        t0 = time.perf_counter()
        with self._write_lock():
            files = list(walk_audio(roots))
            known = {r[1]: (r[0], r[2], r[3], r[4], r[5]) for r in self._conn.execute(
                "SELECT id, path, size, mtime_ns, file_hash, labels FROM tracks")}
            by_hash: dict[str, int] = {}
            for _path, (tid, _s, _m, h, _l) in known.items():
                by_hash.setdefault(h, tid)
            todo: list[tuple[str, os.stat_result, str, int | None]] = []
            first_of: dict[str, str] = {}  # content hash -> the first path with it in this run
            repeats: list[tuple[str, os.stat_result, str, int | None]] = []  # the same content met again
            for f in files:
                p = str(f)
                labels = labels_by_path.get(p)
                try:
                    st = regular_file(f)  # never opens a pipe or a device: it would block or never end
                except NotAFileError as exc:
                    report.skipped.append((p, exc.reason))
                    continue
                except AudioDecodeError as exc:  # gone, a dangling link, unreadable
                    report.failed.append((p, exc.reason))
                    self._record_failure(p, None, exc.reason)
                    continue
                old = known.get(p)
                if old is not None and old[1] == st.st_size and old[2] == st.st_mtime_ns:
                    report.unchanged += 1
                    if labels is not None and json.loads(old[4]) != labels:
                        self._conn.execute("UPDATE tracks SET labels = ? WHERE id = ?",
                                           (json.dumps(labels, sort_keys=True, default=str), old[0]))
                    continue
                try:
                    digest = file_sha256(f)
                except OSError as exc:
                    report.failed.append((p, f"cannot read the file ({exc.strerror or exc})"))
                    self._record_failure(p, st, report.failed[-1][1])
                    continue
                if old is not None and old[3] == digest:  # touched, not changed
                    self._conn.execute("UPDATE tracks SET size=?, mtime_ns=? WHERE id=?",
                                       (st.st_size, st.st_mtime_ns, old[0]))
                    report.unchanged += 1
                    continue
                if digest in by_hash and (old is None or by_hash[digest] != old[0]):
                    self._copy_row(by_hash[digest], p, st, labels, old[0] if old else None)
                    report.duplicates += 1
                    continue
                if digest in first_of:  # a copy or a link of a file this run embeds: copied once that is done
                    repeats.append((p, st, digest, old[0] if old else None))
                    continue
                first_of[digest] = p
                todo.append((p, st, digest, old[0] if old else None))

            embedder = Embedder(self.encoder, max_duration=max_duration,
                                tagger=self.tagger if self.has_tags else None)
            fp = self.fingerprinter if self.has_fingerprints else None
            bar = None
            if progress is True and todo:
                from tqdm import tqdm

                bar = tqdm(total=len(todo), unit="track", desc="indexing", dynamic_ncols=True)
            info = {p: (st, d, eid) for p, st, d, eid in todo}
            failed_content: dict[str, str] = {}
            if ray:
                from soundalike.index.distributed import ray_embed_files

                produced: Iterable[tuple[str, Any]] = ray_embed_files(
                    [(t[0], t[2]) for t in todo], shard_dir=self.root / INGEST_SHARDS, model_ref=self._meta("model_ref"),
                    tag_refs=json.loads(self._meta("tag_model_ref")) if self.has_tags else None,
                    fp_ref=self._meta("fp_model_ref") if fp is not None else None, max_duration=max_duration,
                    address=ray_address, workers=ray_workers)
            else:
                produced = embedder.embed_files([t[0] for t in todo], keep_samples=fp is not None)
            try:
                for p, result in produced:
                    st, digest, existing_id = info[p]
                    if isinstance(result, AudioDecodeError):
                        report.failed.append((p, result.reason))
                        self._record_failure(p, st, result.reason)
                        failed_content[digest] = result.reason
                    else:
                        codes = getattr(result, "fp_codes", None)  # computed by a Ray worker
                        if codes is None and fp is not None and result.samples is not None:
                            codes = fp.track_codes(result.samples, self.encoder.frontend.sample_rate)
                            result.samples = None
                        tid = self._insert(p, st, digest, result, labels_by_path.get(p, {}), existing_id, codes)
                        by_hash.setdefault(digest, tid)
                        report.audio_seconds += result.duration
                        if existing_id is None:
                            report.added += 1
                        else:
                            report.updated += 1
                    elapsed = time.perf_counter() - t0
                    stats = {"done": report.added + report.updated + len(report.failed), "total": len(todo),
                             "x_realtime": report.audio_seconds / elapsed if elapsed else 0.0}
                    if bar is not None:
                        bar.set_postfix_str(f"{stats['x_realtime']:.0f}x realtime, {len(report.failed)} failed")
                        bar.update(1)
                    elif callable(progress):
                        progress(stats)
            finally:
                if bar is not None:
                    bar.close()
            for p, st, digest, existing_id in repeats:
                if digest in by_hash:
                    self._copy_row(by_hash[digest], p, st, labels_by_path.get(p), existing_id)
                    report.duplicates += 1
                else:  # its first copy failed: so does this one, for the same reason
                    reason = failed_content.get(digest, "its content failed under another name in this run")
                    report.failed.append((p, reason))
                    self._record_failure(p, st, reason)
            if prune:
                report.pruned = self._prune(roots)
            if fp is not None:
                self._fill_fingerprints(report, max_duration, progress)
            if self.has_hash_codes:
                self._fill_hash_codes(report, max_duration, progress)
            if self.has_tags:
                self._fill_tags(report, max_duration, progress)
            self._index = None
            self._vector_index()  # rebuild and save now, not at the first query
        report.wall_seconds = time.perf_counter() - t0
        return report

    def _prune(self, roots: Sequence[str | Path]) -> int:
        prefixes = [str(Path(r).expanduser().resolve()) for r in roots]
        gone = []
        for tid, path in self._conn.execute("SELECT id, path FROM tracks"):
            under = any(path == pre or path.startswith(pre.rstrip(os.sep) + os.sep) for pre in prefixes)
            if under and not os.path.exists(path):
                gone.append(tid)
        if gone:
            self.remove(gone)
        return len(gone)

    def remove(self, track_ids: Iterable[int]) -> int:
        ids = [int(i) for i in track_ids]
        if not ids:
            return 0
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.executemany("DELETE FROM tracks WHERE id = ?", [(i,) for i in ids])
        self._bump_generation()
        self._conn.execute("COMMIT")
        self._index = None
        return len(ids)

    # ---------------------------------------------------------------- reading
    def _vector_index(self) -> VectorIndex:
        if self._index is not None and self._index_generation == self.generation:
            return self._index
        gen, fp, dim = self.generation, self.fingerprint, int(self._meta("embed_dim"))
        if self._shards:
            from soundalike.index.distributed import ShardedIndex

            ids, vecs = self._song_matrix(dim)
            sharded: Any = ShardedIndex(ids, vecs, dim, n_shards=self._shards, key=f"{fp}-{gen}",
                                        spec=resolve_spec(self.index_request, len(ids) // self._shards + 1, dim),
                                        address=self._ray_address)
            self._index, self._index_generation = sharded, gen
            return sharded
        vpath = self.root / VECTORS_NAME
        spec = resolve_spec(self.index_request, len(self), dim)
        vi = VectorIndex.load_if_current(vpath, generation=gen, fingerprint=fp, dim=dim, spec=spec)
        if vi is None:
            ids, vecs = self._song_matrix(dim)
            vi = VectorIndex.build(ids, vecs, dim, spec)
            try:
                vi.save(vpath, generation=gen, fingerprint=fp)
            except OSError:
                pass  # a read-only catalog still answers from memory
        self._index, self._index_generation = vi, gen
        return vi

    _index_generation = -1

    def _song_matrix(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(track ids [shape=(n,)], song embeddings [shape=(n, dim)]) of every track, by id."""
        rows = self._conn.execute("SELECT id, song_emb FROM tracks ORDER BY id").fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vecs = (np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(-1, dim)
                if rows else np.zeros((0, dim), np.float32))
        return ids, vecs

    @property
    def index_request(self) -> dict[str, Any]:
        """The vector index asked for at creation (``{"kind": "auto"}`` unless chosen); older catalogs: auto."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'index_spec'").fetchone()
        return json.loads(row[0]) if row else {"kind": "auto"}

    def set_index(self, index: str | IndexSpec) -> IndexSpec:
        """Ask for another vector index (``auto``, a kind or an :class:`IndexSpec`); rebuilt now."""
        value = _index_request(index, int(self._meta("embed_dim")))
        spec = resolve_spec(value, len(self), int(self._meta("embed_dim")))
        with self._write_lock():
            self._conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('index_spec', ?)", (json.dumps(value),))
            self._index = None
            return self._vector_index().spec if len(self) else spec

    def _rerank_vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored song embeddings of ``ids`` (in that order), for exact re-ranking of IVF-PQ candidates."""
        d = int(self._meta("embed_dim"))
        qs = ",".join("?" * len(ids))
        rows = dict(self._conn.execute(f"SELECT id, song_emb FROM tracks WHERE id IN ({qs})", [int(i) for i in ids]))
        return np.stack([np.frombuffer(rows[int(i)], np.float32) if int(i) in rows else np.zeros(d, np.float32)
                         for i in ids])

    @staticmethod
    def _track_from_row(r: Sequence[Any]) -> Track:
        return Track(id=r[0], path=r[1], duration=r[2], file_hash=r[3], title=r[4], artist=r[5], album=r[6],
                     genre=r[7], tags=json.loads(r[8]), labels=json.loads(r[9]), n_chunks=r[10])

    _TRACK_COLS = "id, path, duration, file_hash, title, artist, album, genre, tags, labels, n_chunks"

    def tracks(self, ids: Iterable[int] | None = None) -> list[Track]:
        if ids is None:
            rows = self._conn.execute(f"SELECT {self._TRACK_COLS} FROM tracks ORDER BY id").fetchall()
            return [self._track_from_row(r) for r in rows]
        ids = list(ids)
        qs = ",".join("?" * len(ids))
        by_id = {r[0]: r for r in self._conn.execute(f"SELECT {self._TRACK_COLS} FROM tracks WHERE id IN ({qs})", ids)}
        return [self._track_from_row(by_id[i]) for i in ids if i in by_id]

    def _track_id(self, track_id: int | str) -> int:
        """``track_id`` as an int SQLite can hold; any other number is no track of this catalog."""
        try:
            i = int(track_id)
        except (TypeError, ValueError):
            raise TrackNotFoundError(f"{track_id!r} is not a track id (ids are whole numbers)") from None
        if not -(2**63) <= i < 2**63:
            raise TrackNotFoundError(f"no track {i} in catalog {self.root}: ids are below 2^63; `soundalike info "
                                     f"--catalog {self.root} --tracks` lists them")
        return i

    def track(self, ref: int | str) -> Track:
        """A track by id, or by its (absolute or relative) file path."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit() and not os.path.exists(ref)):
            row = self._conn.execute(f"SELECT {self._TRACK_COLS} FROM tracks WHERE id = ?",
                                     (self._track_id(ref),)).fetchone()
        else:
            row = self._conn.execute(f"SELECT {self._TRACK_COLS} FROM tracks WHERE path = ?",
                                     (str(Path(ref).expanduser().resolve()),)).fetchone()
        if row is None:
            raise TrackNotFoundError(f"no track {ref!r} in catalog {self.root}; `soundalike info --catalog "
                                     f"{self.root} --tracks` lists them")
        return self._track_from_row(row)

    def embeddings(self, track_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk embeddings [shape=(n, d)], song embedding [shape=(d,)]) of one track."""
        row = self._conn.execute("SELECT chunk_emb, song_emb FROM tracks WHERE id = ?",
                                 (self._track_id(track_id),)).fetchone()
        if row is None:
            raise TrackNotFoundError(f"no track {track_id} in catalog {self.root}")
        d = int(self._meta("embed_dim"))
        return np.frombuffer(row[0], np.float32).reshape(-1, d), np.frombuffer(row[1], np.float32)

    # ------------------------------------------------------------ fingerprints
    @property
    def has_fingerprints(self) -> bool:
        """Whether this catalog keeps fingerprints (made with a fingerprint model) for ``identify``."""
        return self._has_side("fp")

    @property
    def fingerprinter(self) -> Any:
        """The catalog's :class:`~soundalike.fingerprint.Fingerprinter` (loaded on first use)."""
        if self._fingerprinter is None:
            if not self.has_fingerprints:
                raise CatalogError(f"catalog {self.root} keeps no fingerprints, so it cannot identify excerpts; "
                                   f"`soundalike fingerprints --catalog {self.root}` adds them")
            from soundalike.fingerprint import load_fingerprinter

            self._fingerprinter = self._load_side_model(
                "fp", "fingerprinted", load_fingerprinter,
                f"rebuild the fingerprints with `soundalike fingerprints --catalog {self.root} --rebuild`")
        return self._fingerprinter

    def _has_side(self, prefix: str) -> bool:
        return self._conn.execute("SELECT 1 FROM meta WHERE key = ?", (f"{prefix}_model_fingerprint",)).fetchone() \
            is not None

    def _load_side_model(self, prefix: str, verb: str, load: Callable[[str], Any], rebuild_hint: str,
                         identity: Callable[[Any], str] = lambda obj: obj.encoder.fingerprint) -> Any:
        """Load the model named by the ``{prefix}_model_*`` meta (a fingerprinter, a hasher or a tagger) and
        check (by ``identity``) that it is the one that filled the catalog."""
        ref = self._meta(f"{prefix}_model_ref")
        try:
            obj = load(ref)
        except ModelError as exc:
            raise CatalogError(f"catalog {self.root} was {verb} with model {ref!r}, which cannot be "
                               f"loaded ({exc})") from exc
        want = self._meta(f"{prefix}_model_fingerprint")
        if identity(obj) != want:
            raise CatalogMismatchError(
                f"catalog {self.root} was {verb} by {self._meta(f'{prefix}_model_name')!r} (fingerprint {want}), "
                f"but {ref!r} now loads a different model ({identity(obj)}); {rebuild_hint}")
        return obj

    def _switch_side_model(self, prefix: str, table: str, what: str, model: Any, meta: dict[str, str],
                           rebuild: bool, flag: str) -> None:
        """Under the write lock: make ``model`` (anything with ``fingerprint`` and ``name``: an encoder, or a
        tagger) the catalog's ``{prefix}`` model; rows of ``table`` made by another model are dropped only
        with ``rebuild`` (else CatalogMismatchError, nothing changed)."""
        key = f"{prefix}_model_fingerprint"
        has = self._has_side(prefix)
        same = has and self._meta(key) == model.fingerprint
        if has and not same and not rebuild:
            raise CatalogMismatchError(f"catalog {self.root} holds {what} of model "
                                       f"{self._meta(f'{prefix}_model_name')!r}; pass {flag} to replace them "
                                       f"with {model.name!r}'s")
        if same:
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute(f"DELETE FROM {table}")
            self._conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(meta.items()))
            self._bump_generation()
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def enable_fingerprints(self, fingerprint_model: Any = None, *, rebuild: bool = False,
                            progress: bool = False, max_duration: float | None = DEFAULT_MAX_DURATION) -> IndexReport:
        """Start keeping fingerprints made by ``fingerprint_model`` (default: the shipped one) and compute
        them for every track that lacks them. ``rebuild`` drops existing codes first (another model)."""
        from soundalike.fingerprint import load_fingerprinter

        fp = load_fingerprinter(fingerprint_model)
        return self._enable_side("fp", "fingerprints", "fingerprints", fp, fp.encoder, _fingerprint_meta(fp),
                                 rebuild, "--rebuild", "_fingerprinter", self._fill_fingerprints, max_duration, progress)

    def _enable_side(self, prefix: str, table: str, what: str, obj: Any, identity: Any, meta: dict[str, str],
                     rebuild: bool, flag: str, attr: str, fill: Callable[..., None], max_duration: float | None,
                     progress: bool) -> IndexReport:
        """Under the write lock: make ``obj`` the catalog's ``{prefix}`` model (see :meth:`_switch_side_model`),
        keep it on ``self.{attr}`` and fill ``table`` for every track that has no row yet."""
        report = IndexReport()
        t0 = time.perf_counter()
        with self._write_lock():
            self._switch_side_model(prefix, table, what, identity, meta, rebuild, flag)
            setattr(self, attr, obj)
            fill(report, max_duration, progress)
        report.wall_seconds = time.perf_counter() - t0
        return report

    def binary_index(self) -> Any:
        """The in-memory :class:`~soundalike.fingerprint.BinaryIndex` of every window (rebuilt when the
        catalog changes)."""
        from soundalike.fingerprint.index import BinaryIndex

        gen = self.generation
        if self._binary is not None and self._binary_generation == gen:
            return self._binary
        fp = self.fingerprinter
        nbytes = fp.bits // 8
        rows = self._conn.execute("SELECT track_id, hop, codes FROM fingerprints ORDER BY track_id").fetchall()
        self._binary = BinaryIndex.build(fp.bits, [(int(t), np.frombuffer(c, np.uint8).reshape(-1, nbytes), float(h))
                                                   for t, h, c in rows])
        self._binary_generation = gen
        return self._binary

    def identify(self, query: str | Path, *, offset: float = 0.0, duration: float | None = None,
                 top: int = 5) -> Any:
        """Which catalog track an excerpt comes from, and where: see :func:`soundalike.tasks.identify.identify`."""
        from soundalike.tasks.identify import identify

        return identify(self, query, offset=offset, duration=duration, top=top)

    # ------------------------------------------------------------ hash codes
    @property
    def has_hash_codes(self) -> bool:
        """Whether this catalog keeps a hash model's binary code per track (for ``similar(..., hash=True)``)."""
        return self._has_side("hash")

    @property
    def hasher(self) -> Any:
        """The catalog's :class:`~soundalike.hashing.coder.TrackHasher` (loaded on first use)."""
        if self._hasher is None:
            if not self.has_hash_codes:
                raise CatalogError(f"catalog {self.root} keeps no hash codes; add them with `soundalike index "
                                   f"MUSIC_FOLDER --catalog {self.root} --hash-model hash_cnn-music`")
            from soundalike.hashing.coder import load_hasher

            self._hasher = self._load_side_model(
                "hash", "hashed", load_hasher,
                f"rebuild the codes with `soundalike index MUSIC_FOLDER --catalog {self.root} --hash-model "
                f"{self._meta('hash_model_ref')} --rebuild-hash`")
        return self._hasher

    def enable_hash_codes(self, hash_model: Any = None, *, rebuild: bool = False, progress: bool = False,
                          max_duration: float | None = DEFAULT_MAX_DURATION) -> IndexReport:
        """Start keeping ``hash_model``'s code (default: the shipped hash_cnn-music) for every track, and
        compute the missing ones. ``rebuild`` replaces the codes of another hash model."""
        from soundalike.hashing.coder import load_hasher

        hasher = load_hasher(hash_model)
        return self._enable_side("hash", "hash_codes", "hash codes", hasher, hasher.encoder, _hash_meta(hasher),
                                 rebuild, "--rebuild-hash", "_hasher", self._fill_hash_codes, max_duration, progress)

    def hash_index(self) -> tuple[Any, np.ndarray]:
        """(FAISS IndexBinaryFlat of every track's code, the track id of each row); rebuilt when the catalog
        changes."""
        from soundalike.index.vectors import _faiss

        gen = self.generation
        if self._hash_index is not None and self._hash_generation == gen:
            return self._hash_index
        bits = int(self._meta("hash_bits"))
        rows = self._conn.execute("SELECT track_id, code FROM hash_codes ORDER BY track_id").fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        codes = (np.frombuffer(b"".join(r[1] for r in rows), np.uint8).reshape(-1, bits // 8) if rows
                 else np.zeros((0, bits // 8), np.uint8))
        index = _faiss().IndexBinaryFlat(bits)
        if len(codes):
            index.add(np.ascontiguousarray(codes))
        self._hash_index, self._hash_generation = (index, ids), gen
        return index, ids

    def hash_code(self, track_id: int) -> np.ndarray:
        """The stored hash code uint8 [shape=(bits / 8,)] of one track."""
        row = self._conn.execute("SELECT code FROM hash_codes WHERE track_id = ?",
                                 (self._track_id(track_id),)).fetchone()
        if row is None:
            self.track(track_id)  # raises TrackNotFoundError for an unknown id
            raise CatalogError(f"track {track_id} of {self.root} has no hash code yet; `soundalike index` fills it")
        return np.frombuffer(row[0], np.uint8).copy()

    def hash_search(self, code: np.ndarray, *, k: int = 10, exclude: Iterable[int] = (),
                    allow: Iterable[int] | None = None) -> list[Match]:
        """Nearest tracks to a packed code [shape=(bits / 8,)] by Hamming distance (score = 1 - d / bits)."""
        if k < 1:
            raise ParameterError("k must be at least 1")
        index, ids = self.hash_index()
        bits = int(self._meta("hash_bits"))
        c = np.ascontiguousarray(np.asarray(code, dtype=np.uint8).reshape(1, -1))
        if c.shape[1] != bits // 8:
            raise ParameterError(f"a code of {c.shape[1] * 8} bits cannot search {bits}-bit hash codes")
        skip = set(exclude)
        if not len(ids):
            return []
        ok = None if allow is None else set(int(i) for i in allow)
        dist, rows = index.search(c, min(k + len(skip), len(ids)) if ok is None else len(ids))
        pairs = [(int(ids[r]), int(d)) for r, d in zip(rows[0], dist[0], strict=True)
                 if r >= 0 and int(ids[r]) not in skip and (ok is None or int(ids[r]) in ok)][:k]
        by_id = {t.id: t for t in self.tracks([i for i, _ in pairs])}
        return [Match(rank=n + 1, score=1.0 - d / bits, track=by_id[i], hamming=d)
                for n, (i, d) in enumerate(pairs) if i in by_id]

    # ------------------------------------------------------------------ tags
    @property
    def has_tags(self) -> bool:
        """Whether this catalog tags its tracks (tag heads chosen at creation or with ``enable_tags``)."""
        return self._has_side("tag")

    @property
    def tag_names(self) -> tuple[str, ...]:
        return tuple(json.loads(self._meta("tag_names"))) if self.has_tags else ()

    @property
    def tagger(self) -> Any:
        """The catalog's :class:`~soundalike.tagging.tagger.Tagger` (loaded on first use)."""
        if self._tagger is None:
            if not self.has_tags:
                raise CatalogError(f"catalog {self.root} keeps no tags; add them with `soundalike index "
                                   f"MUSIC_FOLDER --catalog {self.root} --tag-heads default`")
            from soundalike.tagging.tagger import load_tagger

            self._tagger = self._load_side_model(
                "tag", "tagged", lambda ref: load_tagger(json.loads(ref), model=self.encoder),
                f"re-tag with `soundalike index MUSIC_FOLDER --catalog {self.root} --tag-heads HEADS --rebuild-tags`",
                identity=lambda t: t.fingerprint)
        return self._tagger

    def enable_tags(self, tag_heads: Any = "default", *, rebuild: bool = False, progress: bool = False,
                    max_duration: float | None = DEFAULT_MAX_DURATION) -> IndexReport:
        """Start tagging with ``tag_heads`` (default: the shipped heads) and tag every track that has no
        tags yet. ``rebuild`` replaces the tags of other heads."""
        from soundalike.tagging.tagger import load_tagger

        tagger = load_tagger(tag_heads, model=self.encoder)
        return self._enable_side("tag", "track_tags", "tags", tagger, tagger, _tag_meta(tagger), rebuild,
                                 "--rebuild-tags", "_tagger", self._fill_tags, max_duration, progress)

    def tag_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(track ids [shape=(n,)], whole-track tag scores [shape=(n, n_tags)], columns in ``tag_names``
        order) of every tagged track; cached until the catalog changes."""
        gen = self.generation
        if self._tag_cache is None or self._tag_generation != gen:
            n_tags = len(self.tag_names)
            rows = self._conn.execute("SELECT track_id, scores FROM track_tags ORDER BY track_id").fetchall()
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            scores = (np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(-1, n_tags) if rows
                      else np.zeros((0, n_tags), np.float32))
            self._tag_cache, self._tag_generation = (ids, scores), gen
        return self._tag_cache

    def track_tags(self, ref: int | str) -> Any:
        """The stored :class:`~soundalike.tagging.tagger.TagResult` of a track (id or path): whole-track
        scores and the timeline at the catalog's chunk hop."""
        from soundalike.tagging.tagger import TagResult

        track = self.track(ref)
        tags = self.tag_names
        if not tags:
            self.tagger  # noqa: B018  (raises: no tags kept)
        row = self._conn.execute("SELECT scores, n, hop, timeline FROM track_tags WHERE track_id = ?",
                                 (track.id,)).fetchone()
        if row is None:
            raise CatalogError(f"track {track.id} of {self.root} has no tags yet; `soundalike index` fills them")
        n, hop = int(row[1]), float(row[2])
        return TagResult(tags, np.frombuffer(row[0], np.float32).copy(), np.arange(n) * hop,
                         np.frombuffer(row[3], np.float16).reshape(n, len(tags)).astype(np.float32),
                         self.encoder.frontend.chunk_seconds, hop, track.duration, track.path)

    def filter_tracks(self, where: Sequence[str] | str) -> np.ndarray:
        """Ids of the tracks that meet every condition (``"tag:piano>0.5"``; see
        :func:`soundalike.tagging.filters.parse_where`)."""
        from soundalike.tagging.filters import parse_where

        conds = parse_where(where, self.tag_names, catalog=str(self.root))
        ids, scores = self.tag_matrix()
        keep = np.ones(len(ids), dtype=bool)
        for c in conds:
            keep &= c.test(scores[:, self.tag_names.index(c.tag)])
        return ids[keep]

    # -------------------------------------------------------------- listens
    def import_listens(self, path: str | Path, *, skip_invalid: bool = False) -> Any:
        """Import a listening-history CSV (see :mod:`soundalike.recommend.listens`) in one transaction."""
        from soundalike.recommend.listens import import_listens

        return import_listens(self, path, skip_invalid=skip_invalid)

    def listens(self, user: str | None = None) -> list[tuple[str, int, float, int]]:
        """(user, track id, unix time, plays) rows, by time; one user's with ``user``."""
        q = "SELECT user, track_id, at, plays FROM listens"
        args: tuple[Any, ...] = ()
        if user is not None:
            q, args = q + " WHERE user = ?", (user,)
        return [(str(u), int(t), float(a), int(p)) for u, t, a, p in self._conn.execute(q + " ORDER BY at, id", args)]

    def users(self, limit: int | None = None) -> list[tuple[str, int, int]]:
        """(user, listens, plays) of every user with listens, by name (the first ``limit``)."""
        q = "SELECT user, count(*), sum(plays) FROM listens GROUP BY user ORDER BY user"
        rows = self._conn.execute(q + (" LIMIT ?" if limit else ""), (int(limit),) if limit else ()).fetchall()
        return [(str(u), int(n), int(p)) for u, n, p in rows]

    def failures(self) -> list[tuple[str, str]]:
        return [(p, r) for p, r in self._conn.execute("SELECT path, reason FROM failures ORDER BY path")]

    def search(self, vector: np.ndarray, *, k: int = 10, exclude: Iterable[int] = (),
               allow: Iterable[int] | None = None) -> list[Match]:
        """Nearest tracks to a song embedding [shape=(d,)] by cosine similarity (only ``allow``, if given)."""
        if k < 1:
            raise ParameterError("k must be at least 1")
        skip = set(exclude)
        index = self._vector_index()
        ok = None if allow is None else set(int(i) for i in allow)
        depth = k + len(skip) if ok is None else len(index)  # a filter ranks everything, then keeps its own
        scores, ids = index.search(np.asarray(vector, np.float32)[None], depth, rerank=self._rerank_vectors)
        pairs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True)
                 if i >= 0 and int(i) not in skip and (ok is None or int(i) in ok)][:k]
        by_id = {t.id: t for t in self.tracks([i for i, _ in pairs])}
        return [Match(rank=n + 1, score=s, track=by_id[i]) for n, (i, s) in enumerate(pairs) if i in by_id]

    def similar(self, query: str | Path | int, *, k: int = 10, offset: float = 0.0,
                duration: float | None = None, hash: bool = False,
                where: Sequence[str] | str | None = None) -> list[Match]:
        """The ``k`` tracks that sound most like ``query``: an audio file, or a catalog track id.

        A file is embedded with the catalog's model (``offset``/``duration``
        pick an excerpt); a track id uses its stored embedding and leaves the
        track itself out of the answer. ``hash=True`` ranks by Hamming distance
        of the hash model's codes instead (the catalog must keep them). ``where`` keeps only tracks that
        meet every condition, e.g. ``"tag:piano>0.5"`` (the catalog must keep tags).
        """
        from soundalike.tasks.similar import similar

        return similar(self, query, k=k, offset=offset, duration=duration, hash=hash, where=where)

    def info(self) -> dict[str, Any]:
        n, secs, chunks = self._conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(duration), 0), COALESCE(SUM(n_chunks), 0) FROM tracks").fetchone()
        n_fail = self._conn.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
        size = sum(f.stat().st_size for f in self.root.iterdir() if f.is_file())
        labels: dict[str, dict[str, int]] = {}
        for (lab,) in self._conn.execute("SELECT labels FROM tracks"):
            for key, val in json.loads(lab).items():
                if isinstance(val, str | int | float | bool) and key in ("collection", "composer", "ensemble",
                                                                        "genre", "label", "package"):
                    labels.setdefault(key, {}).setdefault(str(val), 0)
                    labels[key][str(val)] += 1
        return {
            "catalog": str(self.root),
            "tracks": int(n),
            "hours": round(float(secs) / 3600.0, 3),
            "chunks": int(chunks),
            "failed_files": int(n_fail),
            "model": self._meta("model_name"),
            "model_ref": self._meta("model_ref"),
            "encoder": self._meta("encoder"),
            "model_fingerprint": self.fingerprint,
            "embed_dim": int(self._meta("embed_dim")),
            "frontend": json.loads(self._meta("frontend")),
            "schema_version": SCHEMA_VERSION,
            "generation": self.generation,
            "disk_bytes": size,
            "labels": labels,
            "fingerprints": self._fingerprint_info(float(secs)),
            "hash_codes": self._hash_info(),
            "tags": self._tag_info(),
            "vector_index": {"asked": self.index_request.get("kind", "auto"), **self._vector_index().spec.to_dict()},
        }

    def _tag_info(self) -> dict[str, Any] | None:
        if not self.has_tags:
            return None
        n = self._conn.execute("SELECT COUNT(*) FROM track_tags").fetchone()[0]
        return {"heads": self._meta("tag_model_name"), "heads_ref": json.loads(self._meta("tag_model_ref")),
                "fingerprint": self._meta("tag_model_fingerprint"), "n_tags": len(self.tag_names),
                "tracks": int(n)}

    def _hash_info(self) -> dict[str, Any] | None:
        if not self.has_hash_codes:
            return None
        n = self._conn.execute("SELECT COUNT(*) FROM hash_codes").fetchone()[0]
        return {"model": self._meta("hash_model_name"), "model_ref": self._meta("hash_model_ref"),
                "model_fingerprint": self._meta("hash_model_fingerprint"), "bits": int(self._meta("hash_bits")),
                "tracks": int(n)}

    def _fingerprint_info(self, seconds: float) -> dict[str, Any] | None:
        if not self.has_fingerprints:
            return None
        n_tracks, windows, nbytes = self._conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(n), 0), COALESCE(SUM(LENGTH(codes)), 0) FROM fingerprints").fetchone()
        return {"model": self._meta("fp_model_name"), "model_ref": self._meta("fp_model_ref"),
                "model_fingerprint": self._meta("fp_model_fingerprint"), "bits": int(self._meta("fp_bits")),
                "hop_seconds": float(self._meta("fp_hop")), "tracks": int(n_tracks), "windows": int(windows),
                "code_bytes": int(nbytes),
                "bytes_per_hour": round(nbytes / (seconds / 3600.0)) if seconds > 0 else 0}
