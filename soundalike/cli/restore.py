"""``soundalike restore``: clean up noisy or clipped recordings; ``soundalike train-restore``."""

from __future__ import annotations

import argparse
from typing import Any

from soundalike.cli.common import (
    add_common,
    add_max_duration,
    audio_progress,
    emit,
    threads,
    train_logged,
)


def cmd_restore(args: argparse.Namespace) -> int:
    from soundalike.tasks.restore import check_output, restore_file

    threads(args)
    check_output(args.file, args.output)  # before the model loads: a wrong -o is a quick error
    denoise, declip = args.denoise, args.declip
    if not denoise and not declip:  # neither named: both
        denoise = declip = True
    with audio_progress(args, "restoring") as step:
        report = restore_file(args.file, args.output, denoise=denoise, declip=declip, strength=args.strength,
                              model=args.model, max_duration=args.max_duration, progress=step)
    out = report.to_dict()

    def text() -> None:
        what = " and ".join(k for k, on in (("denoised", denoise), ("declipped", declip)) if on)
        clip = (f"; {100 * report.clipped_fraction:.2f} % of samples were clipped and refilled"
                if declip and report.clipped_fraction else "")
        print(f"{what} {report.duration:.1f} s ({report.channels} channel{'s' * (report.channels != 1)}, "
              f"{report.sample_rate} Hz) -> {args.output}{clip}")

    emit(args, out, text)
    return 0


def cmd_train_restore(args: argparse.Namespace) -> int:
    from soundalike.restore.train import RestoreTrainConfig, train_restore

    defaults = RestoreTrainConfig()
    cfg = RestoreTrainConfig(out=args.out, music=args.music, cache=args.cache, steps=args.steps or defaults.steps,
                             batch=args.batch or defaults.batch, seed=args.seed, workers=args.workers,
                             threads=args.threads or defaults.threads, name=args.name)
    return train_logged(args, train_restore, cfg)


def _strength(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("the strength is between 0 (the input) and 1 (the full restoration)")
    return value


def register(sub: Any) -> None:
    sp = sub.add_parser("restore", help="clean it up: take noise out of a recording and refill clipped peaks",
                        description="Restore FILE into OUT with the shipped restoration model (a U-Net over the STFT "
                                    "that predicts a complex mask, trained on real music with hiss, hum, crackle, "
                                    "room tone, crowd and other noises): --denoise takes the noise out; --declip "
                                    "refills samples that clipping cut flat (only those samples change). With "
                                    "neither, both. OUT keeps FILE's sample rate and channels; its suffix picks the "
                                    "format (the same suffix as FILE's keeps FILE's sample format or bit rate). "
                                    "Long files stream in bounded memory. FILE itself is never written.")
    sp.add_argument("file", metavar="FILE", help="audio file to restore")
    sp.add_argument("--output", "-o", required=True, metavar="OUT",
                    help="where to write the restored audio (.wav .flac .ogg .mp3 .m4a .aac .opus)")
    sp.add_argument("--denoise", action="store_true", help="take noise out (hiss, hum, crackle, room tone, crowd)")
    sp.add_argument("--declip", action="store_true", help="refill clipped peaks (every other sample is kept)")
    sp.add_argument("--strength", type=_strength, default=1.0, metavar="S",
                    help="0 to 1: how far from the input towards the full restoration (default 1)")
    sp.add_argument("--model", "-m", metavar="PATH", default=None,
                    help="a restoration model (NAME.safetensors + NAME.json; default: the shipped restore_unet-music)")
    add_max_duration(sp)
    add_common(sp, threads=True)
    sp.set_defaults(func=cmd_restore)

    sp = sub.add_parser("train-restore", help="train the restoration model on real music with generated noises",
                        description="Train the restoration network (a U-Net predicting a complex STFT mask) on "
                                    "excerpts of the music that `soundalike datasets debian-music DIR` fetched, "
                                    "with generated noises (white, pink, brown, mains hum, vinyl crackle, tape hiss, "
                                    "room tone, crowd) at -5 to 20 dB SNR and hard or soft clipping. The music is "
                                    "decoded once into --cache. Resumes OUT/last.ckpt; writes "
                                    "OUT/NAME.safetensors + .json and OUT/log.jsonl.")
    sp.add_argument("--out", "-o", required=True, metavar="DIR", help="checkpoints, log and the exported model")
    sp.add_argument("--music", default="data/debian-train", metavar="DIR",
                    help="the training music: a `soundalike datasets debian-music` folder (default data/debian-train)")
    sp.add_argument("--cache", default="data/restore-cache", metavar="DIR",
                    help="where the decoded excerpts are kept (default data/restore-cache; built on first use)")
    sp.add_argument("--steps", type=int, default=None, help="optimiser steps (default 4000)")
    sp.add_argument("--batch", type=int, default=None, help="2 s examples per step (default 6)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--workers", type=int, default=1, help="processes making examples (default 1)")
    sp.add_argument("--name", default="restore_unet-music", help="the exported model's name")
    add_common(sp, threads=True)
    sp.set_defaults(func=cmd_train_restore)
