"""The catalog's SQLite connection: damage becomes a typed error, and ``check`` / ``repair`` deal with it.

Every connection a catalog opens comes from :func:`connect`. A damaged database file (an overwritten
page, a truncated file, something that is not SQLite) then raises
:class:`~soundalike.errors.CatalogCorruptError`, which tells the user to run
``soundalike check --catalog DIR --repair``, instead of a bare ``sqlite3.DatabaseError`` from wherever the
damaged page happened to be read.

:func:`repair` copies everything still readable into a fresh database, row by row, keeps the damaged file
beside it (nothing stored is thrown away), and reports what could not be read. Rows of the per-track side
tables (fingerprints, hash codes, tags) that were lost are recomputed by the next ``soundalike index``;
lost tracks are re-embedded when their folder is indexed again.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundalike.errors import CatalogCorruptError

_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


def is_corruption(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite saying that the file is damaged (not a lock, a constraint or a bad query)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (int(code) & 0xFF) in _CORRUPT_CODES
    msg = str(exc).lower()
    return "malformed" in msg or "not a database" in msg


def corrupt_error(where: str | Path, exc: BaseException) -> CatalogCorruptError:
    return CatalogCorruptError(
        f"the catalog database in {where} is damaged ({exc}); run `soundalike check --catalog {where} --repair` "
        "to rebuild it from what is intact (the damaged file is kept beside it)")


@contextmanager
def _translated(where: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if is_corruption(exc):
            raise corrupt_error(where, exc) from exc
        raise


class _Cursor(sqlite3.Cursor):
    def _where(self) -> str:
        return getattr(self.connection, "where", "the catalog")

    def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        with _translated(self._where()):
            return super().execute(sql, parameters)

    def executemany(self, sql: str, seq: Any) -> _Cursor:
        with _translated(self._where()):
            return super().executemany(sql, seq)

    def fetchone(self) -> Any:
        with _translated(self._where()):
            return super().fetchone()

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        with _translated(self._where()):
            return super().fetchmany(size)

    def fetchall(self) -> list[Any]:
        with _translated(self._where()):
            return super().fetchall()

    def __next__(self) -> Any:
        with _translated(self._where()):
            return super().__next__()


class CatalogConnection(sqlite3.Connection):
    """A connection whose reads and writes turn SQLite's "malformed" into :class:`CatalogCorruptError`."""

    where = "the catalog"

    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = ()) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq: Any) -> Any:
        return self.cursor().executemany(sql, seq)


def connect(db: str | Path, *, where: str | Path | None = None) -> CatalogConnection:
    """Open the catalog database ``db`` (WAL, foreign keys on, autocommit: transactions are explicit)."""
    conn = sqlite3.connect(str(db), timeout=30.0, isolation_level=None, factory=CatalogConnection)
    assert isinstance(conn, CatalogConnection)
    conn.where = str(where if where is not None else Path(db).parent)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


# --------------------------------------------------------------------------- check and repair


def integrity_problems(db: str | Path, *, limit: int = 20) -> list[str]:
    """What SQLite's integrity check finds wrong with ``db`` (empty: intact)."""
    try:
        conn = sqlite3.connect(f"file:{Path(db).as_posix()}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    try:
        rows = conn.execute(f"PRAGMA integrity_check({int(limit)})").fetchall()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        conn.close()
    out = [str(r[0]) for r in rows]
    return [] if out == ["ok"] else out


@dataclass
class RepairReport:
    """What :func:`repair` kept and lost, table by table."""

    kept: dict[str, int] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)  # rows that could not be read (-1: the table is unreadable)
    lost_tracks: list[int] = field(default_factory=list)
    backup: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kept": dict(self.kept), "lost": dict(self.lost), "lost_tracks": list(self.lost_tracks),
                "backup": self.backup}


def _rowids(src: sqlite3.Connection, table: str, key: str) -> list[int] | None:
    """The keys of ``table``: a scan, or (when the scan breaks on a damaged page) every key up to the highest
    one the table ever handed out; None when not even that can be read."""
    try:
        return [int(r[0]) for r in src.execute(f"SELECT {key} FROM {table} ORDER BY {key}")]
    except sqlite3.DatabaseError:
        pass
    top = 0
    for q in (f"SELECT seq FROM sqlite_sequence WHERE name = '{table}'", f"SELECT max({key}) FROM {table}"):
        try:
            row = src.execute(q).fetchone()
            top = max(top, int(row[0] or 0)) if row else top
        except sqlite3.DatabaseError:
            continue
    if top <= 0:
        return None
    return list(range(1, top + 1))


def repair(db: str | Path, schema: str) -> RepairReport:
    """Rebuild the catalog database ``db`` from every row that can still be read.

    The new file gets ``schema`` and each table's readable rows; ``tracks`` and the side tables keyed by
    ``track_id`` are read one key at a time, so one damaged page loses only the rows on it. Side rows of lost
    tracks are dropped. The damaged file is kept as ``catalog.sqlite.damaged-<time>``; the cached FAISS
    index is stale after this and rebuilds itself (the generation moves on).
    """
    db = Path(db)
    report = RepairReport()
    fresh = db.with_name(db.name + ".repairing")
    for f in (fresh, Path(str(fresh) + "-wal"), Path(str(fresh) + "-shm")):
        f.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{db.as_posix()}?mode=ro", uri=True, timeout=30.0)
    dst = sqlite3.connect(str(fresh), isolation_level=None)
    try:
        for stmt in schema.strip().split(";"):
            if stmt.strip():
                dst.execute(stmt)
        dst.execute("BEGIN")
        tables = [r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                                            "'sqlite_%'")]
        order = ["meta", "tracks"] + [t for t in tables if t not in ("meta", "tracks")]
        kept_tracks: set[int] = set()
        for table in order:
            cols = [r[1] for r in dst.execute(f"PRAGMA table_info({table})")]
            key = "track_id" if "track_id" in cols and table != "listens" else (
                "id" if "id" in cols else None)
            qmarks = ",".join("?" * len(cols))
            insert = f"INSERT OR IGNORE INTO {table}({','.join(cols)}) VALUES ({qmarks})"
            kept = lost = 0
            if key is None:  # meta, failures: keyed by text, read in one scan
                try:
                    rows = src.execute(f"SELECT {','.join(cols)} FROM {table}").fetchall()
                except sqlite3.DatabaseError:
                    report.lost[table] = -1
                    continue
                for r in rows:
                    dst.execute(insert, r)
                report.kept[table] = len(rows)
                continue
            ids = _rowids(src, table, key)
            if ids is None:
                report.lost[table] = -1
                continue
            for i in ids:
                try:
                    r = src.execute(f"SELECT {','.join(cols)} FROM {table} WHERE {key} = ?", (i,)).fetchone()
                except sqlite3.DatabaseError:
                    lost += 1
                    if table == "tracks":
                        report.lost_tracks.append(i)
                    continue
                if r is None:
                    continue
                if table == "tracks":
                    kept_tracks.add(i)
                elif "track_id" in cols and int(r[cols.index("track_id")]) not in kept_tracks:
                    continue  # a side row of a lost track
                dst.execute(insert, r)
                kept += 1
            if table == "tracks":
                try:
                    seq = src.execute("SELECT seq FROM sqlite_sequence WHERE name = 'tracks'").fetchone()
                except sqlite3.DatabaseError:
                    seq = None
                top = max([*kept_tracks, *report.lost_tracks, int(seq[0]) if seq else 0], default=0)
                dst.execute("INSERT OR REPLACE INTO sqlite_sequence(name, seq) VALUES ('tracks', ?)", (top,))
            report.kept[table] = kept
            report.lost[table] = lost
        dst.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        dst.execute("COMMIT")
    except BaseException:
        dst.close()
        src.close()
        fresh.unlink(missing_ok=True)
        raise
    dst.close()
    src.close()
    backup = db.with_name(f"{db.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(db, backup)
    for suffix in ("-wal", "-shm"):
        side = Path(str(db) + suffix)
        if side.exists():
            os.replace(side, Path(str(backup) + suffix))
    os.replace(fresh, db)
    report.backup = backup.name
    return report
