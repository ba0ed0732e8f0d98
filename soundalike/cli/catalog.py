"""The CLI for the catalog: index (add audio), check (integrity, repair), info, fingerprints: each command's parser next to its handler."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from soundalike.cli.common import (
    add_common,
    add_max_duration,
    catalog_arg,
    emit,
    notice,
    progress,
    shown,
    threads,
)


def cmd_index(args: argparse.Namespace) -> int:
    from soundalike.tasks.index import IndexRequest, index_music

    threads(args)
    rep, catalog = index_music(IndexRequest(
        catalog_arg(args), args.paths, manifest=args.manifest, prune=args.prune, model=args.model,
        fingerprints=not args.no_fingerprints, fingerprint_model=args.fingerprint_model, hash_model=args.hash_model,
        rebuild_hash=args.rebuild_hash, tag_heads=args.tag_heads, rebuild_tags=args.rebuild_tags,
        events=(args.events_model or True) if args.events else None, rebuild_events=args.rebuild_events,
        notes=(args.notes_model or True) if args.notes else None, rebuild_notes=args.rebuild_notes,
        index_type=args.index_type, max_duration=args.max_duration, progress=progress(args), ray=args.ray,
        ray_address=args.address, ray_workers=args.ray_workers))
    with catalog:
        d = rep.to_dict()
        d["catalog"] = str(catalog.root)
        d["tracks"] = len(catalog)

        def text() -> None:
            print(f"{catalog.root}: {d['added']} added, {d['updated']} updated, {d['unchanged']} unchanged, "
                  f"{d['duplicates']} duplicates, {d['pruned']} pruned, {len(rep.failed)} failed; "
                  f"{d['tracks']} tracks in all")
            if rep.audio_seconds:
                print(f"embedded {rep.audio_seconds / 60:.1f} min of audio in {rep.wall_seconds:.1f} s "
                      f"({rep.x_realtime:.0f}x realtime)")
            if rep.fingerprinted:
                print(f"fingerprinted {rep.fingerprinted} tracks that had no fingerprints")
            if rep.hashed:
                print(f"hash codes for {rep.hashed} tracks")
            if rep.tagged:
                print(f"tagged {rep.tagged} tracks that had no tags")
            if rep.rhythm:
                print(f"tempo and rhythm for {rep.rhythm} tracks")
            if rep.notes:
                print(f"note features for {rep.notes} tracks")
            for path, reason in rep.skipped:
                print(f"  skipped: {shown(path)}: {reason}", file=sys.stderr)
            for path, reason in rep.failed:
                print(f"  failed: {shown(path)}: {reason}", file=sys.stderr)
            if rep.failed and not args.allow_failures:
                print(f"{len(rep.failed)} files failed (listed above and in `soundalike info`); everything else is "
                      "indexed. Exit status 1: --allow-failures makes it 0", file=sys.stderr)

        emit(args, d, text)
    return 1 if rep.failed and not args.allow_failures else 0


def cmd_check(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import Catalog

    d = Catalog.check(catalog_arg(args), repair=args.repair)
    if d["ok"] or d["repaired"]:  # it must open, too (the model, the schema)
        with Catalog.open(d["catalog"]) as catalog:
            d["tracks"] = len(catalog)

    def text() -> None:
        if d["ok"]:
            print(f"{d['catalog']}: intact ({d['tracks']} tracks)")
            return
        print(f"{d['catalog']}: damaged:")
        for p in d["problems"][:10]:
            print(f"  {p}")
        if not d["repaired"]:
            print("run again with --repair to rebuild it from what is intact (the damaged file is kept)")
            return
        r = d["repair"]
        kept = ", ".join(f"{k} {v}" for k, v in r["kept"].items())
        print(f"repaired: kept {kept}; the damaged file is kept as {r['backup']}")
        lost = {k: v for k, v in r["lost"].items() if v}
        if lost:
            print("lost: " + ", ".join(f"{k} {'all' if v < 0 else v}" for k, v in lost.items()))
        if r["lost_tracks"]:
            print(f"lost tracks {r['lost_tracks'][:20]}: index their folders again to re-embed them")
        print("missing fingerprints, hash codes and tags are recomputed by the next `soundalike index`")
        print(f"{d['tracks']} tracks now; integrity: {'ok' if not d['problems_after'] else d['problems_after']}")

    emit(args, d, text)
    return 0 if d["ok"] or d["repaired"] else 1


def cmd_info(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import Catalog

    with Catalog.open(catalog_arg(args), model=args.model) as catalog:
        d = catalog.info()
        note = notice(catalog)
        if note:
            d["notice"] = note
        if args.tracks:
            tracks = catalog.tracks()
            top = catalog.top_tags([t.id for t in tracks], 3)
            d["track_list"] = [{**t.to_dict(), **({"top_tags": top[t.id]} if t.id in top else {})} for t in tracks]
        d["failures"] = [{"path": p, "reason": r} for p, r in catalog.failures()]

        def text() -> None:
            print(f"catalog      {d['catalog']}")
            print(f"tracks       {d['tracks']} ({d['hours']:.2f} h, {d['chunks']} chunks)")
            print(f"model        {d['model']} ({d['encoder']}, {d['embed_dim']}-d, fingerprint {d['model_fingerprint']})")
            fe = d["frontend"]
            print(f"front-end    {fe['sample_rate']} Hz, n_fft {fe['n_fft']}, hop {fe['hop_length']}, "
                  f"{fe['n_mels']} mels, chunks of {fe['chunk_frames']} frames")
            fpi = d.get("fingerprints")
            if fpi:
                print(f"fingerprints {fpi['model']} ({fpi['bits']}-bit codes every {fpi['hop_seconds']:g} s): "
                      f"{fpi['tracks']} tracks, {fpi['windows']} windows, {fpi['bytes_per_hour'] / 1000:.0f} KB per hour")
                held = fpi.get("hashed_index_bytes")
                print(f"  identify   searches the {fpi['index']} index"
                      + (f" ({held / 2**20:.0f} MB on disk)" if fpi["index"] == "hashed" and held else ""))
            else:
                print("fingerprints none (`soundalike fingerprints` adds them; `identify` needs them)")
            hci = d.get("hash_codes")
            if hci:
                print(f"hash codes   {hci['model']} ({hci['bits']} bits per track): {hci['tracks']} tracks")
            vx = d["vector_index"]
            print(f"vector index {vx['kind']} (asked: {vx['asked']})")
            tgi = d.get("tags")
            if tgi:
                print(f"tags         {tgi['heads']} ({tgi['n_tags']} tags): {tgi['tracks']} tracks")
            else:
                print("tags         none (`soundalike index ... --tag-heads default` adds them)")
            rhi = d.get("rhythm")
            if rhi:
                print(f"rhythm       {rhi['model']} (tempo, beats per bar, onset rate): {rhi['tracks']} tracks")
            else:
                print("rhythm       none (`soundalike index ... --events` adds tempo for --where \"tempo>120\")")
            nti = d.get("notes")
            if nti:
                print(f"notes        {nti['model']} (chroma for similar --by notes): {nti['tracks']} tracks")
            else:
                print("notes        none (`soundalike index ... --notes` adds them for similar --by notes)")
            print(f"on disk      {d['disk_bytes'] / 1e6:.1f} MB")
            for key, counts in d["labels"].items():
                top = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:8])
                print(f"{key:<12} {top}")
            if d["failures"]:
                print(f"failed files {len(d['failures'])}:")
                for f in d["failures"][:20]:
                    print(f"  {shown(f['path'])}: {f['reason']}")
            if args.tracks:
                for t in d["track_list"]:
                    top = ", ".join(t.get("top_tags", {}))
                    print(f"#{t['id']:<5d} {t['duration']:7.1f}s  {shown(t['path'])}" + (f"  [{top}]" if top else ""))

        emit(args, d, text)
    return 0


def cmd_fingerprints(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import Catalog

    threads(args)
    with Catalog.open(catalog_arg(args)) as catalog:
        rep = catalog.enable_fingerprints(args.fingerprint_model, rebuild=args.rebuild, progress=progress(args),
                                          max_duration=args.max_duration)
        d = {"catalog": str(catalog.root), "fingerprinted": rep.fingerprinted,
             "failed": [{"path": p, "reason": r} for p, r in rep.failed],
             "fingerprints": catalog.info()["fingerprints"], "wall_seconds": round(rep.wall_seconds, 2)}

        def text() -> None:
            f = d["fingerprints"]
            print(f"{catalog.root}: fingerprinted {rep.fingerprinted} tracks in {rep.wall_seconds:.1f} s; "
                  f"{f['windows']} windows of {f['bits']} bits ({f['bytes_per_hour'] / 1000:.0f} KB per hour) "
                  f"with {f['model']}")
            for path, reason in rep.failed:
                print(f"  failed: {path}: {reason}", file=sys.stderr)

        emit(args, d, text)
    return 0


def register(sub: Any) -> None:
    """Add this group's commands to the ``soundalike`` sub-parsers."""
    from soundalike.index.vectors import KINDS as INDEX_KINDS

    sp = sub.add_parser("index", help="add audio files and folders to a catalog (incremental, crash-safe)",
                        description="Walk folders for audio (mp3, ogg, opus, flac, wav, m4a, ...), embed new and "
                                    "changed files, skip unchanged ones, and update the search index. Safe to kill "
                                    "and re-run. Creates the catalog if it does not exist. Files that cannot be "
                                    "indexed are listed with the reason (named pipes and devices are skipped, never "
                                    "opened); the rest is indexed, and the exit status is then 1 (--allow-failures: "
                                    "0).")
    sp.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    sp.add_argument("--manifest", metavar="JSONL", help="labels: JSON lines with a 'path' relative to the file")
    sp.add_argument("--prune", action="store_true", help="remove tracks under PATH whose file is gone")
    add_max_duration(sp)
    sp.add_argument("--fingerprint-model", metavar="NAME|PATH",
                    help="fingerprint model for `identify`, for a new catalog (default: the shipped "
                         "fingerprint_cnn-music)")
    sp.add_argument("--no-fingerprints", action="store_true",
                    help="a new catalog keeps no fingerprints (smaller, faster; `identify` will not work)")
    sp.add_argument("--hash-model", metavar="NAME|PATH",
                    help="also keep this hash model's binary code per track, for `similar --hash` "
                         "(e.g. the shipped hash_cnn-music; 'default' names it)")
    sp.add_argument("--rebuild-hash", action="store_true",
                    help="replace the hash codes of another hash model with --hash-model's")
    sp.add_argument("--tag-heads", metavar="HEADS", default=None,
                    help="tag every track with these heads (comma-separated names or paths; 'default': the shipped "
                         "tags-mtt,instruments-gm; 'none': no tags). New catalogs use the default when it fits "
                         "the model")
    sp.add_argument("--rebuild-tags", action="store_true", help="replace the tags of other heads with --tag-heads'")
    sp.add_argument("--events", action="store_true",
                    help="also keep each track's tempo, beats per bar, onset rate and a rhythm descriptor (the "
                         "events model; about 150x realtime more work), for --where \"tempo>120\"; once on, "
                         "later runs keep them for new tracks")
    sp.add_argument("--events-model", metavar="PATH", default=None,
                    help="--events with this events model (default: the shipped events_tcn-gm)")
    sp.add_argument("--rebuild-events", action="store_true",
                    help="replace another events model's rhythm rows with --events-model's")
    sp.add_argument("--notes", action="store_true",
                    help="also transcribe each track and keep its chroma (the pitch classes sounding, four times a "
                         "second) for `similar --by notes`, which finds the same work in another arrangement "
                         "(about 100x realtime more work); once on, later runs keep them for new tracks")
    sp.add_argument("--notes-model", metavar="PATH", default=None,
                    help="--notes with this transcription model (default: the shipped notes_hcnn-gm)")
    sp.add_argument("--rebuild-notes", action="store_true",
                    help="replace another transcription model's note features with --notes-model's")
    sp.add_argument("--ray", action="store_true",
                    help="decode and embed on a Ray cluster (Ray Data, one model per worker actor); needs "
                         "pip install 'soundalike[ray]'")
    sp.add_argument("--address", metavar="ADDR", help="--ray: the cluster to join (default: the running one, "
                    "else a local one)")
    sp.add_argument("--ray-workers", type=int, default=2, metavar="N", help="--ray: worker actors (default 2)")
    sp.add_argument("--index-type", choices=["auto", *INDEX_KINDS], default=None,
                    help="vector index: auto (default: exact flat up to 200k tracks, HNSW above), flat, hnsw, or "
                         "ivfpq (compressed codes + exact re-ranking, when memory is the limit); stored in the catalog")
    sp.add_argument("--allow-failures", action="store_true",
                    help="exit 0 even when some files failed (default: exit 1 after indexing everything else)")
    add_common(sp, catalog=True, model=True, threads=True)
    sp.set_defaults(func=cmd_index)

    sp = sub.add_parser("check", help="check a catalog's database for damage; --repair rebuilds it",
                        description="Run SQLite's integrity check on the catalog. With --repair, a damaged database "
                                    "is rebuilt from every row that can still be read: the damaged file is kept "
                                    "beside it, lost fingerprints, hash codes and tags are recomputed by the next "
                                    "`soundalike index`, and lost tracks are listed (index their folder again). "
                                    "Exit status 1 when the catalog is damaged and was not repaired.")
    sp.add_argument("--repair", action="store_true", help="rebuild a damaged database from what is intact")
    add_common(sp, catalog=True)
    sp.set_defaults(func=cmd_check)

    sp = sub.add_parser("info", help="catalog statistics, model, labels and failed files",
                        description="Print what a catalog holds and which model filled it.")
    sp.add_argument("--tracks", action="store_true", help="also list every track")
    add_common(sp, catalog=True, model=True)
    sp.set_defaults(func=cmd_info)

    sp = sub.add_parser("fingerprints", help="add (or rebuild) the fingerprints `identify` needs",
                        description="Fingerprint every catalog track that has none: a catalog made with "
                                    "--no-fingerprints or by an older soundalike. --rebuild replaces fingerprints "
                                    "of another fingerprint model.")
    sp.add_argument("--fingerprint-model", metavar="NAME|PATH", help="default: the shipped fingerprint_cnn-music")
    sp.add_argument("--rebuild", action="store_true", help="replace existing fingerprints of another model")
    add_max_duration(sp)
    add_common(sp, catalog=True, threads=True)
    sp.set_defaults(func=cmd_fingerprints)
