"""Transcription: the shipped model beside Spotify's Basic Pitch, in one run; and ``similar --by notes``.

    python benchmarks/transcribe.py [--pieces 40] [--works 8] [--real 12] [--model PATH] [--json] [--save FILE]

Notes (mir_eval): pieces whose every note is known (:mod:`soundalike.transcribe.pieces`: generated
polyphony, pop pieces over drums, and excerpts of the music21 corpus works training never sees, seeds
training never uses) rendered with Debian's ``fluid-soundfont-gm``, a font no model here was trained on
(``apt-get install fluid-soundfont-gm``). Reported: note F1 with onsets only (50 ms) and with offsets too
(mir_eval's default: within 20 % of the note's length or 50 ms), clean and degraded (noise at 20 dB SNR,
reverb, MP3 64 kbit/s); Basic Pitch with its defaults on the same audio.

Speed: seconds of audio per second of wall time on 60 s of music, file to notes, for both (each with its
runtime's default threads on this machine: torch for ours, ONNX Runtime for Basic Pitch).

Arrangements (``--works``): a corpus of music21 works (``soundalike demo-corpus`` with this font, each
work in its score's instrumentation and in one other ensemble, 30 s) indexed with ``--notes``; each track
queries the catalog by id; reported is how often the other instrumentation of its work ranks first by
notes, and by the default embedding (``similar`` by sound) beside it.

Real recordings (``--real``: 30 s from the middle of tracks of the independent Debian packages in
``data/debian-eval``, see the README) have no labels: reported is how far we agree with Basic Pitch (note
F1 taking its notes as the reference), and how many notes each finds per second.

Peer: ``pip install --no-deps basic-pitch==0.4.0 'resampy<0.4.3' 'setuptools<80' onnxruntime`` (its
ICASSP 2022 model ships inside as ONNX; ``--no-deps`` keeps TensorFlow out), plus ``mir_eval``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLUID = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def basic_pitch() -> Any:
    """Basic Pitch's ``predict`` with its ONNX model loaded once (its import warns about backends it lacks)."""
    import logging

    logging.disable(logging.WARNING)
    from basic_pitch import ICASSP_2022_MODEL_PATH
    from basic_pitch.inference import Model, predict

    logging.disable(logging.NOTSET)
    model = Model(ICASSP_2022_MODEL_PATH)

    def run(path: str) -> list[tuple[float, float, int]]:
        with contextlib.redirect_stdout(io.StringIO()):
            _, _, events = predict(path, model)
        return [(float(s), float(e), int(p)) for s, e, p, *_ in events]

    return run


def note_scores(est: list[tuple[float, float, int]], ref: list[tuple[float, float, int]]) -> dict[str, float]:
    import mir_eval

    def arrays(notes: list[tuple[float, float, int]]) -> tuple[np.ndarray, np.ndarray]:
        if not notes:
            return np.zeros((0, 2)), np.zeros(0)
        iv = np.array([[s, max(e, s + 0.01)] for s, e, _ in notes])
        return iv, np.array([440.0 * 2 ** ((p - 69) / 12) for _, _, p in notes])

    ri, rp = arrays(ref)
    ei, ep = arrays(est)
    if not len(ri) or not len(ei):
        f = 1.0 if not len(ri) and not len(ei) else 0.0
        return {"f1_onset": f, "f1_offset": f, "precision": f, "recall": f}
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, onset_tolerance=0.05,
                                                                    offset_ratio=None)
    _, _, f_off, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, onset_tolerance=0.05)
    return {"f1_onset": f, "f1_offset": f_off, "precision": p, "recall": r}


def test_pieces(n: int, seconds: float = 20.0) -> list[Any]:
    """``n`` pieces with the benchmark's seeds: a third each generated, pop, and held-out corpus works."""
    from soundalike.transcribe.pieces import (
        corpus_piece,
        generate_texture,
        load_corpus_cache,
        pop_piece,
    )
    from soundalike.transcribe.train import TEST_SEED0

    corpus = load_corpus_cache(split="test")
    pieces = []
    for k in range(n):
        seed = TEST_SEED0 + k
        kind = k % 3
        if kind == 2 and corpus:
            pieces.append(corpus_piece(seed, corpus, seconds=seconds))
        elif kind == 1:
            pieces.append(pop_piece(seed, seconds=seconds))
        else:
            pieces.append(generate_texture(seed, seconds=seconds))
    return pieces


def degrade(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    from soundalike.augment.waveform import add_noise, codec, reverb

    y = reverb(y, sr, rng, rt60=0.6, wet=0.25)
    y = add_noise(y, 20.0, rng, color="pink")
    return codec(y, sr, bitrate_kbps=64).astype(np.float32)


def mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]} if rows else {}


def arrangements(model_path: str | None, works: int, tmp: Path) -> dict[str, Any]:
    """Top-1 'another instrumentation of the same work' rates by notes and by sound."""
    from soundalike.data.render import DemoCorpusConfig, render_demo_corpus
    from soundalike.index.catalog import Catalog
    from soundalike.tasks.similar import similar

    cfg = DemoCorpusConfig(works_per_collection=works, instrumentations=2, max_seconds=30.0, min_seconds=8.0,
                           soundfont=str(FLUID), seed=7)
    corpus = tmp / "corpus"
    render_demo_corpus(corpus, cfg)
    cat = Catalog.create(tmp / "catalog", notes_model=model_path or "default", fingerprint_model=None, tag_heads=None)
    with cat:
        cat.add([corpus / "audio"], manifest=corpus / "manifest.jsonl")
        tracks = cat.tracks()
        work = {t.id: t.labels.get("work") for t in tracks}
        counts: dict[str, int] = {}
        for w in work.values():
            counts[str(w)] = counts.get(str(w), 0) + 1
        queries = [t.id for t in tracks if counts[str(work[t.id])] >= 2]
        hits = {"notes": 0, "sound": 0}
        for q in queries:
            for by in hits:
                top = similar(cat, q, k=1, by=by)
                hits[by] += int(bool(top) and work[top[0].track.id] == work[q])
    n = max(1, len(queries))
    return {"tracks": len(tracks), "queries": len(queries), "works": len({work[q] for q in queries}),
            "top1_notes": round(hits["notes"] / n, 4), "top1_sound": round(hits["sound"] / n, 4)}


def real_agreement(model: Any, peer: Any, manifest: Path, n: int, tmp: Path) -> dict[str, Any]:
    """Note F1 of ours against Basic Pitch's notes on ``n`` real tracks (30 s from each one's middle)."""
    from soundalike.audio.io import load, save
    from soundalike.tasks.transcribe import transcribe

    tracks = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    tracks = [t for t in tracks if t["duration"] >= 40 and "/sounds/" not in t["path"]]
    tracks = tracks[:: max(1, len(tracks) // n)][:n]
    rows, rates = [], {"ours": [], "basic_pitch": []}
    for t in tracks:
        y, sr = load(manifest.parent / t["path"], sr=22050, offset=t["duration"] / 2 - 15, duration=30.0)
        path = save(tmp / "real.wav", y, sr)
        ours = [(x.onset, x.offset, x.pitch) for x in transcribe(path, model=model).notes]
        theirs = peer(str(path))
        rows.append(note_scores(ours, theirs))
        rates["ours"].append(len(ours) / 30.0)
        rates["basic_pitch"].append(len(theirs) / 30.0)
    return {"tracks": len(tracks), **mean(rows), **{f"notes_per_s_{k}": round(float(np.mean(v)), 2)
                                                     for k, v in rates.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pieces", type=int, default=40, help="labelled test pieces of 20 s (default 40)")
    ap.add_argument("--works", type=int, default=8, help="works per music21 collection for the arrangement test "
                                                         "(default 8; 0 skips it)")
    ap.add_argument("--model", default=None, help="a transcription model (default: the shipped one)")
    ap.add_argument("--soundfont", default=str(FLUID), help="the unseen font the test audio is rendered with")
    ap.add_argument("--no-peer", action="store_true", help="skip Basic Pitch")
    ap.add_argument("--real", type=int, default=12, help="real tracks for agreement with Basic Pitch (0: none)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    ap.add_argument("--save", metavar="FILE", default=None, help="also write the report as JSON to FILE")
    args = ap.parse_args()
    if not Path(args.soundfont).is_file():
        print(f"{args.soundfont} is missing: apt-get install fluid-soundfont-gm", file=sys.stderr)
        return 2
    from soundalike.audio.io import save
    from soundalike.data.render import load_synth
    from soundalike.tasks.transcribe import transcribe
    from soundalike.transcribe import load_transcription_model
    from soundalike.transcribe.pieces import render_notes_piece

    model = load_transcription_model(args.model)
    peer = None if args.no_peer else basic_pitch()
    sr = 22050
    synth = load_synth(args.soundfont, sr)
    rows: dict[str, list[dict[str, float]]] = {"ours": [], "ours_degraded": [], "basic_pitch": [],
                                                "basic_pitch_degraded": []}
    by_source: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        pieces = test_pieces(args.pieces)
        long_audio = []
        for i, piece in enumerate(pieces):
            y = render_notes_piece(piece, soundfont=args.soundfont, sample_rate=sr, synth=synth)
            ref = [(n.onset, n.offset, n.pitch) for n in piece.notes]
            long_audio.append(y)
            for suffix, audio in (("", y), ("_degraded", degrade(y, sr, np.random.default_rng(i)))):
                path = tmp / f"p{i}{suffix}.wav"
                save(path, audio, sr)
                est = [(n.onset, n.offset, n.pitch) for n in transcribe(path, model=model).notes]
                rows["ours" + suffix].append(note_scores(est, ref))
                source = piece.source.split(":")[0]
                if not suffix:
                    by_source.setdefault(f"ours/{source}", []).append(rows["ours"][-1])
                if peer is not None:
                    rows["basic_pitch" + suffix].append(note_scores(peer(str(path)), ref))
                    if not suffix:
                        by_source.setdefault(f"basic_pitch/{source}", []).append(rows["basic_pitch"][-1])
            print(f"\r{i + 1}/{len(pieces)} pieces", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        # speed: 60 s of music, file to notes
        music = np.concatenate(long_audio)[: 60 * sr]
        path = tmp / "speed.wav"
        save(path, music, sr)
        def x_realtime(run: Any) -> float:  # the median of three timed runs after a warm one
            run()
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                run()
                times.append(time.perf_counter() - t0)
            return len(music) / sr / float(np.median(times))

        ours_x = x_realtime(lambda: transcribe(path, model=model))
        speed: dict[str, Any] = {"ours_x_realtime": round(ours_x, 1)}
        if peer is not None:
            bp_x = x_realtime(lambda: peer(str(path)))
            speed.update(basic_pitch_x_realtime=round(bp_x, 1), ratio=round(ours_x / bp_x, 2))
        report: dict[str, Any] = {"pieces": len(pieces), "soundfont": Path(args.soundfont).name,
                                  "model": model.name, "notes": {k: mean(v) for k, v in rows.items() if v},
                                  "by_source": {k: mean(v) for k, v in sorted(by_source.items())},
                                  "speed": speed}
        manifest = ROOT / "data" / "debian-eval" / "manifest.jsonl"
        if args.real and peer is not None and manifest.is_file():
            report["real_agreement_with_basic_pitch"] = real_agreement(model, peer, manifest, args.real, tmp)
        if args.works:
            report["arrangements"] = arrangements(args.model, args.works, tmp)
    if args.save:
        Path(args.save).write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['pieces']} pieces of 20 s rendered with {report['soundfont']} (unseen)")
    print(f"{'':22s} {'F1 onset':>9s} {'F1 +offset':>11s} {'precision':>10s} {'recall':>8s}")
    for k, v in [*report["notes"].items(), *report["by_source"].items()]:
        print(f"{k:22s} {v['f1_onset']:9.3f} {v['f1_offset']:11.3f} {v['precision']:10.3f} {v['recall']:8.3f}")
    print("speed (x realtime): " + ", ".join(f"{k} {v}" for k, v in speed.items()))
    if "real_agreement_with_basic_pitch" in report:
        r = report["real_agreement_with_basic_pitch"]
        print(f"real music ({r['tracks']} Debian tracks, 30 s): note F1 against Basic Pitch's notes {r['f1_onset']:.3f}; "
              f"notes per second: ours {r['notes_per_s_ours']}, Basic Pitch {r['notes_per_s_basic_pitch']}")
    if "arrangements" in report:
        a = report["arrangements"]
        print(f"arrangements: {a['queries']} queries over {a['works']} works: another instrumentation first "
              f"{a['top1_notes']:.3f} by notes, {a['top1_sound']:.3f} by sound")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    raise SystemExit(main())
