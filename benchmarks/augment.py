"""How fast each augmentation runs, in x realtime, beside librosa's pitch shift and time stretch.

    python benchmarks/augment.py [--seconds 45] [--repeat 3]

Prints one line per augmentation and the whole view chain (what training
prepares once per track and caches), plus the ratio of our phase-vocoder pitch
shift and time stretch to librosa's, measured in the same run on the same audio.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def bench(fn, seconds: float, repeat: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return seconds / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=45.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch

    from soundalike.augment import AugmentConfig, augment_waveform
    from soundalike.augment import waveform as W
    from soundalike.testing import synth_track

    torch.set_num_threads(1)
    sr = 22050
    y = synth_track(7, duration=args.seconds)
    rng = np.random.default_rng(0)
    s = args.seconds
    rows = {
        "gain": bench(lambda: W.gain(y, 3.0), s, args.repeat),
        "noise (pink, 10 dB)": bench(lambda: W.add_noise(y, 10.0, rng, "pink"), s, args.repeat),
        "random EQ": bench(lambda: W.random_eq(y, sr, rng), s, args.repeat),
        "reverb (rt60 0.8 s)": bench(lambda: W.reverb(y, sr, rng, rt60=0.8), s, args.repeat),
        "MP3 64 kbps round trip": bench(lambda: W.codec(y, sr, bitrate_kbps=64), s, args.repeat),
        "pitch shift +1.5 st": bench(lambda: W.pitch_shift(y, sr, 1.5), s, args.repeat),
        "time stretch x1.05": bench(lambda: W.time_stretch(y, 1.05), s, args.repeat),
        "view chain (configs/debian.yaml)": bench(lambda: augment_waveform(y, sr, AugmentConfig(), rng), s, args.repeat),
    }
    base: dict[str, float] = {}
    try:
        import librosa

        base["librosa pitch_shift +1.5 st"] = bench(lambda: librosa.effects.pitch_shift(y, sr=sr, n_steps=1.5), s, args.repeat)
        base["librosa time_stretch x1.05"] = bench(lambda: librosa.effects.time_stretch(y, rate=1.05), s, args.repeat)
    except ImportError:
        pass
    if args.json:
        print(json.dumps({"x_realtime": rows, "baseline_x_realtime": base}, indent=2))
        return
    print(f"{args.seconds:g} s of generated audio, 1 thread, best of {args.repeat}: x realtime")
    for k, v in rows.items():
        print(f"  {k:<34} {v:9.0f}x")
    for k, v in base.items():
        print(f"  {k:<34} {v:9.0f}x")
    if base:
        print(f"pitch shift: ours / librosa = {rows['pitch shift +1.5 st'] / base['librosa pitch_shift +1.5 st']:.2f}")
        print(f"time stretch: ours / librosa = {rows['time stretch x1.05'] / base['librosa time_stretch x1.05']:.2f}")


if __name__ == "__main__":
    main()
