"""``soundalike events``: onsets, beats, tempo and drum hits; ``soundalike train-events``."""

from __future__ import annotations

import argparse
from typing import Any

from soundalike.cli.common import (
    add_common,
    add_excerpt,
    audio_progress,
    emit,
    threads,
    train_logged,
)


def cmd_events(args: argparse.Namespace) -> int:
    from soundalike.events.decode import parse_what
    from soundalike.tasks.events import events

    threads(args)
    what = parse_what(args.what)
    with audio_progress(args, "events") as step:
        ev = events(args.file, what=what, model=args.model, offset=args.offset, duration=args.duration,
                    max_duration=args.max_duration, progress=step)

    def text() -> None:
        print(f"{ev.duration:.1f} s")
        if "beats" in what:
            if ev.tempo is None:
                print("tempo: no steady beat found")
            else:
                drift = f", drifting {min(b for _, b in ev.tempo_curve):.0f}-{max(b for _, b in ev.tempo_curve):.0f}" \
                    if ev.tempo_curve else ""
                print(f"tempo: {ev.tempo:.1f} BPM (confidence {ev.tempo_confidence:.2f}{drift}), "
                      f"{len(ev.beats)} beats, {ev.beats_per_bar or '?'} per bar")
            _times("beats", ev.beats, args.limit)
            _times("downbeats", ev.downbeats, args.limit)
        if "onsets" in what:
            _times("onsets", ev.onsets, args.limit)
        for cls, times in ev.drums.items():
            _times(cls, times, args.limit)

    emit(args, ev.to_dict(), text)
    return 0


def _times(name: str, times: list[float], limit: int) -> None:
    shown = " ".join(f"{t:.2f}" for t in times[:limit])
    more = f" ... (+{len(times) - limit})" if len(times) > limit else ""
    print(f"{name} ({len(times)}): {shown}{more}")


def cmd_train_events(args: argparse.Namespace) -> int:
    from soundalike.events.train import EventsTrainConfig, train_events

    defaults = EventsTrainConfig()
    cfg = EventsTrainConfig(out=args.out, steps=args.steps or defaults.steps, batch=args.batch or defaults.batch,
                            seed=args.seed, workers=args.workers, threads=args.threads or defaults.threads,
                            name=args.name)
    return train_logged(args, train_events, cfg)


def register(sub: Any) -> None:
    sp = sub.add_parser("events", help="what happens when? onsets, beats and downbeats, tempo, drum hits",
                        description="Detect note onsets, beats and downbeats with the tempo (BPM, a confidence, and "
                                    "a tempo curve when it drifts), and kick / snare / hi-hat hits with their "
                                    "strengths, from one pass of the shipped events model (a mel CNN + TCN trained "
                                    "on rendered music whose events are known). Times are seconds from the start "
                                    "of FILE. Silence gives no events.")
    sp.add_argument("file", metavar="FILE", help="audio file")
    sp.add_argument("--what", default="onsets,beats,drums", metavar="KINDS",
                    help="comma-separated: onsets, beats (with downbeats and tempo), drums (default: all three)")
    sp.add_argument("--limit", type=int, default=16, help="times to print per kind (default 16; --json gives all)")
    sp.add_argument("--model", "-m", metavar="PATH", default=None,
                    help="an events model (NAME.safetensors + NAME.json; default: the shipped events_tcn-gm)")
    add_excerpt(sp, "FILE")
    add_common(sp, threads=True)
    sp.set_defaults(func=cmd_events)

    sp = sub.add_parser("train-events", help="train the events model on generated, rendered music",
                        description="Train the onset / beat / downbeat / drum network on freshly generated pieces "
                                    "(known events) rendered with TimGM6mb and, when installed, Debian's "
                                    "opl3-soundfont, half of their drum parts played with the sampled kits of "
                                    "Debian's hydrogen-drumkits, degraded like recordings. Resumes OUT/last.ckpt; "
                                    "writes OUT/NAME.safetensors + .json and OUT/log.jsonl. fluid-soundfont-gm and "
                                    "three Hydrogen kits (The Black Pearl, ForzeeStereo, HardElectro1) are never used: "
                                    "they are the benchmark's unseen font and kits.")
    sp.add_argument("--out", "-o", required=True, metavar="DIR", help="checkpoints, log and the exported model")
    sp.add_argument("--steps", type=int, default=None, help="optimiser steps (default 4300)")
    sp.add_argument("--batch", type=int, default=None, help="8 s examples per step (default 12)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--workers", type=int, default=1, help="processes rendering examples (default 1)")
    sp.add_argument("--name", default="events_tcn-gm", help="the exported model's name")
    add_common(sp, threads=True)
    sp.set_defaults(func=cmd_train_events)
