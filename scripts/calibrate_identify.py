#!/usr/bin/env python
"""Choose the "no match" threshold of a fingerprint model on held-out music, and store it in the model.

Half of the held-out tracks form a catalog, the other half are "not in the
catalog". Degraded 5 s excerpts of both (every condition of
``soundalike.fingerprint.evaluate.CONDITIONS``) are identified; a logistic
regression maps (vote score, margin over the next track) to the probability
that the top match is right, and the threshold is the lowest confidence at
which at most 1% of the out-of-catalog excerpts would match. The result goes
into the model's JSON (``metadata.identify``); the weights, and so the model
fingerprint, do not change.

    python scripts/calibrate_identify.py runs/fingerprint_cnn-music/model.safetensors \\
        --data data/debian-music --packages hedgewars-data freedroidrpg-data ardentryst flare-game

Use packages the model was not trained on (configs/fingerprint.yaml holds these four out).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_tracks(data: Path, packages: list[str], sr: int, max_seconds: float) -> tuple[list[str], list[np.ndarray]]:
    from soundalike.audio.io import decode

    rows = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if not packages or r.get("label") in packages]
    if not rows:
        raise SystemExit(f"no tracks of {packages} in {data}/manifest.jsonl")
    paths, waves = [], []
    for r in rows:
        p = data / r["path"]
        waves.append(decode(p, sr=sr, duration=max_seconds, max_duration=None).samples)
        paths.append(str(p))
    return paths, waves


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="fingerprint model (.safetensors path); its JSON is updated in place")
    ap.add_argument("--data", type=Path, default=ROOT / "data/debian-music", help="folder with manifest.jsonl")
    ap.add_argument("--packages", nargs="*", default=["hedgewars-data", "freedroidrpg-data", "ardentryst", "flare-game"],
                    help="labels to use (default: the packages configs/fingerprint.yaml holds out)")
    ap.add_argument("--per-condition", type=int, default=30, help="excerpts per condition, in and out (default 30)")
    ap.add_argument("--seconds", type=float, default=5.0, help="excerpt length (default 5)")
    ap.add_argument("--max-rate", type=float, default=0.01, help="false-match rate allowed (default 0.01)")
    ap.add_argument("--sample-rate", type=int, default=22050, help="rate the degradations run at (default 22050)")
    ap.add_argument("--max-seconds", type=float, default=600.0, help="cut longer tracks (default 600)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dry-run", action="store_true", help="print the calibration, do not write it")
    args = ap.parse_args(argv)

    import torch

    from soundalike.fingerprint import load_fingerprinter
    from soundalike.fingerprint.evaluate import (
        content_groups,
        fit_calibration,
        is_hit,
        make_queries,
        take_groups,
        top_candidates,
    )
    from soundalike.fingerprint.index import BinaryIndex

    torch.set_num_threads(1)
    fp = load_fingerprinter(args.model)
    paths, waves = load_tracks(args.data, args.packages, args.sample_rate, args.max_seconds)
    codes = [fp.track_codes(y, args.sample_rate) for y in waves]
    # tracks that share audio (an intro and its loop, a 'raw' and a mastered file) stay on one side
    groups = content_groups(codes, bits=fp.bits)
    rng = np.random.default_rng(args.seed)
    gids = sorted(set(groups))
    inside = sorted(take_groups(groups, [gids[i] for i in rng.permutation(len(gids))], len(waves) // 2))
    outside = sorted(set(range(len(waves))) - set(inside))
    index = BinaryIndex.build(fp.bits, [(i, codes[i], fp.hop_seconds) for i in inside])
    q_in = make_queries([waves[i] for i in inside], args.sample_rate, per_condition=args.per_condition,
                        seconds=args.seconds, seed=args.seed + 1)
    q_out = make_queries([waves[i] for i in outside], args.sample_rate, per_condition=args.per_condition,
                         seconds=args.seconds, seed=args.seed + 2, in_catalog=False)
    r_in = top_candidates(fp, index, q_in, args.sample_rate, progress=True)
    r_out = top_candidates(fp, index, q_out, args.sample_rate, progress=True)
    # right answers vs answers to excerpts that are not in the catalog; an in-catalog excerpt whose
    # top match is wrong (often the right track at a repeat of the passage) is neither
    pos = [(c.score, m) for q, (c, m) in zip(q_in, r_in, strict=True) if c is not None and is_hit(c, q, inside)]
    neg = [(c.score, m) for c, m in r_out if c is not None]
    n_out_none = sum(c is None for c, _ in r_out)
    worst = sorted(((c.score, m, q.condition, Path(paths[outside[q.track]]).name, Path(paths[c.track_id]).name,
                     round(c.offset, 1)) for q, (c, m) in zip(q_out, r_out, strict=True) if c is not None),
                   reverse=True)[:8]
    print("strongest out-of-catalog matches (score, margin, condition, query track, matched track, offset):",
          file=sys.stderr)
    for w in worst:
        print(f"  {w[0]:.3f} {w[1]:.3f} {w[2]:22s} {w[3]} -> {w[4]} @ {w[5]}", file=sys.stderr)
    cal = fit_calibration(np.array(pos), np.array(neg), max_false_match_rate=args.max_rate, fitted_on={
        "packages": args.packages, "tracks_in": len(inside), "tracks_out": len(outside),
        "shared_audio_groups": len(groups) - len(set(groups)),
        "queries_in": len(q_in), "queries_out": len(q_out), "seconds": args.seconds, "seed": args.seed})
    out_conf = [cal.confidence(c.score, m) if c is not None else 0.0 for c, m in r_out]
    fmr = float(np.mean(np.array(out_conf) >= cal.threshold))
    in_acc = [is_hit(c, q, inside) and cal.confidence(c.score, m) >= cal.threshold
              for q, (c, m) in zip(q_in, r_in, strict=True)]
    d = cal.to_dict()
    d["false_match_rate"] = fmr
    d["accepted_hit_rate"] = float(np.mean(in_acc))
    print(json.dumps({**d, "out_without_candidate": n_out_none}, indent=2))
    if not args.dry_run:
        stem = Path(args.model).with_suffix("")
        jpath = stem.with_suffix(".json")
        desc = json.loads(jpath.read_text())
        desc.setdefault("metadata", {})["identify"] = d
        jpath.write_text(json.dumps(desc, indent=2, sort_keys=True) + "\n")
        load_fingerprinter(str(stem) + ".safetensors")  # still loads, same fingerprint
        print(f"wrote the calibration into {jpath}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
