#!/usr/bin/env python
"""Choose the "no match" threshold of a fingerprint model on held-out music, and store it in the model.

Half of the held-out tracks form a catalog, the other half are "not in the
catalog". Degraded 5 s excerpts of both (every condition of
``soundalike.fingerprint.evaluate.CONDITIONS``) are identified; a logistic
regression maps (vote score, margin over the next track) to the probability
that the top match is right, and the threshold is the lowest confidence at
which at most 1% of the out-of-catalog excerpts would match. The evidence weighed: the vote score, the
margin over the next track, the margin over the top track's next offset, and how steady the query is; the
out-of-catalog side also holds generated sound (``soundalike.testing.ood``) and a catalog of generated
songs queried with other songs of their style. The result goes
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
from typing import Any

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
    ap.add_argument("--generated-per-kind", type=int, default=40,
                    help="generated out-of-catalog clips of each kind (soundalike.testing.ood; default 40)")
    ap.add_argument("--generated-songs", type=int, default=12,
                    help="generated songs in a catalog of their own, and as many outside it (default 12)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dry-run", action="store_true", help="print the calibration, do not write it")
    ap.add_argument("--dump", metavar="NPZ", help="also save every query's evidence here, for study")
    ap.add_argument("--steady-quantile", type=float, default=0.005,
                    help="share of right matches (held-out music) allowed to be steadier than the limit (0.005)")
    ap.add_argument("--keep-logistic", action="store_true",
                    help="keep the model's logistic and threshold; only set the steadiness limit (its gates can "
                         "only lower confidences: no more false matches than before)")
    ap.add_argument("--all-evidence", action="store_true",
                    help="fit the logistic on score, margin, offset margin and steadiness over every query, "
                         "generated ones included, instead of (score, margin) on the real music plus a "
                         "steadiness limit (rejects more generated sound, accepts fewer right matches)")
    args = ap.parse_args(argv)

    import torch

    from soundalike.fingerprint import load_fingerprinter
    from soundalike.fingerprint.evaluate import (
        Query,
        accepted_rate,
        content_groups,
        fit_calibration,
        is_hit,
        make_queries,
        take_groups,
        top_candidates,
    )
    from soundalike.fingerprint.index import BinaryIndex
    from soundalike.testing.ood import OOD_KINDS, chord_song, ood_clip

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
    pos = [m for q, (c, m) in zip(q_in, r_in, strict=True) if c is not None and is_hit(c, q, inside)]
    neg = [m for c, m in r_out if c is not None]
    # generated sound that is in no catalog (tones, sweeps, chords, drum loops, speech-like noise, hiss,
    # generated songs), against the same catalog; and a catalog of generated songs whose own excerpts
    # must be found while other songs of the same style must not (seeds apart from the tests' and the
    # benchmark's, which use seeds below 1000)
    sr = args.sample_rate
    q_gen = [Query(-1, 0.0, f"generated {kind}", ood_clip(kind, 1000 + i, sr=sr, duration=args.seconds), False)
             for kind in OOD_KINDS for i in range(args.generated_per_kind)]
    r_gen = top_candidates(fp, index, q_gen, sr, progress=True)
    qs_in, qs_out, rs_in, rs_out = [], [], [], []
    songs = [chord_song(2000 + i, sr=sr) for i in range(2 * args.generated_songs)]
    own = list(range(args.generated_songs))
    if own:
        song_index = BinaryIndex.build(fp.bits, [(i, fp.track_codes(songs[i], sr), fp.hop_seconds) for i in own])
        song_conds = ["clean", "mp3 32 kbps", "noise 0 dB", "reverb + noise 10 dB"]
        qs_in = make_queries(songs[: len(own)], sr, per_condition=args.generated_songs, seconds=args.seconds,
                             conditions=song_conds, seed=args.seed + 3)
        qs_out = make_queries(songs[len(own):], sr, per_condition=args.generated_songs, seconds=args.seconds,
                              conditions=song_conds, seed=args.seed + 4, in_catalog=False)
        rs_in = top_candidates(fp, song_index, qs_in, sr, progress=True)
        rs_out = top_candidates(fp, song_index, qs_out, sr, progress=True)
    pos += [m for q, (c, m) in zip(qs_in, rs_in, strict=True) if c is not None and is_hit(c, q, own)]
    neg += [m for c, m in r_gen + rs_out if c is not None]
    n_out_none = sum(c is None for c, _ in r_out)
    worst = sorted(((c.score, m[1], q.condition, Path(paths[outside[q.track]]).name, Path(paths[c.track_id]).name,
                     round(c.offset, 1)) for q, (c, m) in zip(q_out, r_out, strict=True) if c is not None),
                   reverse=True)[:8]
    print("strongest out-of-catalog matches (score, margin, condition, query track, matched track, offset):",
          file=sys.stderr)
    for w in worst:
        print(f"  {w[0]:.3f} {w[1]:.3f} {w[2]:22s} {w[3]} -> {w[4]} @ {w[5]}", file=sys.stderr)
    if args.dump:
        np.savez(args.dump, pos=np.array(pos), neg_real=np.array([m for c, m in r_out if c is not None]),
                 neg_generated=np.array([m for c, m in r_gen if c is not None]),
                 neg_songs=np.array([m for c, m in rs_out if c is not None]),
                 pos_songs=np.array([m for q, (c, m) in zip(qs_in, rs_in, strict=True)
                                     if c is not None and is_hit(c, q, own)]),
                 generated_kinds=np.array([q.condition for q, (c, _) in zip(q_gen, r_gen, strict=True) if c is not None]))
    # the logistic weighs (score, margin) on the real music, as before (or every kind of evidence on all of
    # it: --all-evidence); the steadiness limit comes from the right matches alone
    real_pos = [m for q, (c, m) in zip(q_in, r_in, strict=True) if c is not None and is_hit(c, q, inside)]
    real_neg = [m for c, m in r_out if c is not None]
    fit_pos, fit_neg = (np.array(pos), np.array(neg)) if args.all_evidence else (
        np.array(real_pos)[:, :2], np.array(real_neg)[:, :2])
    limit = float(np.quantile(np.array(real_pos)[:, 3], 1.0 - args.steady_quantile))
    before = fp.calibration  # what the model carries now, on the same queries
    cal = fit_calibration(fit_pos, fit_neg, max_false_match_rate=args.max_rate, fitted_on={
        "packages": args.packages, "tracks_in": len(inside), "tracks_out": len(outside),
        "shared_audio_groups": len(groups) - len(set(groups)),
        "queries_in": len(q_in), "queries_out": len(q_out), "seconds": args.seconds, "seed": args.seed,
        "generated_queries_out": len(q_gen), "generated_song_queries": [len(qs_in), len(qs_out)],
        "evidence": "all" if args.all_evidence else "score, margin + steadiness limit"})
    if args.keep_logistic:  # the model's logistic and threshold as they are; only the steadiness limit is new
        cal = before
    if not args.all_evidence:
        from dataclasses import replace

        cal = replace(cal, max_steadiness=limit)
    def accepted(rows: list[tuple[Any, tuple[float, ...]]], by: Any = None) -> float | None:
        return accepted_rate(by or cal, rows)

    print("generated kinds accepted (now -> fitted):", file=sys.stderr)
    for kind in OOD_KINDS:
        rows = [r for q, r in zip(q_gen, r_gen, strict=True) if q.condition == f"generated {kind}"]
        print(f"  {kind:14s} {accepted(rows, before):.3f} -> {accepted(rows):.3f}", file=sys.stderr)
    print(f"  real out-of-catalog {accepted(r_out, before):.3f} -> {accepted(r_out):.3f}; generated songs "
          f"{accepted(rs_out, before) if rs_out else 'n/a'} -> {accepted(rs_out) if rs_out else 'n/a'}", file=sys.stderr)
    hits_before = accepted_rate(before, r_in, queries=q_in, track_ids=inside)
    print(f"  in-catalog accepted hits {hits_before:.3f} -> (below)", file=sys.stderr)

    d = cal.to_dict()
    d["false_match_rate"] = accepted(r_out)
    d["generated_false_match_rate"] = accepted(r_gen)
    d["generated_song_false_match_rate"] = accepted(rs_out)
    d["accepted_hit_rate"] = accepted_rate(cal, r_in, queries=q_in, track_ids=inside)
    d["generated_song_accepted_hit_rate"] = accepted_rate(cal, rs_in, queries=qs_in, track_ids=own)
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
