"""Adding audio to a catalog: diffing against what is stored, duplicates, embedding, one commit per track.

:func:`ingest` is what :meth:`Catalog.add <soundalike.index.catalog.Catalog.add>` runs. Unchanged files (same
size and mtime) are skipped; changed ones are re-embedded in place; files whose content is already in the
catalog, or met earlier in the same run (a copy, a symlink), reuse its embeddings and side rows. Each track
is committed on its own, so a run can be killed at any moment and run again: nothing is lost or duplicated.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from soundalike.audio.io import regular_file
from soundalike.data.files import file_sha256, read_manifest, walk_audio
from soundalike.errors import AudioDecodeError, NotAFileError, ParameterError
from soundalike.index.rows import IndexReport
from soundalike.limits import DEFAULT_MAX_DURATION

if TYPE_CHECKING:
    from soundalike.index.catalog import Catalog

INGEST_SHARDS = "ingest-shards"  # `add(ray=True)`: results written by Ray workers, merged and deleted in order

_ROW_COLS = ("path, size, mtime_ns, file_hash, duration, title, artist, album, genre, tags, labels, n_chunks, "
             "chunk_hop, chunk_emb, song_emb, added_at")
_COPY_COLS = "file_hash, duration, title, artist, album, genre, tags, labels, n_chunks, chunk_hop, chunk_emb, song_emb"


def insert_track(catalog: Catalog, path: str, st: os.stat_result, digest: str, emb: Any, labels: dict[str, Any],
                 existing_id: int | None, codes: np.ndarray | None = None) -> int:
    """One transaction: a track's row (new, or replacing ``existing_id``), its fingerprints and tag scores."""
    tags = dict(emb.tags)
    row = (path, st.st_size, st.st_mtime_ns, digest, float(emb.duration), tags.get("title"), tags.get("artist"),
           tags.get("album"), tags.get("genre"), json.dumps(tags, sort_keys=True),
           json.dumps(labels, sort_keys=True, default=str), int(len(emb.chunks)), float(emb.hop_seconds),
           np.ascontiguousarray(emb.chunks, dtype=np.float32).tobytes(),
           np.ascontiguousarray(emb.song, dtype=np.float32).tobytes(), time.time())
    store = catalog.store
    with store.transaction():
        if existing_id is None:
            cur = store.execute(f"INSERT INTO tracks({_ROW_COLS}) VALUES ({','.join('?' * 16)})", row)
            existing_id = int(cur.lastrowid or 0)
        else:
            sets = ", ".join(f"{c.strip()}=?" for c in _ROW_COLS.split(","))
            store.execute(f"UPDATE tracks SET {sets} WHERE id=?", (*row, existing_id))
            for side in catalog.sides.values():
                side.delete(existing_id)
        if codes is not None:
            catalog.fingerprints.put(existing_id, codes)
        if emb.tag_scores is not None:
            catalog.tag_scores.put(existing_id, emb.tag_scores)
        store.execute("DELETE FROM failures WHERE path = ?", (path,))
    return existing_id


def copy_track(catalog: Catalog, src_id: int, path: str, st: os.stat_result, labels: dict[str, Any] | None,
               existing_id: int | None) -> int:
    """One transaction: ``path`` becomes a track with ``src_id``'s embeddings and side rows (same content)."""
    store = catalog.store
    src = list(store.execute(f"SELECT {_COPY_COLS} FROM tracks WHERE id = ?", (src_id,)).fetchone())
    if labels is not None:
        src[7] = json.dumps(labels, sort_keys=True, default=str)
    with store.transaction():
        if existing_id is not None:
            store.execute("DELETE FROM tracks WHERE id = ?", (existing_id,))
        cur = store.execute(f"INSERT INTO tracks(path, size, mtime_ns, {_COPY_COLS}, added_at)"
                            f" VALUES ({','.join('?' * 16)})", (path, st.st_size, st.st_mtime_ns, *src, time.time()))
        new_id = int(cur.lastrowid or 0)
        for side in catalog.sides.values():
            side.copy(src_id, new_id)
        store.execute("DELETE FROM failures WHERE path = ?", (path,))
    return new_id


def record_failure(catalog: Catalog, path: str, st: os.stat_result | None, reason: str) -> None:
    catalog.store.execute("INSERT OR REPLACE INTO failures(path, size, mtime_ns, reason, at) VALUES (?,?,?,?,?)",
                          (path, st.st_size if st else None, st.st_mtime_ns if st else None, reason, time.time()))


def ingest(catalog: Catalog, paths: str | Path | Sequence[str | Path], *, manifest: str | Path | None = None,
           prune: bool = False, max_duration: float | None = DEFAULT_MAX_DURATION,
           progress: bool | Callable[[dict[str, Any]], None] = False, ray: bool = False,
           ray_address: str | None = None, ray_workers: int = 2) -> IndexReport:
    """Index audio files and folders into ``catalog`` (see :meth:`Catalog.add`)."""
    from soundalike.inference.embed import Embedder

    roots = [paths] if isinstance(paths, str | Path) else list(paths)
    if not roots:
        raise ParameterError("give at least one file or folder to index")
    labels_by_path = read_manifest(manifest) if manifest else {}
    report = IndexReport()
    t0 = time.perf_counter()
    store = catalog.store
    with store.write_lock():
        files = list(walk_audio(roots))
        known = {r[1]: (r[0], r[2], r[3], r[4], r[5]) for r in store.execute(
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
                record_failure(catalog, p, None, exc.reason)
                continue
            old = known.get(p)
            if old is not None and old[1] == st.st_size and old[2] == st.st_mtime_ns:
                report.unchanged += 1
                if labels is not None and json.loads(old[4]) != labels:
                    store.execute("UPDATE tracks SET labels = ? WHERE id = ?",
                                  (json.dumps(labels, sort_keys=True, default=str), old[0]))
                continue
            try:
                digest = file_sha256(f)
            except OSError as exc:
                report.failed.append((p, f"cannot read the file ({exc.strerror or exc})"))
                record_failure(catalog, p, st, report.failed[-1][1])
                continue
            if old is not None and old[3] == digest:  # touched, not changed
                store.execute("UPDATE tracks SET size=?, mtime_ns=? WHERE id=?", (st.st_size, st.st_mtime_ns, old[0]))
                report.unchanged += 1
                continue
            if digest in by_hash and (old is None or by_hash[digest] != old[0]):
                copy_track(catalog, by_hash[digest], p, st, labels, old[0] if old else None)
                report.duplicates += 1
                continue
            if digest in first_of:  # a copy or a link of a file this run embeds: copied once that is done
                repeats.append((p, st, digest, old[0] if old else None))
                continue
            first_of[digest] = p
            todo.append((p, st, digest, old[0] if old else None))

        report.timed("scan", time.perf_counter() - t0)
        tags = catalog.tag_scores.model if catalog.tag_scores.enabled else None
        embedder = Embedder(catalog.encoder, max_duration=max_duration, tagger=tags)
        fp = catalog.fingerprints.model if catalog.fingerprints.enabled else None
        bar = None
        if progress is True and todo:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="track", desc="indexing", dynamic_ncols=True)
        info = {p: (st, d, eid) for p, st, d, eid in todo}
        failed_content: dict[str, str] = {}
        produced: Iterable[tuple[str, Any]]
        if ray:
            from soundalike.index.distributed import ray_embed_files

            produced = ray_embed_files(
                [(t[0], t[2]) for t in todo], shard_dir=catalog.root / INGEST_SHARDS,
                model_ref=store.meta("model_ref"),
                tag_refs=json.loads(store.meta("tag_model_ref")) if tags is not None else None,
                fp_ref=store.meta("fp_model_ref") if fp is not None else None, max_duration=max_duration,
                address=ray_address, workers=ray_workers)
        else:
            produced = embedder.embed_files([t[0] for t in todo], keep_samples=fp is not None)
        try:
            for p, result in produced:
                st, digest, existing_id = info[p]
                if isinstance(result, AudioDecodeError):
                    report.failed.append((p, result.reason))
                    record_failure(catalog, p, st, result.reason)
                    failed_content[digest] = result.reason
                else:
                    codes = getattr(result, "fp_codes", None)  # computed by a Ray worker
                    t1 = time.perf_counter()
                    if codes is None and fp is not None and result.samples is not None:
                        codes = fp.track_codes(result.samples, catalog.encoder.frontend.sample_rate)
                        result.samples = None
                    t2 = time.perf_counter()
                    tid = insert_track(catalog, p, st, digest, result, labels_by_path.get(p, {}), existing_id, codes)
                    report.timed("fingerprints", t2 - t1)
                    report.timed("writes", time.perf_counter() - t2)
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
            for stage, secs in embedder.timings.items():
                report.timed(stage, secs)
        for p, st, digest, existing_id in repeats:
            if digest in by_hash:
                copy_track(catalog, by_hash[digest], p, st, labels_by_path.get(p), existing_id)
                report.duplicates += 1
            else:  # its first copy failed: so does this one, for the same reason
                reason = failed_content.get(digest, "its content failed under another name in this run")
                report.failed.append((p, reason))
                record_failure(catalog, p, st, reason)
        if prune:
            report.pruned = _prune(catalog, roots)
        t1 = time.perf_counter()
        for side in catalog.sides.values():
            if side.enabled:
                side.fill(report, max_duration=max_duration, progress=progress)
        t2 = time.perf_counter()
        catalog.vector_index(rebuild=True)  # rebuild and save now, not at the first query
        report.timed("sides", t2 - t1)
        report.timed("vector_index", time.perf_counter() - t2)
    report.wall_seconds = time.perf_counter() - t0
    return report


def _prune(catalog: Catalog, roots: Sequence[str | Path]) -> int:
    prefixes = [str(Path(r).expanduser().resolve()) for r in roots]
    gone = []
    for tid, path in catalog.store.execute("SELECT id, path FROM tracks"):
        under = any(path == pre or path.startswith(pre.rstrip(os.sep) + os.sep) for pre in prefixes)
        if under and not os.path.exists(path):
            gone.append(tid)
    return catalog.remove(gone)
