"""``soundalike playlist``: an instant mix from a track, an audio file or a user's taste, as M3U8 or JSON."""

from __future__ import annotations

import argparse
from typing import Any

from soundalike.cli.common import add_common, add_max_duration, catalog_arg, emit, shown, threads


def cmd_playlist(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import Catalog
    from soundalike.recommend.playlist import write_m3u8
    from soundalike.tasks.playlist import playlist

    threads(args)
    with Catalog.open(catalog_arg(args)) as catalog:
        mix = playlist(catalog, args.seed, user=args.user, n=args.n, max_per=args.max_per, per=args.per,
                       max_duration=args.max_duration)
    if args.output:
        write_m3u8(mix, args.output)
    payload = mix.to_dict()
    if args.output:
        payload["m3u8"] = str(args.output)

    def text() -> None:
        print(f"a mix of {len(mix.tracks)} tracks from {shown(mix.seed)} (mean step {mix.mean_step:.3f})"
              + (f" -> {args.output}" if args.output else ""))
        for i, t in enumerate(mix.tracks):
            step = "" if i == 0 else f"  (+{mix.steps[i - 1]:.3f})"
            print(f"{i + 1:3d}. #{t.id:<5d} {shown(t.display_name)}{step}")

    emit(args, payload, text)
    return 0


def register(sub: Any) -> None:
    sp = sub.add_parser("playlist", help="an instant mix: a playlist from a track, a file or a user's taste",
                        description="Pick the N catalog tracks nearest SEED (a track id, a catalog track's path or "
                                    "an audio file) or --user's taste (their imported listens), each track once and "
                                    "at most --max-per per artist, label or album, and order them so that each step "
                                    "is a small one: a shortest path through the song embeddings (and the tempo, "
                                    "when the catalog keeps it: index --events). A seed track opens its own mix. "
                                    "-o writes an M3U8 playlist (paths relative to its folder) that players open.")
    sp.add_argument("seed", metavar="SEED", nargs="?", default=None, help="track id, catalog path or audio file")
    sp.add_argument("--user", metavar="U", default=None, help="a user with imported listens, instead of SEED")
    sp.add_argument("-n", type=int, default=30, help="tracks in the mix (default 30)")
    sp.add_argument("--max-per", type=int, default=None, metavar="N", help="at most N tracks per --per group")
    sp.add_argument("--per", choices=("artist", "label", "album"), default="artist",
                    help="what --max-per counts by (default artist)")
    sp.add_argument("--output", "-o", metavar="MIX.m3u8", default=None, help="write the mix as an M3U8 playlist")
    add_max_duration(sp)
    add_common(sp, catalog=True, threads=True)
    sp.set_defaults(func=cmd_playlist)
