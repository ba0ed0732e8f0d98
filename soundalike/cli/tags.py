"""The CLI for what is this: tag, and training tag heads (train-head, teacher-tags): each command's parser next to its handler."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from soundalike.cli.common import (
    add_common,
    add_excerpt,
    catalog_arg,
    clock,
    emit,
    progress,
    shown,
    threads,
)
from soundalike.errors import SoundalikeError


def _print_tags(result: Any, args: argparse.Namespace) -> None:
    print(f"{shown(str(result.path))}: {result.duration:.1f} s")
    for t, v in result.top(args.top):
        print(f"  {v:6.3f}  {t}")
    if args.timeline:
        top = [t for t, _ in result.top(min(args.top, 5))]
        cols = [result.index(t) for t in top]
        print(f"timeline (a {result.chunk_seconds:.2f} s chunk every {result.hop_seconds:.2f} s; "
              f"the track's top {len(top)} tags):")
        print("  start    end  " + "  ".join(f"{t[:12]:>12}" for t in top))
        for start, row in zip(result.times, result.timeline, strict=True):
            print(f"  {clock(start)} {clock(start + result.chunk_seconds)} "
                  + "  ".join(f"{row[j]:12.3f}" for j in cols))


def cmd_tag(args: argparse.Namespace) -> int:
    from soundalike.tasks.tag import tag_names, tag_query

    threads(args)
    catalog = None
    if args.catalog or (os.environ.get("SOUNDALIKE_CATALOG") and not os.path.isfile(args.query or "")):
        from soundalike.index.catalog import Catalog

        catalog = Catalog.open(catalog_arg(args), model=args.model)
    try:
        if args.list_tags:
            tags = tag_names(catalog=catalog, heads=args.heads, model=args.model)
            emit(args, {"tags": list(tags)}, lambda: print("\n".join(tags)))
            return 0
        if not args.query:
            raise SoundalikeError("give an audio FILE to tag (or a track id with --catalog; --list-tags lists tags)")
        result = tag_query(args.query, catalog=catalog, heads=args.heads, model=args.model, offset=args.offset,
                           duration=args.duration, max_duration=args.max_duration, restore=args.restore)
        emit(args, result.to_dict(timeline=args.timeline), lambda: _print_tags(result, args))
    finally:
        if catalog is not None:
            catalog.close()
    return 0


def cmd_train_head(args: argparse.Namespace) -> int:
    from soundalike.tagging.train import TagTrainConfig, fit_head

    threads(args)
    defaults = TagTrainConfig()
    cfg = TagTrainConfig(head=args.head, steps=args.steps or defaults.steps, lr=args.lr or defaults.lr,
                         seed=args.seed, threads=args.threads or defaults.threads)
    _, report = fit_head(args.dataset, args.out, model=args.model, cfg=cfg, name=args.name, progress=progress(args),
                         teacher_dir=args.teacher_dir, soundfont=args.soundfont, fma_root=args.fma_root,
                         metadata=args.metadata, subset=args.subset)

    def text() -> None:
        acc = f", training accuracy {report['train_accuracy']:.3f}" if "train_accuracy" in report else ""
        print(f"trained {args.head} on {report['rows']} chunks of {report['groups']} "
              f"{'tracks' if args.dataset != 'instruments' else 'clips'} ({report['tags']} tags{acc}) in "
              f"{report['wall_seconds']:.0f} s -> {report['out']}")
        print(f"use it: soundalike tag FILE --heads {report['out']}")

    emit(args, report, text)
    return 0


def cmd_teacher_tags(args: argparse.Namespace) -> int:
    from soundalike.data.files import walk_audio
    from soundalike.tagging.teacher import TeacherConfig, run_teacher

    files = list(walk_audio(args.paths))
    tags = run_teacher(files, args.out, config=TeacherConfig(python=args.teacher_python, model=args.teacher_model),
                       progress=progress(args))
    d = {"out": args.out, "files": len(tags.scores), "tags": list(tags.tags), "chunk_seconds": tags.chunk_seconds,
         "failed": tags.info.get("failed", [])}

    def text() -> None:
        print(f"{args.out}: teacher scores for {d['files']} files ({len(tags.tags)} tags every "
              f"{tags.chunk_seconds:g} s); {len(d['failed'])} failed")
        for f in d["failed"]:
            print(f"  failed: {f}", file=sys.stderr)

    emit(args, d, text)
    return 0


def register(sub: Any) -> None:
    """Add this group's commands to the ``soundalike`` sub-parsers."""
    from soundalike.models.registry import HEAD_KINDS

    sp = sub.add_parser("tag", help="what is this? tag scores (genre, mood, instruments, vocals), also over time",
                        description="Score QUERY with the tag heads (default: the shipped tags-mtt, 50 MagnaTagATune "
                                    "tags distilled from musicnn, and instruments-gm, 16 General MIDI instrument "
                                    "families as family/NAME). Whole-track scores are the mean over chunks; "
                                    "--timeline adds one row per 3 s chunk, about every 1.5 s. With --catalog, "
                                    "QUERY may be a track id or path whose stored tags are shown (their timeline "
                                    "has the catalog's 3 s hop).")
    sp.add_argument("query", metavar="QUERY", nargs="?", help="audio file, or a track id with --catalog")
    sp.add_argument("--timeline", action="store_true", help="also print scores per chunk")
    sp.add_argument("--top", type=int, default=10, help="tags to print (default 10; --json gives all)")
    sp.add_argument("--heads", metavar="HEADS", default=None,
                    help="comma-separated head names or paths (default: tags-mtt,instruments-gm)")
    sp.add_argument("--list-tags", action="store_true", help="list the tag names and exit")
    sp.add_argument("--restore", action="store_true",
                    help="clean the file up first (noise out, clipped peaks back: see `soundalike restore`); "
                         "benchmarks/restore.py measures when it helps")
    add_excerpt(sp, "QUERY")
    add_common(sp, catalog=True, model=True, threads=True)
    sp.set_defaults(func=cmd_tag)

    sp = sub.add_parser("train-head", help="train a tag head on the frozen encoder (teacher, instruments or FMA)",
                        description="Train a tag head that reads the encoder's block maps, so tags come from the "
                                    "embedding's own pass. --dataset teacher: soft targets from a `soundalike "
                                    "teacher-tags` folder; instruments: General MIDI notes and phrases rendered "
                                    "with --soundfont, labelled by family; fma: FMA's top genres (--fma-root, "
                                    "--metadata).")
    sp.add_argument("--dataset", required=True, choices=["teacher", "instruments", "fma"], help="training data")
    sp.add_argument("--out", "-o", required=True, metavar="PATH", help="where to save the head (PATH.safetensors "
                    "+ PATH.json)")
    sp.add_argument("--head", default="tag_conv", choices=HEAD_KINDS,
                    help="tag_conv (a conv branch off block 2; default) or tag_mlp (on the pooled features)")
    sp.add_argument("--name", help="name recorded in the head")
    sp.add_argument("--teacher-dir", metavar="DIR", help="teacher: a folder from `soundalike teacher-tags`")
    sp.add_argument("--soundfont", metavar="SF2", help="instruments: render with this .sf2 (default TimGM6mb)")
    sp.add_argument("--fma-root", metavar="DIR", help="fma: the folder of XYZ/XYZABC.mp3 files")
    sp.add_argument("--metadata", metavar="DIR|CSV", help="fma: fma_metadata (or its tracks.csv)")
    sp.add_argument("--subset", choices=["small", "medium", "large"], help="fma: only this subset")
    sp.add_argument("--steps", type=int, help="optimiser steps (default 2000)")
    sp.add_argument("--lr", type=float, help="peak learning rate (default 0.002)")
    sp.add_argument("--seed", type=int, default=0, help="random seed")
    sp.add_argument("--progress", action="store_true", help="progress bar even when not on a terminal")
    add_common(sp, model=True, threads=True)
    sp.set_defaults(func=cmd_train_head)

    sp = sub.add_parser("teacher-tags", help="score audio with the musicnn teacher (offline, its own environment)",
                        description="Run musicnn (MTT_musicnn: 50 MagnaTagATune tags, one row per 3 s) over audio "
                                    "files and folders, in the teacher environment (numpy 1.26 + tensorflow-cpu; "
                                    "see README), and save the scores with how they were made into OUT. Resumes a "
                                    "killed run; refuses a teacher that gives every track the same tags.")
    sp.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    sp.add_argument("--out", "-o", required=True, metavar="DIR", help="folder for the scores and teacher.json")
    sp.add_argument("--teacher-python", default=".venv-teacher/bin/python", metavar="PYTHON",
                    help="the teacher environment's interpreter (default .venv-teacher/bin/python)")
    sp.add_argument("--teacher-model", default="MTT_musicnn", help="musicnn model (default MTT_musicnn)")
    add_common(sp)
    sp.set_defaults(func=cmd_teacher_tags)
