"""Train (optionally) and evaluate the shipped tag heads; writes docs/experiments/tagging.{md,json}.

    # teacher scores first (its own environment; see the README):
    soundalike teacher-tags data/debian-music/audio --out data/teacher/debian-music
    soundalike teacher-tags data/debian-eval/audio --out data/teacher/debian-eval
    python benchmarks/tag_eval.py --train          # retrain tags-mtt and instruments-gm, then evaluate
    python benchmarks/tag_eval.py                  # evaluate the shipped heads

Reported, each beside an MFCC + logistic-regression baseline trained on the same data in the same run:
- student vs teacher ROC-AUC / PR-AUC per tag on held-out audio (packages never trained on), the teacher's
  top 3 tags of each chunk (and of each track) counting as labels;
- instrument-family accuracy on clips rendered with Debian's FluidR3_GM, a soundfont never trained on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from soundalike.data.instruments import FLUID_SOUNDFONT  # noqa: E402
from soundalike.models.factory import load_encoder  # noqa: E402
from soundalike.models.heads import HEADS_DIR, load_head  # noqa: E402
from soundalike.tagging.evaluate import evaluate_instruments, evaluate_teacher  # noqa: E402
from soundalike.tagging.teacher import check_teacher, load_teacher  # noqa: E402
from soundalike.tagging.train import TagTrainConfig, fit_head  # noqa: E402

TEACHER_CFG = TagTrainConfig(head="tag_conv", steps=6400, batch=64)
TEACHER_VIEWS = 1  # one more copy of each training track with varied timbre (EQ, reverb, noise)
INSTRUMENT_CFG = TagTrainConfig(head="tag_conv", steps=3000, batch=64)


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def report_md(res: dict) -> str:
    t, i = res.get("teacher"), res.get("instruments")
    lines = ["# Tagging: student vs teacher, instrument families, MFCC baseline", "",
             f"Written by `benchmarks/tag_eval.py` on {res['date']} (encoder `{res['encoder']}`, fingerprint "
             f"`{res['encoder_fingerprint']}`). Targets from issue 6: student-vs-teacher mean ROC-AUC >= 0.90 on "
             "held-out audio; instrument-family accuracy on the unseen soundfont >= 0.80 and above the baseline.",
             ""]
    if t:
        s, b = t["student"], t.get("baseline")
        lines += ["## Student (tags-mtt) vs the musicnn teacher", "",
                  f"Held-out audio: {t['tracks']} tracks ({t['chunks']} chunks of 3 s) of the independent Debian "
                  f"packages, never trained on. Labels: the teacher's top {t['k']} tags of each chunk (or of each "
                  "track's mean scores). Means over the tags that have both positives and negatives.", "",
                  "| | chunk ROC-AUC | chunk PR-AUC | track ROC-AUC | track PR-AUC | tags scored |",
                  "|---|---|---|---|---|---|"]
        for name, r in (("student (tag_conv on the shared encoder)", s), ("MFCC + logistic regression", b)):
            if r:
                lines.append(f"| {name} | {_fmt(r['chunk']['mean_roc_auc'])} | {_fmt(r['chunk']['mean_pr_auc'])} | "
                             f"{_fmt(r['track']['mean_roc_auc'])} | {_fmt(r['track']['mean_pr_auc'])} | "
                             f"{r['chunk']['tags_scored']} |")
        lines += ["", "Per tag (chunk level), most frequent first:", "",
                  "| tag | positives | student ROC | student PR | baseline ROC | baseline PR |", "|---|---|---|---|---|---|"]
        per = s["chunk"]["tags"]
        bper = b["chunk"]["tags"] if b else {}
        for tag in sorted(per, key=lambda k: -per[k]["positives"]):
            r = per[tag]
            if np.isnan(r["roc_auc"]):
                continue
            br = bper.get(tag, {"roc_auc": float("nan"), "pr_auc": float("nan")})
            lines.append(f"| {tag} | {r['positives']} | {_fmt(r['roc_auc'])} | {_fmt(r['pr_auc'])} | "
                         f"{_fmt(br['roc_auc'])} | {_fmt(br['pr_auc'])} |")
        lines.append("")
    if i:
        lines += ["## Instrument families on an unseen soundfont", "",
                  f"Trained on clips rendered with `{Path(i['train_soundfont']).name}`; tested on {i['clips']} clips "
                  f"rendered with `{Path(i['test_soundfont']).name}` (other seeds). Chance (largest family): "
                  f"{_fmt(i['chance'])}.", "",
                  "| | accuracy |", "|---|---|",
                  f"| student (instruments-gm) | {_fmt(i['student']['accuracy'])} |",
                  f"| MFCC + logistic regression | {_fmt(i['baseline']['accuracy'])} |", "",
                  "| family | student | baseline |", "|---|---|---|"]
        for fam, acc in i["student"]["per_family"].items():
            lines.append(f"| {fam} | {_fmt(acc)} | {_fmt(i['baseline']['per_family'][fam])} |")
        lines.append("")
    for key in ("train_teacher", "train_instruments"):
        if res.get(key):
            r = res[key]
            lines += [f"Training ({key[6:]}): {r['rows']} rows from {r['groups']} sources, {r['train']['steps']} "
                      f"steps of {r['train']['batch']}, {r['wall_seconds']:.0f} s on this machine.", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", action="store_true", help="retrain the shipped heads first")
    ap.add_argument("--teacher-train", default="data/teacher/debian-music")
    ap.add_argument("--teacher-eval", default="data/teacher/debian-eval")
    ap.add_argument("--test-soundfont", default=str(FLUID_SOUNDFONT))
    ap.add_argument("--heads-dir", default=str(HEADS_DIR), help="where the trained heads are saved / read")
    ap.add_argument("--skip", choices=["teacher", "instruments"], action="append", default=[])
    ap.add_argument("--out", default="docs/experiments/tagging")
    args = ap.parse_args()
    enc = load_encoder()
    heads = Path(args.heads_dir)
    res: dict = {"date": time.strftime("%Y-%m-%d"), "encoder": enc.name, "encoder_fingerprint": enc.fingerprint}
    out = Path(args.out)
    if out.with_suffix(".json").exists():  # keep the other half when only one part is rerun
        res = {**json.loads(out.with_suffix(".json").read_text()), **res}
    if "teacher" not in args.skip:
        train, held_out = load_teacher(args.teacher_train), load_teacher(args.teacher_eval)
        check_teacher(train)
        check_teacher(held_out)
        if args.train:
            _, res["train_teacher"] = fit_head("teacher", str(heads / "tags-mtt"), model=enc, cfg=TEACHER_CFG,
                                               name="tags-mtt", progress=True, teacher_dir=args.teacher_train,
                                               teacher_views=TEACHER_VIEWS)
        head = load_head(heads / "tags-mtt")
        res["train_teacher"] = head.metadata.get("trained_on", res.get("train_teacher"))
        res["teacher"] = evaluate_teacher(enc, head, held_out, train=train, progress=True)
        print("teacher: student chunk ROC-AUC", _fmt(res["teacher"]["student"]["chunk"]["mean_roc_auc"]),
              "baseline", _fmt(res["teacher"]["baseline"]["chunk"]["mean_roc_auc"]), flush=True)
    if "instruments" not in args.skip:
        if args.train:
            _, res["train_instruments"] = fit_head("instruments", str(heads / "instruments-gm"), model=enc,
                                                   cfg=INSTRUMENT_CFG, name="instruments-gm", progress=True)
        head = load_head(heads / "instruments-gm")
        res["train_instruments"] = head.metadata.get("trained_on", res.get("train_instruments"))
        res["instruments"] = evaluate_instruments(enc, head, test_soundfont=args.test_soundfont)
        print("instruments: student", res["instruments"]["student"]["accuracy"], "baseline",
              res["instruments"]["baseline"]["accuracy"], flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1, default=float) + "\n")
    out.with_suffix(".md").write_text(report_md(res) + "\n")
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
