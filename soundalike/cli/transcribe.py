"""``soundalike transcribe``: notes and a MIDI file from audio; ``soundalike train-notes``."""

from __future__ import annotations

import argparse
import os
from typing import Any

from soundalike.cli.common import (
    add_common,
    add_excerpt,
    audio_progress,
    emit,
    threads,
    train_logged,
)


def cmd_transcribe(args: argparse.Namespace) -> int:
    from soundalike.errors import ParameterError
    from soundalike.tasks.transcribe import transcribe
    from soundalike.transcribe.notes import note_name, write_midi

    threads(args)
    if args.output and os.path.exists(args.output) and os.path.samefile(args.output, args.file):
        raise ParameterError(f"-o {os.path.basename(args.output)} is the input file; writing the MIDI file there "
                             "would replace the audio: choose another name, such as OUT.mid")
    with audio_progress(args, "transcribing") as step:
        result = transcribe(args.file, model=args.model, offset=args.offset, duration=args.duration,
                            max_duration=args.max_duration, progress=step)
    if args.output:
        write_midi(result.notes, args.output, program=args.program)
    out = result.to_dict()
    if args.output:
        out["midi"] = str(args.output)

    def text() -> None:
        print(f"{result.duration:.1f} s, {len(result.notes)} notes" + (f" -> {args.output}" if args.output else ""))
        for n in result.notes[: args.limit]:
            print(f"{n.onset:8.3f} {n.offset:8.3f}  {note_name(n.pitch):>4} ({n.pitch:3d})  velocity {n.velocity:3d}")
        if len(result.notes) > args.limit:
            print(f"... (+{len(result.notes) - args.limit}; --json or -o OUT.mid gives all)")

    emit(args, out, text)
    return 0


def cmd_train_notes(args: argparse.Namespace) -> int:
    from soundalike.transcribe.train import NotesTrainConfig, train_notes

    defaults = NotesTrainConfig()
    cfg = NotesTrainConfig(out=args.out, steps=args.steps or defaults.steps, batch=args.batch or defaults.batch,
                           seed=args.seed, workers=args.workers, threads=args.threads or defaults.threads,
                           name=args.name, corpus=args.corpus,
                           net_config={"channels": args.channels} if args.channels else {})
    return train_logged(args, train_notes, cfg)


def register(sub: Any) -> None:
    sp = sub.add_parser("transcribe", help="which notes? polyphonic transcription to notes and a MIDI file",
                        description="Transcribe the pitched notes of FILE (onset and offset in seconds, MIDI pitch "
                                    "21-108, velocity 1-127) with the shipped transcription model (a harmonic-stack "
                                    "CNN trained on rendered music whose notes are known); drums are ignored. "
                                    "-o writes a standard MIDI file. Long files stream in bounded memory. Silence "
                                    "gives no notes.")
    sp.add_argument("file", metavar="FILE", help="audio file")
    sp.add_argument("--output", "-o", metavar="OUT.mid", default=None, help="write the notes as a MIDI file")
    sp.add_argument("--program", type=int, default=0, choices=range(128), metavar="0-127",
                    help="General MIDI program the MIDI file's track plays (default 0, piano)")
    sp.add_argument("--limit", type=int, default=20, help="notes to print (default 20; --json gives all)")
    sp.add_argument("--model", "-m", metavar="PATH", default=None,
                    help="a transcription model (NAME.safetensors + NAME.json; default: the shipped notes_hcnn-gm)")
    add_excerpt(sp, "FILE")
    add_common(sp, threads=True)
    sp.set_defaults(func=cmd_transcribe)

    sp = sub.add_parser("train-notes", help="train the transcription model on rendered music",
                        description="Train the transcription network on fresh pieces whose notes are known "
                                    "(generated polyphony, pop pieces over drums and, when `soundalike datasets "
                                    "notes-corpus` has built its cache, excerpts of music21 corpus works) rendered "
                                    "with TimGM6mb and, when installed, Debian's opl3-soundfont, degraded like "
                                    "recordings. Resumes OUT/last.ckpt; writes OUT/NAME.safetensors + .json and "
                                    "OUT/log.jsonl. fluid-soundfont-gm is never used: it is the benchmark's "
                                    "unseen font.")
    sp.add_argument("--out", "-o", required=True, metavar="DIR", help="checkpoints, log and the exported model")
    sp.add_argument("--steps", type=int, default=None, help="optimiser steps (default 2000)")
    sp.add_argument("--batch", type=int, default=None, help="5 s examples per step (default 8)")
    sp.add_argument("--channels", type=int, default=None, help="the network's width (default 16)")
    sp.add_argument("--corpus", default="data/notes-corpus/notes.jsonl.gz", metavar="FILE",
                    help="the music21 notes cache (default data/notes-corpus/notes.jsonl.gz; missing: not used)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--workers", type=int, default=1, help="processes rendering examples (default 1)")
    sp.add_argument("--name", default="notes_hcnn-gm", help="the exported model's name")
    add_common(sp, threads=True)
    sp.set_defaults(func=cmd_train_notes)
