"""Tagging speed: soundalike's tagger vs musicnn (the teacher) on the same 30 s track, in one run.

    python benchmarks/tagging.py [--audio FILE] [--repeats 5] [--teacher-python .venv-teacher/bin/python]

Both are timed per call of their public API after one warm-up call, on the same file and the same CPU
threads: ``Tagger.tag_file`` (decode, mel, encoder, both shipped heads, the ~1.5 s timeline) and musicnn's
``extractor(file, model="MTT_musicnn")`` (decode, mel, its CNN; run in the teacher environment). The
target (issue 6) is at least 10x faster than musicnn.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MUSICNN_TIMER = """
import json, os, sys, time
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
from musicnn.extractor import extractor
path, repeats = sys.argv[1], int(sys.argv[2])
extractor(path, model="MTT_musicnn", extract_features=False)  # warm-up
times = []
for _ in range(repeats):
    t0 = time.perf_counter()
    taggram, tags = extractor(path, model="MTT_musicnn", extract_features=False)
    times.append(time.perf_counter() - t0)
print(json.dumps({"times": times, "rows": len(taggram)}))
"""


def _default_audio(tmp: Path) -> Path:
    from soundalike.audio import save
    from soundalike.testing import class_track

    return save(tmp / "track30.wav", class_track(1, 0, sr=22050, duration=30.0), 22050)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--audio", help="a ~30 s audio file (default: a generated 30 s track)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--teacher-python", default=".venv-teacher/bin/python")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch

    from soundalike.tagging.tagger import load_tagger

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(args.audio) if args.audio else _default_audio(Path(tmp))
        tagger = load_tagger()
        tagger.tag_file(audio)  # warm-up
        ours = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = tagger.tag_file(audio)
            ours.append(time.perf_counter() - t0)
        out = {"audio": str(audio), "seconds": round(res.duration, 2), "threads": args.threads,
               "soundalike_s": round(statistics.median(ours), 4), "soundalike_chunks": len(res.times)}
        if Path(args.teacher_python).exists():
            env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3",
                   "OMP_NUM_THREADS": str(args.threads), "TF_NUM_INTRAOP_THREADS": str(args.threads),
                   "TF_NUM_INTEROP_THREADS": "1"}
            proc = subprocess.run([args.teacher_python, "-c", MUSICNN_TIMER, str(audio), str(args.repeats)],
                                  capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                return 1
            m = json.loads(proc.stdout.strip().splitlines()[-1])
            out["musicnn_s"] = round(statistics.median(m["times"]), 4)
            out["musicnn_rows"] = m["rows"]
            out["speedup"] = round(out["musicnn_s"] / out["soundalike_s"], 1)
        else:
            out["musicnn_s"] = None
            out["note"] = f"no teacher environment at {args.teacher_python}: only soundalike was timed"
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"tagging {out['seconds']:.0f} s of audio ({args.threads} threads, median of {args.repeats}):")
        print(f"  soundalike  {out['soundalike_s'] * 1000:8.1f} ms  ({out['soundalike_chunks']} timeline chunks, "
              "66 tags)")
        if out.get("musicnn_s"):
            print(f"  musicnn     {out['musicnn_s'] * 1000:8.1f} ms  ({out['musicnn_rows']} rows, 50 tags)")
            print(f"  speed-up    {out['speedup']:.1f}x (target >= 10x)")
        else:
            print(f"  {out['note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
