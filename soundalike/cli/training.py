"""The CLI for data and encoders: demo-corpus, datasets, train, evaluate: each command's parser next to its handler."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from soundalike.cli.common import (
    add_common,
    catalog_arg,
    emit,
    encoder_choices,
    progress,
    threads,
)
from soundalike.errors import SoundalikeError


def cmd_demo_corpus(args: argparse.Namespace) -> int:
    from soundalike.data.render import DemoCorpusConfig, render_demo_corpus

    cfg = DemoCorpusConfig(
        collections=tuple(args.collections) if args.collections else DemoCorpusConfig.collections,
        works_per_collection=args.works_per_collection,
        instrumentations=args.instrumentations,
        ensembles=tuple(args.ensembles) if args.ensembles else DemoCorpusConfig.ensembles,
        keep_original=not args.no_original,
        max_seconds=args.max_seconds,
        sample_rate=args.sample_rate,
        audio_format=args.format,
        seed=args.seed,
        soundfont=args.soundfont[0] if args.soundfont else None,
        extra_soundfonts=tuple(args.soundfont[1:]) if args.soundfont else (),
    )
    summary = render_demo_corpus(args.out, cfg, jobs=args.jobs, progress=progress(args))
    d = summary.to_dict()

    def text() -> None:
        print(f"rendered {d['tracks']} tracks ({d['works']} works, {d['seconds'] / 60:.1f} min of audio) "
              f"into {d['out']} in {d['wall_seconds']:.0f} s ({d['x_realtime']}x realtime)")
        if d["skipped_total"]:
            print(f"skipped {d['skipped_total']}: " + ", ".join(f"{k} {v}" for k, v in sorted(d["skipped"].items())))
        print(f"labels: {d['out']}/manifest.jsonl")

    emit(args, d, text)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from soundalike.train import launch
    from soundalike.train.args import load_config
    from soundalike.train.solver import train

    cfg = load_config(args.config, data=args.data or None, manifest=args.manifest, out=args.out,
                      encoder=args.encoder, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      seed=args.seed, threads=args.threads, model_name=args.name, objective=args.objective,
                      init_from=args.init_from, device=args.device)
    argv = [a for a in getattr(args, "argv", []) if a != "--background"]
    if args.background:
        bg = [a for a in argv if a not in ("--json", "--quiet", "-q")] + ["--quiet"]  # the log: text lines
        pid, logfile = launch.start_background(bg, cfg.out)
        info = {"pid": pid, "log": str(logfile), "out": cfg.out, "tcmalloc": launch.find_tcmalloc()}

        def started() -> None:
            print(f"training in the background (pid {pid}); follow it with: tail -f {logfile}")
            print(f"stop it with: kill {pid}; run the same command again to resume from {cfg.out}/last.ckpt")

        emit(args, info, started)
        return 0
    if argv and argv == sys.argv[1:]:  # run from the command line (not called in-process): may relaunch
        note = launch.relaunch_with_tcmalloc(argv)  # returns only when it did not relaunch
        if note and not args.json:
            print(note, file=sys.stderr)
    show = progress(args)
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if not args.json else None
    path, report = train(cfg, progress=show, log=log)

    def text() -> None:
        last = report["history"][-1] if report["history"] else {}
        print(f"trained {report['trained_steps']} steps (now at {report['steps']}) in {report['seconds']:.0f} s; "
              f"loss {last.get('loss', float('nan')):.3f}, valid accuracy {last.get('valid_acc', float('nan')):.3f}")
        print(f"model: {path} (+ .json); use it with --model {path}")

    emit(args, {k: v for k, v in report.items()}, text)
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from soundalike.data.debian import EVAL_PACKAGES, TRAIN_PACKAGES, fetch_debian_music

    if args.dataset == "fma":
        return _datasets_fma(args)
    if args.dataset == "notes-corpus":
        return _datasets_notes(args)
    if args.dataset != "debian-music":  # pragma: no cover - argparse choices guard this
        raise SoundalikeError(f"unknown dataset {args.dataset}")
    packages = args.packages or (list(EVAL_PACKAGES) if args.eval_packages else list(TRAIN_PACKAGES))
    log = (lambda msg: print(msg, file=sys.stderr)) if not (args.json or args.quiet) else None
    report = fetch_debian_music(args.out, packages, min_seconds=args.min_seconds, progress=progress(args), log=log)

    def text() -> None:
        print(f"{report.tracks} tracks, {report.hours:.2f} h from {len(report.packages)} packages "
              f"({report.skipped_short} shorter than {args.min_seconds:g} s and {report.skipped_duplicate} "
              f"duplicates left out)")
        print(f"manifest: {report.manifest}")
        print(f"index it: soundalike index {args.out}/audio --manifest {report.manifest} --catalog CATALOG")

    emit(args, report.to_dict(), text)
    return 0


def _datasets_notes(args: argparse.Namespace) -> int:
    from pathlib import Path

    from soundalike.transcribe.pieces import build_corpus_cache

    bar = None
    if progress(args):
        from tqdm import tqdm

        bar = tqdm(unit="work", desc="music21 notes", dynamic_ncols=True)

    def step(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        report = build_corpus_cache(Path(args.out) / "notes.jsonl.gz", works_per_collection=args.works,
                                    budget_seconds=args.budget_seconds, progress=step)
    finally:
        if bar is not None:
            bar.close()
    emit(args, report, lambda: print(f"{report['works']} works' notes ({report['skipped']} skipped) in "
                                     f"{report['seconds']:.0f} s -> {report['out']}"))
    return 0


def _datasets_fma(args: argparse.Namespace) -> int:
    from soundalike.data.fma import read_fma, write_fma_manifest

    if not args.fma_root or not args.metadata:
        raise SoundalikeError("fma needs --fma-root (the fma_small/medium/large folder) and --metadata "
                              "(the fma_metadata folder or its tracks.csv)")
    fma = read_fma(args.metadata, args.fma_root, subset=args.subset)
    manifest = write_fma_manifest(fma, os.path.join(args.out, "manifest.jsonl"))
    d = {"tracks": len(fma.tracks), "genres": fma.genres, "no_genre": fma.no_genre,
         "missing_audio": fma.missing_audio, "manifest": str(manifest)}

    def text() -> None:
        print(f"{len(fma.tracks)} FMA tracks in {len(fma.genres)} top genres ({fma.no_genre} without a top genre "
              f"and {fma.missing_audio} without audio left out)")
        print(f"manifest: {manifest} (label = top genre; the audio stays under {args.fma_root})")

    emit(args, d, text)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from soundalike.evaluation.run import EvalConfig, evaluate

    threads(args)
    cfg = EvalConfig(label_key=args.label_key, excerpt_seconds=args.excerpt_seconds,
                     excerpts_per_track=args.excerpts, noise_snr_db=args.snr, mp3_kbps=args.mp3_kbps,
                     catalog_hop_frames=args.hop_frames, max_tracks=args.max_tracks, plots=not args.no_plots,
                     seed=args.seed)
    report = evaluate(catalog_arg(args), args.out, config=cfg, compare=args.compare, progress=progress(args))

    def text() -> None:
        from soundalike.evaluation.run import markdown_report

        print(markdown_report(report))
        print(f"written to {args.out}/: " + ", ".join(os.path.basename(f) for f in report["files"]))

    emit(args, report, text)
    return 0


def register(sub: Any) -> None:
    """Add this group's commands to the ``soundalike`` sub-parsers."""
    from soundalike.data.render import COLLECTIONS, ENSEMBLES

    sp = sub.add_parser("demo-corpus", help="render the demo corpus (music21 scores, General MIDI soundfont)",
                        description="Render works from music21's corpus to audio with tinysoundfont and the "
                                    "TimGM6mb General MIDI soundfont, in several instrumentations, and write "
                                    "OUT/manifest.jsonl with labels. Deterministic for a seed.")
    sp.add_argument("out", metavar="OUT", help="output folder")
    sp.add_argument("--works-per-collection", type=int, default=6, metavar="N",
                    help="works drawn from each collection (default 6)")
    sp.add_argument("--instrumentations", type=int, default=2, metavar="K",
                    help="versions of each work; the first keeps the score's own programs (default 2)")
    sp.add_argument("--collections", nargs="+", choices=COLLECTIONS, metavar="NAME",
                    help=f"collections to draw from (default all: {', '.join(COLLECTIONS)})")
    sp.add_argument("--ensembles", nargs="+", choices=list(ENSEMBLES), metavar="NAME",
                    help=f"General MIDI ensembles for re-instrumentation (default all: {', '.join(ENSEMBLES)})")
    sp.add_argument("--no-original", action="store_true", help="re-instrument every version")
    sp.add_argument("--max-seconds", type=float, default=60.0, help="cut each render here (default 60)")
    sp.add_argument("--sample-rate", type=int, default=22050, help="output rate in Hz (default 22050)")
    sp.add_argument("--format", choices=["flac", "wav", "ogg", "mp3"], default="flac", help="audio format (default flac)")
    sp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sp.add_argument("--jobs", "-j", type=int, default=None, help="worker processes (default: all cores)")
    sp.add_argument("--soundfont", metavar="SF2", nargs="+",
                    help="one or more .sf2 files instead of pretty_midi's TimGM6mb.sf2; with several, each "
                         "version of a work is rendered with one drawn at random (the manifest's `soundfont`)")
    add_common(sp)
    sp.set_defaults(func=cmd_demo_corpus)

    sp = sub.add_parser("train", help="train an encoder (InfoNCE, song-level, or an autoencoder) on folders of audio",
                        description="Train a registered encoder. Objective infonce: two augmented chunks per "
                                    "track (pitch, tempo, EQ, reverb, noise, MP3, masking; see configs/debian.yaml), "
                                    "in-batch negatives, temperature 0.1. Objective song (configs/encoders.yaml): "
                                    "several tracks per package or work, chunk and song-level InfoNCE plus "
                                    "supervised-contrastive loss over groups on a learnt song pooling. Objective "
                                    "autoencoder: a decoder reconstructs the chunk from the embedding. Resumes from "
                                    "OUT/last.ckpt; writes OUT/model.safetensors + OUT/model.json. Preloads tcmalloc "
                                    "when Debian's libtcmalloc-minimal4 is installed (2-3x faster on CPU; "
                                    "SOUNDALIKE_TCMALLOC=0 skips it); uses a GPU when one is available.")
    sp.add_argument("--config", metavar="YAML", help="training config (see configs/); flags override it")
    sp.add_argument("--data", nargs="+", metavar="PATH", help="folders or files of audio")
    sp.add_argument("--manifest", metavar="JSONL", help="labels; validation then holds out whole works")
    sp.add_argument("--out", metavar="DIR", help="run folder (checkpoints, model)")
    sp.add_argument("--encoder", choices=encoder_choices(), help="registered encoder (default contrastive_cnn)")
    sp.add_argument("--name", help="name recorded in the exported model")
    sp.add_argument("--steps", type=int, help="optimiser steps")
    sp.add_argument("--batch-size", type=int, help="tracks per batch")
    sp.add_argument("--lr", type=float, help="peak learning rate")
    sp.add_argument("--seed", type=int, help="random seed")
    sp.add_argument("--objective", choices=["infonce", "song", "autoencoder"],
                    help="training objective (default infonce; song: chunk + song-level InfoNCE + SupCon over groups)")
    sp.add_argument("--init-from", metavar="NAME|PATH", help="start from this model's weights")
    sp.add_argument("--device", help="torch device: auto (a GPU when there is one, else the CPU), cpu, cuda, cuda:1")
    sp.add_argument("--background", action="store_true",
                    help="detach: log to OUT/train.log, pid in OUT/train.pid; the same command again resumes")
    sp.add_argument("--threads", type=int, help="CPU threads")
    sp.add_argument("--json", action="store_true", help="print the training report as JSON")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("datasets", help="fetch real music to train and evaluate on (Debian game soundtracks; FMA)",
                        description="debian-music: `apt-get download` game-music packages (nothing is installed), "
                                    "extract their music (also from .pk3/.zip archives and extension-less Ogg files), "
                                    "keep tracks of at least --min-seconds, drop duplicates by content hash, and "
                                    "write OUT/audio/PACKAGE/..., OUT/manifest.jsonl (label = package) and the "
                                    "packages' copyright files under OUT/licenses/. Runs add up: fetching other "
                                    "packages into the same OUT keeps the earlier ones. fma: read an FMA copy you "
                                    "already have (--fma-root, --metadata) and write OUT/manifest.jsonl "
                                    "(label = top genre). notes-corpus: extract the notes of music21 corpus works "
                                    "(chorales, renaissance polyphony, quartets, folk tunes) into "
                                    "OUT/notes.jsonl.gz, which `soundalike train-notes` plays on random instruments "
                                    "(a tenth of the works, by a hash of their id, is kept for the benchmark).")
    sp.add_argument("dataset", choices=["debian-music", "fma", "notes-corpus"], help="which data set")
    sp.add_argument("out", metavar="OUT", help="folder for audio, manifest and the downloaded .debs (fma: the "
                                               "manifest only)")
    sp.add_argument("--fma-root", metavar="DIR", help="fma: the folder of XYZ/XYZABC.mp3 files you downloaded")
    sp.add_argument("--metadata", metavar="DIR|CSV", help="fma: fma_metadata (or its tracks.csv)")
    sp.add_argument("--subset", choices=["small", "medium", "large"], help="fma: only this subset")
    sp.add_argument("--packages", nargs="+", metavar="PKG",
                    help="Debian packages (default: the 16 packages the shipped model was trained on)")
    sp.add_argument("--eval-packages", action="store_true",
                    help="fetch the held-out evaluation packages instead (never trained on)")
    sp.add_argument("--min-seconds", type=float, default=30.0, help="shortest track kept (default 30)")
    sp.add_argument("--works", type=int, default=120, help="notes-corpus: works per collection (default 120)")
    sp.add_argument("--budget-seconds", type=float, default=300.0,
                    help="notes-corpus: stop parsing after this long (default 300; collections take turns)")
    add_common(sp)
    sp.add_argument("--progress", action="store_true", help="progress bar even when not on a terminal")
    sp.set_defaults(func=cmd_datasets)

    sp = sub.add_parser("evaluate", help="measure a catalog's model beside baselines; JSON + Markdown + plots",
                        description="Over the labelled tracks of a catalog: excerpt -> track retrieval (clean "
                                    "and noisy+MP3 excerpts: recall@1, recall@10, MRR), same-label retrieval "
                                    "(precision@10, MAP, NDCG@10), a linear probe and PCA/t-SNE maps, for the "
                                    "catalog's model, the untrained encoder, MFCC statistics and any --compare "
                                    "models. Writes OUT/evaluation.json, OUT/evaluation.md and PNG plots.")
    sp.add_argument("--out", "-o", required=True, metavar="DIR", help="folder for the report and plots")
    sp.add_argument("--label-key", default="label", help="manifest label that groups tracks (default: label)")
    sp.add_argument("--compare", nargs="+", metavar="NAME|PATH", help="other models to evaluate in the same run")
    sp.add_argument("--excerpt-seconds", type=float, default=6.0, help="query excerpt length (default 6)")
    sp.add_argument("--excerpts", type=int, default=2, help="excerpts per track (default 2)")
    sp.add_argument("--snr", type=float, default=10.0, help="noise level of the noisy excerpts, dB SNR (default 10)")
    sp.add_argument("--mp3-kbps", type=float, default=64.0, help="MP3 bitrate of the noisy excerpts (default 64)")
    sp.add_argument("--hop-frames", type=int, default=32, help="hop between catalog chunks in frames (default 32)")
    sp.add_argument("--max-tracks", type=int, help="evaluate a seeded sample of this many tracks")
    sp.add_argument("--no-plots", action="store_true", help="numbers only (no matplotlib/scikit-learn needed)")
    sp.add_argument("--seed", type=int, default=0, help="seed for excerpts, noise and t-SNE")
    add_common(sp, catalog=True, threads=True)
    sp.add_argument("--progress", action="store_true", help="progress bar even when not on a terminal")
    sp.set_defaults(func=cmd_evaluate)
