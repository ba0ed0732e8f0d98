"""The catalog's SQLite store: schema and upgrades, meta values, the writer's lock and transactions.

Layout of a catalog directory::

    catalog.sqlite      tracks (path, hash, size, mtime, duration, tags, labels,
                        chunk and song embeddings), per-track side tables
                        (fingerprints, hash codes, tag scores), listens, failures,
                        and meta (schema version, the models' fingerprints,
                        front-end, generation)
    vectors.faiss       FAISS index over song embeddings (a cache of the database)
    vectors.faiss.json  the database generation and model the index was built from
    recommender.npz     the fitted hybrid recommender (ALS factors, tuned blend), refitted when listens change
    LOCK                held by the one process that may write

SQLite is the source of truth; every change goes through :meth:`Store.transaction` and moves the
``generation`` on, which is how caches (the FAISS file, in-memory indexes) know they are stale.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from soundalike.errors import CatalogCorruptError, CatalogError

SCHEMA_VERSION = 7  # 2: fingerprints; 3: hash_codes; 4: track_tags; 5: listens; 6: track_rhythm; 7: track_notes
# (older: upgraded)
DB_NAME = "catalog.sqlite"

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS track_rhythm (
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    tempo REAL,
    confidence REAL NOT NULL,
    beats_per_bar INTEGER,
    onset_rate REAL NOT NULL,
    descriptor BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS track_notes (
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    n_notes INTEGER NOT NULL,
    feature BLOB NOT NULL,
    sequence BLOB NOT NULL
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


def _create_tables(conn: sqlite3.Connection) -> None:
    for stmt in SCHEMA.strip().split(";"):
        if stmt.strip():
            conn.execute(stmt)


class Store:
    """One open catalog database: reads, meta values, and writes inside :meth:`transaction`."""

    def __init__(self, root: Path, conn: sqlite3.Connection) -> None:
        self.root = root
        self.conn = conn

    @property
    def db(self) -> Path:
        return self.root / DB_NAME

    @classmethod
    def exists(cls, root: str | Path) -> bool:
        return (Path(root).expanduser() / DB_NAME).is_file()

    @classmethod
    def create(cls, root: Path, meta: dict[str, str]) -> Store:
        """A new database in the (existing, empty) folder ``root`` with the schema and ``meta``."""
        from soundalike.index.db import connect

        conn = connect(root / DB_NAME)
        _create_tables(conn)
        store = cls(root, conn)
        with store.transaction(bump=False):
            store.set_meta({"schema_version": str(SCHEMA_VERSION), "generation": "0", **meta})
        return store

    @classmethod
    def open(cls, root: Path) -> Store:
        """Open the database in ``root``; schemas 1-6 are upgraded in place (their missing tables added)."""
        from soundalike.index.db import connect

        db = root / DB_NAME
        if not db.is_file():
            raise CatalogError(f"no catalog at {root} (missing {DB_NAME}); create one with "
                               f"`soundalike index MUSIC_FOLDER --catalog {root}`")
        try:
            conn = connect(db)
            version = int(dict(conn.execute("SELECT key, value FROM meta").fetchall()).get("schema_version", "0"))
        except CatalogCorruptError:
            raise
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{db} is not a readable catalog database ({exc})") from exc
        store = cls(root, conn)
        if version in (1, 2, 3, 4, 5, 6):
            with store.transaction(bump=False):
                _create_tables(conn)
                store.set_meta({"schema_version": str(SCHEMA_VERSION)})
            version = SCHEMA_VERSION
        if version != SCHEMA_VERSION:
            conn.close()
            raise CatalogError(f"{root} has catalog schema {version}, this soundalike reads {SCHEMA_VERSION}; "
                               "re-index into a new catalog")
        return store

    def close(self) -> None:
        self.conn.close()

    # ---------------------------------------------------------------- reading
    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def meta(self, key: str) -> str:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise CatalogError(f"catalog {self.root} lacks meta {key!r}: damaged; re-index it")
        return str(row[0])

    def meta_or(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def all_meta(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}

    @property
    def generation(self) -> int:
        """Moves on with every committed change: caches built at another generation are stale."""
        return int(self.meta("generation"))

    def count(self, table: str) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    # ---------------------------------------------------------------- writing
    def set_meta(self, values: dict[str, str]) -> None:
        """Inside a transaction: set meta values."""
        self.conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(values.items()))

    def bump_generation(self) -> None:
        self.conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    @contextmanager
    def transaction(self, *, bump: bool = True) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any error), the generation moved on with it."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            if bump:
                self.bump_generation()
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees the database as it was at the first one (writers in
        other connections go on; their commits are seen after). Inside another transaction it adds nothing."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """The one-writer lock (``LOCK`` in the folder): another process writing gets a clear error."""
        with writer_lock(self.root):
            yield


@contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    import fcntl

    with open(root / "LOCK", "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CatalogError(f"another process is writing to catalog {root}; wait for it to finish") from None
        yield


def check(root: Path, *, repair: bool = False, caches: Sequence[str] = ()) -> dict[str, Any]:
    """SQLite's integrity check of the database in ``root``; with ``repair``, a damaged one is rebuilt from every
    row still readable (:func:`soundalike.index.db.repair`) and the cache files ``caches`` are dropped."""
    from soundalike.index.db import integrity_problems
    from soundalike.index.db import repair as rebuild

    db = root / DB_NAME
    if not db.is_file():
        raise CatalogError(f"no catalog at {root} (missing {DB_NAME})")
    with writer_lock(root):
        problems = integrity_problems(db)
        out: dict[str, Any] = {"catalog": str(root), "ok": not problems, "problems": problems, "repaired": False}
        if problems and repair:
            rep = rebuild(db, SCHEMA)
            for name in caches:
                (root / name).unlink(missing_ok=True)
            out.update(repaired=True, repair=rep.to_dict(), problems_after=integrity_problems(db))
    return out
