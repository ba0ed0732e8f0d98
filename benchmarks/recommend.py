"""Audio-only vs ALS-only vs the hybrid recommender on simulated listening logs over a real catalog.

    python benchmarks/recommend.py --catalog data/catalogs/recommend [--users 600] [--seeds 0 1 2]

The catalog: the demo corpus plus the Debian music (544 tracks, labelled by collection and package):

    soundalike index demo/corpus/audio --manifest demo/corpus/manifest.jsonl --catalog data/catalogs/recommend \
        --no-fingerprints --hash-model default --tag-heads none
    soundalike index data/debian-music/audio --manifest data/debian-music/manifest.jsonl \
        --catalog data/catalogs/recommend

Listens are simulated (:mod:`soundalike.recommend.simulate`): latent tastes over labels and over audio
(in the hash-CNN's code space, not the embedding the recommender uses), Zipf popularity, and a share of
new tracks with no plays in the first period. Every recommender is fitted on the first period only (the
hybrid tunes its blend on held-out listens from inside that period) and scored on the second period's
listens of tracks the user had not played: recall@20 and NDCG@20, overall and on warm / cold (new) tracks.

Targets (issue 9): the hybrid beats both on overall NDCG@20; on cold tracks its recall is at least 80% of
its warm-track recall. Writes docs/experiments/recommend.json with ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from soundalike import Catalog
from soundalike.recommend.hybrid import (
    HybridConfig,
    Listens,
    components,
    fit_hybrid,
    held_out,
    profiles,
)
from soundalike.recommend.metrics import ranking_metrics
from soundalike.recommend.simulate import SimConfig, catalog_features, simulate


def evaluate(ids: np.ndarray, songs: np.ndarray, sim, cfg: HybridConfig) -> dict:
    t0 = time.perf_counter()
    model = fit_hybrid(sim.first, ids, songs, cfg)
    fit_s = time.perf_counter() - t0
    lis = Listens.from_rows(sim.first, ids, model.users)
    heard = lis.plays.toarray() > 0
    want = held_out(sim.second, model.users, ids)
    targets = [np.array(sorted(c for c in want.get(u, ()) if not heard[u, c]), int) for u in range(len(model.users))]
    cold = ~model.factors.warm
    taste = profiles(lis.plays, songs)
    comp = components(model.factors.user, model.factors.item, taste, songs, cold, heard)
    als_items = model.factors.item.copy()
    als_items[cold] = 0.0  # ALS alone has no factors for a track nobody played
    als = components(model.factors.user, als_items, taste, songs, cold, heard)
    out = {"fit_seconds": round(fit_s, 2), "tuning": {k: v for k, v in model.tuning.to_dict().items() if k != "grid"},
           "held_out_listens": int(sum(len(t) for t in targets)),
           "held_out_cold": int(sum(int(cold[t].sum()) for t in targets if len(t)))}
    for name, scores in (("audio", comp.blend(0.0, 0.0)), ("als", als.blend(1.0, 0.0)),
                         ("hybrid", comp.blend(model.weight, model.offset))):
        out[name] = {k: (round(v, 4) if isinstance(v, float) else v)
                     for k, v in ranking_metrics(scores, targets, 20, cold).items()}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", default="data/catalogs/recommend")
    ap.add_argument("--users", type=int, default=SimConfig.users)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--popularity", type=float, default=SimConfig.popularity, help="Zipf exponent (0: none)")
    ap.add_argument("--new-share", type=float, default=SimConfig.new_share,
                    help="share of tracks released in the second period")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    catalog = Catalog.open(args.catalog)
    ids, feats, labels, feat_name = catalog_features(catalog)
    _, songs = catalog.song_matrix()
    print(f"catalog {args.catalog}: {len(ids)} tracks, {len(set(labels))} labels; audio taste space: {feat_name}")
    runs = []
    for seed in args.seeds:
        sim = simulate(ids, labels, feats, SimConfig(users=args.users, seed=seed, popularity=args.popularity,
                                                      new_share=args.new_share))
        res = evaluate(ids, songs, sim, HybridConfig(seed=seed))
        res["seed"] = seed
        runs.append(res)
        tu = res["tuning"]
        print(f"\nseed {seed}: {len(sim.first)} listens to fit on, {res['held_out_listens']} held out "
              f"({res['held_out_cold']} of new tracks); blend tuned to w={tu['weight']}, b={tu['offset']} "
              f"in {res['fit_seconds']} s")
        print(f"  {'':8} {'recall@20':>10} {'NDCG@20':>8} {'warm rec':>9} {'cold rec':>9} {'cold/warm':>9}")
        for name in ("audio", "als", "hybrid"):
            m = res[name]
            ratio = m["recall_cold"] / m["recall_warm"] if m["recall_warm"] else float("nan")
            print(f"  {name:8} {m['recall']:10.4f} {m['ndcg']:8.4f} {m['recall_warm']:9.4f} "
                  f"{m['recall_cold']:9.4f} {ratio:9.2f}")
    mean = {name: {k: float(np.mean([r[name][k] for r in runs])) for k in ("recall", "ndcg", "recall_warm",
                                                                           "recall_cold")}
            for name in ("audio", "als", "hybrid")}
    h = mean["hybrid"]
    beats = h["ndcg"] > max(mean["audio"]["ndcg"], mean["als"]["ndcg"])
    ratio = h["recall_cold"] / h["recall_warm"]
    print(f"\nmean over seeds {args.seeds}:")
    for name, m in mean.items():
        print(f"  {name:8} recall@20 {m['recall']:.4f}  NDCG@20 {m['ndcg']:.4f}  warm {m['recall_warm']:.4f}  "
              f"cold {m['recall_cold']:.4f}")
    print(f"hybrid NDCG@20 vs best single: {h['ndcg'] / max(mean['audio']['ndcg'], mean['als']['ndcg']):.3f}x "
          f"(target > 1: {'met' if beats else 'MISSED'})")
    print(f"hybrid cold/warm recall: {ratio:.2f} (target >= 0.80: {'met' if ratio >= 0.8 else 'MISSED'})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"catalog": {"tracks": len(ids), "labels": len(set(labels)),
                                                    "audio_taste_space": feat_name},
                                        "simulation": SimConfig(users=args.users, popularity=args.popularity,
                                                                 new_share=args.new_share).to_dict(),
                                        "hybrid_config": {k: v for k, v in HybridConfig().to_dict().items()
                                                          if k not in ("weights", "offsets")},
                                        "runs": runs, "mean": mean,
                                        "targets": {"hybrid_beats_both_ndcg": beats, "cold_warm_recall": ratio}},
                                       indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
