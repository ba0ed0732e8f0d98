"""The CLI for listening history (listens) and recommendations (recommend): each command's parser next to its handler."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from soundalike.cli.common import (
    add_common,
    catalog_arg,
    emit,
    shown,
)
from soundalike.errors import ParameterError


def cmd_listens(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import Catalog

    if args.action in ("import", "simulate") and not args.file:
        raise ParameterError(f"listens {args.action} needs a FILE.csv")
    with Catalog.open(catalog_arg(args)) as catalog:
        if args.action == "simulate":
            return _listens_simulate(args, catalog)
        if args.action == "fit":
            return _listens_fit(args, catalog)
        from soundalike.recommend.listens import import_listens

        rep = import_listens(catalog, args.file, skip_invalid=args.skip_invalid)
        d = rep.to_dict()
        d["catalog"] = str(catalog.root)

        def text() -> None:
            print(f"{catalog.root}: imported {rep.imported} of {rep.rows} listens ({rep.users} users); "
                  f"{rep.duplicates} duplicates skipped" + (f", {rep.invalid} invalid rows skipped" if rep.invalid else ""))
            for line, problem in rep.problems[:20]:
                print(f"  line {line}: {problem}", file=sys.stderr)

        emit(args, d, text)
    return 0


def _listens_fit(args: argparse.Namespace, catalog: Any) -> int:
    from soundalike.recommend.hybrid import model_for

    model = model_for(catalog, refit=True)
    tun = model.tuning
    tuning = {k: v for k, v in tun.to_dict().items() if k != "grid"}
    tuning["users_held_out"] = tuning.pop("users")
    d = {"catalog": str(catalog.root), "users": len(model.users), "tracks": len(model.ids),
         "tracks_with_listens": int(model.factors.warm.sum()), **tuning}

    def text() -> None:
        print(f"{catalog.root}: fitted ALS on {len(model.users)} users x {int(model.factors.warm.sum())} played "
              f"tracks (of {len(model.ids)})")
        if tun.tuned:
            print(f"blend tuned on held-out listens: weight {tun.weight} (listening history) / "
                  f"{round(1 - tun.weight, 2)} (audio), new-track offset {tun.offset}")
            print(f"held-out NDCG@{model.config.k}: hybrid {tun.ndcg:.4f}, audio only {tun.audio_ndcg:.4f}, "
                  f"ALS only {tun.als_ndcg:.4f} ({tun.note})")
        else:
            print(f"not tuned: {tun.note}")

    emit(args, d, text)
    return 0


def _listens_simulate(args: argparse.Namespace, catalog: Any) -> int:
    from soundalike.recommend.listens import write_listens
    from soundalike.recommend.simulate import SimConfig, catalog_features, simulate

    ids, feats, labels, space = catalog_features(catalog)
    sim = simulate(ids, labels, feats, SimConfig(users=args.users, seed=args.seed, new_share=args.new_share))
    outs = [(Path(args.file), sim.first if args.held_out else sim.rows)]
    if args.held_out:
        outs.append((Path(args.held_out), sim.second))
    for path, rows in outs:
        write_listens(path, rows)
    d = {"catalog": str(catalog.root), "users": args.users, "seed": args.seed, "audio_taste_space": space,
         "listens": len(sim.rows), "held_out_listens": len(sim.second) if args.held_out else 0,
         "new_tracks": len(sim.new_tracks), "files": [str(p) for p, _ in outs]}

    def text() -> None:
        print(f"simulated {len(sim.rows)} listens of {args.users} users over {len(ids)} tracks "
              f"(audio tastes in {space}); {len(sim.new_tracks)} tracks released in the second period")
        for path, rows in outs:
            print(f"  {path}: {len(rows)} listens")
        print(f"next: soundalike listens import {outs[0][0]} --catalog {catalog.root}")

    emit(args, d, text)
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from soundalike.index.catalog import Catalog
    from soundalike.recommend.rank import recommend_ranking

    with Catalog.open(catalog_arg(args)) as catalog:
        ranking = recommend_ranking(catalog, user=args.user, seed_track=args.seed_track, k=args.k,
                                    max_per=args.max_per, per=args.per, exclude_heard=not args.include_heard,
                                    method=args.method)
        payload = {"user": args.user, "seed_track": args.seed_track, "k": args.k, **ranking.to_dict()}

        def text() -> None:
            b = ranking.blend
            how = (f"hybrid: listening history x {b['weight']}, audio x {round(1 - b['weight'], 2)}"
                   + (f", new tracks {b['offset']:+}" if args.user else "") if ranking.method == "hybrid" and b["tuned"] else
                   f"{ranking.method}" + (f" ({b['note']})" if b.get("note") and ranking.method != "als" else ""))
            who = f"user {args.user}" if args.user else f"track #{args.seed_track}"
            print(f"recommended for {who} [{how}]:")
            for r in ranking.recommendations:
                print(f"{r.rank:3d}. {r.score:6.3f}  #{r.track.id:<5d} {shown(r.track.display_name)}  ({r.reason})")
            if not ranking.recommendations:
                print("  nothing new: every track is already played" + (" or the seed" if args.seed_track else "")
                      + (" (--include-heard keeps played tracks)" if not args.include_heard else ""))

        emit(args, payload, text)
    return 0


def register(sub: Any) -> None:
    """Add this group's commands to the ``soundalike`` sub-parsers."""
    from soundalike.recommend.rank import DIVERSITY_KEYS, METHODS

    sp = sub.add_parser("listens", help="listening history: import who played what, fit the recommender, simulate",
                        description="listens import FILE.csv: a header with user, track (catalog id or audio path, "
                                    "relative to the CSV), timestamp (ISO 8601 or unix seconds) and optionally "
                                    "plays. The file is checked first; rows with unknown tracks or bad values stop "
                                    "the import (nothing is imported) unless --skip-invalid. Repeated rows are "
                                    "skipped and counted. "
                                    "listens fit: fit the hybrid recommender now and show the blend it tuned on "
                                    "held-out listens (`recommend` also refits by itself when listens changed). "
                                    "listens simulate FILE.csv: write simulated listens over this catalog (tastes "
                                    "over labels and audio, popularity skew, new releases) to try things out.")
    sp.add_argument("action", choices=["import", "fit", "simulate"], help="what to do")
    sp.add_argument("file", metavar="FILE.csv", nargs="?", help="import: the history to read; simulate: where to write")
    sp.add_argument("--skip-invalid", action="store_true", help="import: import the valid rows, count the others")
    sp.add_argument("--users", type=int, default=200, help="simulate: how many users (default 200)")
    sp.add_argument("--seed", type=int, default=0, help="simulate: random seed (default 0)")
    sp.add_argument("--new-share", type=float, default=0.2,
                    help="simulate: share of tracks released in the second period (default 0.2)")
    sp.add_argument("--held-out", metavar="FILE2.csv",
                    help="simulate: write the second period's listens here instead of into FILE.csv")
    add_common(sp, catalog=True)
    sp.set_defaults(func=cmd_listens)

    sp = sub.add_parser("recommend", help="tracks for a user (from their listens) or like a seed track",
                        description="Rank catalog tracks for a user: by default a hybrid of ALS over everyone's "
                                    "listens and audio similarity to the user's taste (what nobody has played yet "
                                    "is ranked by its audio), blended with a weight tuned on held-out listens; or "
                                    "tracks that follow a seed track. Leaves out what they heard, caps tracks per "
                                    "album/artist/label with --max-per, and says why each is there. The "
                                    "recommender is refitted by itself when the listens changed.")
    who = sp.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a user from `soundalike listens import`")
    who.add_argument("--seed-track", type=int, metavar="ID", help="recommend from one catalog track instead")
    sp.add_argument("-k", type=int, default=20, help="how many (default 20)")
    sp.add_argument("--max-per", type=int, metavar="N", help="at most N tracks sharing one --per value")
    sp.add_argument("--per", choices=DIVERSITY_KEYS, default="album", help="what --max-per counts")
    sp.add_argument("--include-heard", action="store_true", help="keep tracks the user already played")
    sp.add_argument("--method", choices=METHODS, default="hybrid",
                    help="hybrid (default), audio only, or ALS (listening history) only")
    add_common(sp, catalog=True)
    sp.set_defaults(func=cmd_recommend)
