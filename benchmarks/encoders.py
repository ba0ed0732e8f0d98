"""The encoder families on one leaderboard: same data, same objective, same step budget, same evaluation.

    python benchmarks/encoders.py [--config configs/encoders.yaml] [--steps 300]
        [--families contrastive_cnn resnet_cnn dilated_cnn crnn fcn5] [--out docs/experiments/encoders.md]

Each family trains with the recipe of ``--config`` (only ``encoder`` changes; runs under
``runs/encoders/FAMILY``, resumable: a killed run picks up at its last checkpoint and a finished family is not
trained again). The prepared training audio is loaded once and shared. Then every trained family, the
shipped default model, the untrained reference CNN and MFCC statistics are scored on the same decoded tracks
and the same excerpts, on the validation packages (held out of training) and on the independent packages
(``data/debian-eval``, never trained on, not used to choose anything):

- same-package P@10, MAP and NDCG@10 over song embeddings, and a linear probe;
- song-level recall@1 of noisy 6 s excerpts (10 dB white noise, then MP3 64 kbps): what ``similar`` does;
- parameters, training steps and hours, and x-realtime of front-end + model on decoded audio.

Writes ``--out`` (Markdown) and the same figures as JSON beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

FAMILIES = ("contrastive_cnn", "resnet_cnn", "dilated_cnn", "crnn", "fcn5")


def manifest_rows(path: str, labels: set[str] | None = None) -> list[tuple[str, str]]:
    root = Path(path).parent
    rows = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            if labels is None or r["label"] in labels:
                rows.append((str(root / r["path"]), str(r["label"])))
    return rows


def train_families(cfg_path: str, families: list[str], steps: int, runs: Path, say: Any) -> dict[str, Any]:
    from soundalike.models import load_encoder
    from soundalike.train import load_config
    from soundalike.train.data import load_sources
    from soundalike.train.solver import train

    results_path = runs / "training.json"
    done: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {}
    base = load_config(cfg_path, steps=steps)
    tracks = None
    for fam in families:
        model = runs / fam / "model.safetensors"
        if fam in done and done[fam]["steps"] == steps and model.exists():
            say(f"{fam}: trained already ({steps} steps)")
            continue
        cfg = load_config(cfg_path, steps=steps, encoder=fam, out=str(runs / fam), model_name=f"{fam}-song")
        if tracks is None:
            from soundalike.augment.chain import AugmentConfig
            from soundalike.features.mel import FrontendConfig

            say("preparing the training audio (cached under the config's cache_dir)")
            tracks = load_sources(base.data_sources(), FrontendConfig().replace(**base.frontend),
                                  AugmentConfig.from_dict(base.augment), seed=base.seed,
                                  max_seconds=base.max_track_seconds, cache_dir=base.cache_dir, jobs=base.jobs,
                                  progress=True)
        path, report = train(cfg, tracks=tracks, progress=True, log=say)
        enc = load_encoder(path)
        done[fam] = {"steps": report["steps"], "seconds": enc.metadata["training"]["seconds"],  # over resumes
                     "params": sum(p.numel() for p in enc.net.parameters()), "model": str(path),
                     "train_tracks": report["train_tracks"], "valid_tracks": report["valid_tracks"],
                     "train_hours": enc.metadata["training"]["train_hours"],
                     "final": report["history"][-1] if report["history"] else {}}
        results_path.write_text(json.dumps(done, indent=2) + "\n")
        say(f"{fam}: {report['steps']} steps in {done[fam]['seconds']:.0f} s")
    return done


def evaluate_sets(families: list[str], trained: dict[str, Any], sets: dict[str, list[tuple[str, str]]],
                  baseline_model: str, say: Any, extra: dict[str, str] | None = None) -> dict[str, Any]:
    from soundalike.evaluation.methods import MFCCMethod, ModelMethod, untrained_like
    from soundalike.evaluation.run import EvalConfig, evaluate_methods
    from soundalike.models import load_encoder

    methods: list[Any] = [ModelMethod(load_encoder(trained[f]["model"]), f) for f in families if f in trained]
    methods += [ModelMethod(load_encoder(path), name) for name, path in (extra or {}).items()]
    old = load_encoder(baseline_model)
    methods.append(ModelMethod(old, f"{baseline_model} (shipped before)", kind="baseline"))
    ref = old  # the untrained reference CNN: the same baseline whatever is scored
    methods.append(ModelMethod(untrained_like(ref), f"{ref.encoder}-untrained", kind="baseline"))
    methods.append(MFCCMethod(ref.frontend))
    cfg = EvalConfig(catalog_hop_frames=64, plots=False)
    out = {}
    for name, rows in sets.items():
        say(f"evaluating on the {name} packages: {len(rows)} tracks")
        rep = evaluate_methods([p for p, _ in rows], [lab for _, lab in rows], methods, cfg, progress=True, log=say)
        rep.pop("_songs")
        rep.pop("_labels")
        out[name] = rep
    return out


def markdown(trained: dict[str, Any], evals: dict[str, Any], steps: int, cfg_path: str,
             extra_info: dict[str, Any] | None = None) -> str:
    from soundalike.train import load_config

    extra_info = extra_info or {}
    cfg = load_config(cfg_path)
    what = (f"Every family trained {steps} steps" if trained else
            "Scored here: " + ", ".join(f"`{m}` ({t.get('steps', '?')} steps)" for m, t in extra_info.items())
            + ", trained")
    lines = [
        "# Encoder families on one leaderboard",
        "",
        f"Written by `python benchmarks/encoders.py` (recipe `{cfg_path}`). {what} of the `{cfg.objective}` objective (chunk InfoNCE x {cfg.chunk_loss:g} + song InfoNCE "
        f"x {cfg.song_loss:g} + SupCon over packages/works x {cfg.group_loss:g}; batches of {cfg.batch_size} "
        f"tracks, {cfg.tracks_per_group} per group, bags of {cfg.bag_chunks} chunks; learnt attention song pooling) "
        "on the same data, from random weights, on this 2-core CPU (tcmalloc preloaded). Scores: song embeddings for same-package "
        "retrieval and the probe; noisy 6 s excerpts (10 dB white noise, MP3 64 kbps) searched by song "
        "embedding alone (song R@1), as `similar` ranks a file query (song cosine x 0.25 + moment score x 0.75 "
        "against the chunks a catalog keeps: similar R@1), and against every track's chunks every 64 frames "
        "(chunk R@1). x-realtime: front-end + model on decoded audio, 2 threads.",
        "",
    ]
    any_train = next(iter(trained.values()), {})
    if any_train:
        lines += [f"Training data: {any_train['train_tracks']} tracks, {any_train['train_hours']:.1f} h "
                  f"(validation: {any_train['valid_tracks']} tracks of 4 held-out packages).", ""]
    for name, rep in evals.items():
        lines += [f"## {name.capitalize()} packages: {rep['tracks']} tracks, {rep['hours']:.2f} h, "
                  f"{len(rep['labels'])} packages", "",
                  "| method | P@10 | MAP | NDCG@10 | noisy 6 s song R@1 | noisy similar R@1 | noisy chunk R@1 | "
                  "probe acc | params | steps | train h | embed x-rt |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        rows = sorted(rep["methods"].items(), key=lambda kv: -kv[1]["label_retrieval"]["precision@10"])
        for m, r in rows:
            t = trained.get(m, {})
            if not t and m in extra_info:
                t = extra_info[m]
            lr = r["label_retrieval"]
            sim = f"{r['similar_noisy']['recall@1']:.3f}" if "similar_noisy" in r else ""
            scores = (f"| {m} | {lr['precision@10']:.3f} | {lr['map']:.3f} | {lr['ndcg@10']:.3f} | "
                      f"{r['song_noisy']['recall@1']:.3f} | {sim} | {r['excerpt_noisy']['recall@1']:.3f} | "
                      f"{r['linear_probe']['accuracy']:.3f} |")
            size = (f" {t.get('params', '')} | {t.get('steps', '')} | {(t['seconds'] / 3600):.2f} |" if t else
                    "  |  |  |")
            lines.append(f"{scores}{size} {r['embed_x_realtime']} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/encoders.yaml")
    ap.add_argument("--steps", type=int, default=None, help="step budget for every family (default: the config's)")
    ap.add_argument("--families", nargs="*", default=list(FAMILIES), choices=FAMILIES,
                    help="families to train and score (none: score only --extra models)")
    ap.add_argument("--extra", nargs="+", default=[], metavar="NAME=MODEL",
                    help="also score these trained models (e.g. a longer run of the winner)")
    ap.add_argument("--runs", default="runs/encoders")
    ap.add_argument("--eval-data", default="data/debian-eval/manifest.jsonl", help="independent packages' manifest")
    ap.add_argument("--baseline-model", default="contrastive_cnn-music", help="the model shipped before")
    ap.add_argument("--out", default="docs/experiments/encoders.md")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from soundalike.train.launch import relaunch_with_tcmalloc

    note = relaunch_with_tcmalloc(sys.argv[1:], cmd=[sys.executable, *sys.argv])  # training: 2-3x faster with it
    if note:
        print(note, file=sys.stderr)
    import torch

    torch.set_num_threads(args.threads)
    from soundalike.train import load_config

    def say(msg: str) -> None:
        print(time.strftime("%H:%M:%S"), msg, file=sys.stderr, flush=True)

    cfg = load_config(args.config)
    steps = args.steps or cfg.steps
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    trained = train_families(args.config, args.families, steps, runs, say) if args.families else {}
    debian = next(s for s in cfg.data_sources() if any("debian" in d for d in s.data))
    sets = {"validation": manifest_rows(debian.manifest, set(cfg.valid_groups)),
            "independent": manifest_rows(args.eval_data)}
    extra = dict(e.split("=", 1) for e in args.extra)
    evals = evaluate_sets(args.families, trained, sets, args.baseline_model, say, extra)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    extra_info = {}
    for name, path in extra.items():
        from soundalike.models import load_encoder

        enc = load_encoder(path)
        t = enc.metadata.get("training", {})
        extra_info[name] = {"params": sum(p.numel() for p in enc.net.parameters()), "steps": t.get("steps", ""),
                            "seconds": float(t.get("seconds", 0.0))}
    out.write_text(markdown(trained, evals, steps, args.config, extra_info))
    out.with_suffix(".json").write_text(json.dumps({"training": trained, "evaluation": evals}, indent=2,
                                                   default=str) + "\n")
    say(f"wrote {out} and {out.with_suffix('.json')}")
    print(out.read_text())


if __name__ == "__main__":
    os.environ.setdefault("TQDM_MININTERVAL", "10")
    main()
