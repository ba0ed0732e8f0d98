"""The CLI for what sounds like this (similar) and where did it come from (identify): each command's parser next to its handler."""

from __future__ import annotations

import argparse
from typing import Any

from soundalike.cli.common import (
    add_common,
    add_excerpt,
    catalog_arg,
    clock,
    emit,
    notice,
    progress,
    shown,
    threads,
)
from soundalike.errors import SoundalikeError


def cmd_similar(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import Catalog

    threads(args)
    from soundalike.tasks.similar import similar

    with Catalog.open(catalog_arg(args), model=args.model) as catalog:
        note = notice(catalog)
        by = "hash" if args.hash else args.by
        matches = similar(catalog, args.query, k=args.k, offset=args.offset, duration=args.duration, by=by,
                          where=args.where, max_duration=args.max_duration)
        ranking = ("hamming" if by == "hash" else "notes" if by == "notes" else "song+moments"
                   if matches and matches[0].moment_score is not None else "cosine")
        payload = {"query": args.query, "catalog": str(catalog.root), "k": args.k, "where": args.where or [],
                   "by": by, "ranking": ranking, "matches": [m.to_dict() for m in matches],
                   **({"notice": note} if note else {})}

        def text() -> None:
            how = (f" (bits that differ between {catalog.hasher.bits}-bit hash codes)" if by == "hash" else
                   " by the notes they play (their chroma: summary cosine and alignment)" if by == "notes" else "")
            cond = f" where {' and '.join(args.where)}" if args.where else ""
            print(f"tracks most similar to {args.query}{how}{cond}:")
            if not matches:
                print("  (none)")
            for m in matches:
                coll = m.track.labels.get("collection")
                extra = f"  [{coll}/{m.track.labels.get('ensemble')}]" if coll else ""
                score = f"{m.hamming:3d} off" if m.hamming is not None else f"{m.score:6.3f}"
                print(f"{m.rank:3d}. {score}  #{m.track.id:<5d} {shown(m.track.display_name)}{extra}")

        emit(args, payload, text)
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import Catalog

    threads(args)
    from soundalike.tasks.identify import identify

    with Catalog.open(catalog_arg(args)) as catalog:
        catalog.fingerprints.use_index(args.index)
        if catalog.has_fingerprints:
            catalog.window_index(progress=progress(args))  # a stale hashed index is rebuilt here, with a bar
        if args.segments:
            if args.restore:
                raise SoundalikeError("--restore cleans up an excerpt; for a long recording, run `soundalike "
                                      "restore` on it first, then identify --segments the restored file")
            return _segments(args, catalog)
        res = identify(catalog, args.clip, offset=args.offset, duration=args.duration, top=args.top,
                       max_duration=args.max_duration, restore=args.restore)
        payload = {**res.to_dict(), "catalog": str(catalog.root)}

        def text() -> None:
            m = res.match
            if m is None:
                best = res.candidates[0] if res.candidates else None
                hint = (f" (best guess #{best.track.id} {shown(best.track.display_name)} at {best.offset:.1f} s, "
                        f"confidence {best.confidence:.2f} < {res.threshold:.2f})") if best else ""
                print(f"no match for {args.clip} in {catalog.root}{hint}")
            else:
                print(f"{args.clip}: #{m.track.id} {shown(m.track.display_name)} at {clock(m.offset)} "
                      f"(confidence {m.confidence:.2f}, {m.windows} windows agree)")
                print(f"  {shown(m.track.path)}")
            if args.top > 1 and len(res.candidates) > 1:
                for c in res.candidates[1:]:
                    print(f"  {c.rank}. #{c.track.id} {shown(c.track.display_name)} at {clock(c.offset)} "
                          f"(confidence {c.confidence:.2f})")

        emit(args, payload, text)
    return 0 if res.match is not None or not args.fail_on_no_match else 1


def _segments(args: argparse.Namespace, catalog: Any) -> int:
    from soundalike.tasks.identify import identify_segments

    res = identify_segments(catalog, args.clip, offset=args.offset, duration=args.duration,
                            max_duration=args.max_duration, progress=progress(args))
    payload = {**res.to_dict(), "catalog": str(catalog.root)}

    def text() -> None:
        print(f"{args.clip}: {len(res.segments)} catalog tracks in {clock(res.duration)} "
              f"({len(res.gaps)} gaps)")
        rows = [(s.start, s) for s in res.segments] + [(a, (a, b)) for a, b in res.gaps]
        for _, item in sorted(rows, key=lambda r: r[0]):
            if isinstance(item, tuple):
                print(f"  {clock(item[0])} - {clock(item[1])}  (nothing from the catalog)")
            else:
                t = res.tracks[item.track_id]
                print(f"  {clock(item.start)} - {clock(item.end)}  #{t.id} {shown(t.display_name)} from "
                      f"{clock(item.offset)} (confidence {item.confidence:.2f})")

    emit(args, payload, text)
    return 0 if res.segments or not args.fail_on_no_match else 1


def register(sub: Any) -> None:
    """Add this group's commands to the ``soundalike`` sub-parsers."""
    sp = sub.add_parser("similar", help="the tracks that sound most like a file or a catalog track",
                        description="Rank catalog tracks by how they sound like QUERY: a track id (cosine "
                                    "similarity of song embeddings) or an audio file, embedded with the catalog's "
                                    "model and ranked by 0.25 x song cosine + 0.75 x moment score (how well its "
                                    "chunks find twins among the track's), so an excerpt, even a noisy one, finds "
                                    "the track it comes from first (JSON: song_score, moment_score). With --hash, "
                                    "rank by Hamming distance of compact binary codes instead (a catalog indexed "
                                    "with --hash-model). With --by notes, rank by what is played rather than how "
                                    "it sounds: the transcription model's chroma of each track (a catalog indexed "
                                    "with --notes), the nearest by a summary's cosine re-scored by how well their "
                                    "chroma sequences line up at the best time offset and tempo ratio, so another "
                                    "arrangement of the same work ranks first.")
    sp.add_argument("query", metavar="QUERY", help="audio file, or a track id from `soundalike info --tracks`")
    sp.add_argument("-k", type=int, default=10, help="how many tracks (default 10)")
    sp.add_argument("--by", choices=("sound", "hash", "notes"), default="sound",
                    help="rank by how tracks sound (embeddings; the default), by their hash codes, or by the notes "
                         "they play (a catalog indexed with --notes)")
    sp.add_argument("--hash", action="store_true", help="the same as --by hash")
    sp.add_argument("--where", action="append", metavar="COND",
                    help="keep only tracks whose stored tags or rhythm meet COND, e.g. \"tag:piano>0.5\" or "
                         "\"tempo>120\" (fields: tempo, tempo_confidence, beats_per_bar, onset_rate; a catalog "
                         "indexed with --events keeps them); repeat: all must hold; `soundalike tag --list-tags "
                         "--catalog DIR` lists the tags")
    add_excerpt(sp, "QUERY")
    add_common(sp, catalog=True, model=True, threads=True)
    sp.set_defaults(func=cmd_similar)

    sp = sub.add_parser("identify", help="which catalog track a short, degraded excerpt comes from, and where",
                        description="Match CLIP (a few seconds of audio: a recording, a re-encode, a pitch- or "
                                    "tempo-changed copy) against the catalog's fingerprints and print the track, "
                                    "the offset into it and a calibrated confidence, or 'no match' when the "
                                    "confidence is below the threshold chosen on held-out data (at most 1% "
                                    "false matches on music that is not in the catalog). With --segments, CLIP "
                                    "is a long recording (a DJ mix, a broadcast): every catalog track in it, "
                                    "where it starts and ends, from where in the track, and the gaps.")
    sp.add_argument("clip", metavar="CLIP", help="audio file (3-10 s works best; longer files: use --duration)")
    add_excerpt(sp, "CLIP")
    sp.add_argument("--top", type=int, default=1, help="also list the next candidates (default 1: the best only)")
    sp.add_argument("--fail-on-no-match", action="store_true", help="exit with status 1 when nothing matches")
    sp.add_argument("--restore", action="store_true",
                    help="clean the excerpt up first (noise out, clipped peaks back: see `soundalike restore`); "
                         "benchmarks/restore.py measures when it helps")
    sp.add_argument("--segments", action="store_true",
                    help="CLIP is a long recording (a mix, a broadcast): list every catalog track heard in it, "
                         "with start and end in the recording, the offset into the track, and the gaps; read "
                         "in bounded memory, with a progress bar")
    sp.add_argument("--index", choices=("auto", "exact", "hashed"), default="auto",
                    help="fingerprint index: exact (scan every window in memory), hashed (the multi-probe hash kept "
                         "on disk beside the catalog, rebuilt when the catalog changed), or auto (default: exact up "
                         "to 500,000 windows, about 1,000 tracks, hashed beyond)")
    add_common(sp, catalog=True, threads=True)
    sp.set_defaults(func=cmd_identify)
