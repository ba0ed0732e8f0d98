"""Peak memory of `soundalike similar` on a long file: window-by-window reading vs a whole decode.

    python benchmarks/long_input.py [--hours 2] [--baseline-minutes 20] [--out DIR]

Makes a long mono Opus file (the hostile corpus's generator, seeded; ~1 min for 2 hours), a small catalog,
and runs in separate processes, each measured by its peak RSS:

- ``similar LONG --max-duration ...`` as a user runs it (long files are read in windows);
- the baseline: the same file cut to ``--baseline-minutes`` and embedded the old way, one whole decode and one
  front-end pass (``Embedder.embed_waveform(decode(...))``), and its per-hour growth extrapolated to the
  long file (running it on 2 hours needs ~8.5 GB);
- the model alone (import + load, no audio), so the audio's share shows.

Target (issue 17): `similar` on a 2-hour file under 1 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WHOLE = """
import sys
from soundalike.audio.io import decode
from soundalike.inference.embed import Embedder
from soundalike.models.factory import load_encoder
emb = Embedder(load_encoder())
seconds = float(sys.argv[2])
if seconds > 0:
    emb.embed_waveform(decode(sys.argv[1], sr=emb.config.sample_rate, duration=seconds).samples)
"""


def _peak_mb(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS of the child in MB, wall seconds)."""
    t0 = time.perf_counter()
    wrapped = [sys.executable, "-c",
               "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)", *cmd]
    out = subprocess.run(wrapped, capture_output=True, text=True, check=True).stdout.split()
    if out[-1] != "0":
        raise SystemExit(f"{' '.join(cmd)} failed")
    return int(out[-2]) / 1024, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0, help="length of the long file (default 2)")
    ap.add_argument("--baseline-minutes", type=float, default=20.0,
                    help="the whole-decode baseline runs on this much of it (default 20)")
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    args = ap.parse_args()

    from soundalike import Catalog
    from soundalike.testing import write_tracks
    from soundalike.testing.hostile import write_long_opus

    work = args.out or Path(tempfile.mkdtemp(prefix="soundalike-long-"))
    work.mkdir(parents=True, exist_ok=True)
    seconds = args.hours * 3600
    long = work / f"long-{args.hours:g}h.opus"
    if not long.exists():
        print(f"writing {long} ({seconds:.0f} s of Opus) ...", flush=True)
        write_long_opus(long, seconds)
    cat = work / "catalog"
    if not (cat / "catalog.sqlite").exists():
        write_tracks(work / "music", [1, 2, 3, 4], duration=20.0)
        with Catalog.create(cat) as c:
            c.add([work / "music"])

    sl = [sys.executable, "-m", "soundalike"]
    model_mb, _ = _peak_mb([sys.executable, "-c", WHOLE, str(long), "0"])
    streamed_mb, streamed_s = _peak_mb([*sl, "similar", str(long), "--catalog", str(cat), "-k", "3",
                                        "--max-duration", str(seconds + 60), "--json"])
    base_s = args.baseline_minutes * 60
    whole_mb, whole_s = _peak_mb([sys.executable, "-c", WHOLE, str(long), str(base_s)])
    per_hour = (whole_mb - model_mb) / (base_s / 3600)
    projected = model_mb + per_hour * args.hours
    rows = {
        "hours": args.hours,
        "model_only_mb": round(model_mb),
        "similar_windowed_mb": round(streamed_mb),
        "similar_windowed_seconds": round(streamed_s, 1),
        "x_realtime": round(seconds / streamed_s),
        f"whole_decode_{args.baseline_minutes:g}min_mb": round(whole_mb),
        "whole_decode_projected_mb": round(projected),
        "ratio_projected_whole_to_windowed": round(projected / streamed_mb, 1),
        "target_mb": 1024,
        "met": streamed_mb < 1024,
    }
    print(json.dumps(rows, indent=2))
    print(f"similar on {args.hours:g} h: {streamed_mb:.0f} MB peak (target < 1024 MB: "
          f"{'met' if streamed_mb < 1024 else 'MISSED'}); a whole decode would need ~{projected:.0f} MB "
          f"({projected / streamed_mb:.1f}x), measured at {whole_mb:.0f} MB for {args.baseline_minutes:g} min; "
          f"the model alone {model_mb:.0f} MB")


if __name__ == "__main__":
    main()
