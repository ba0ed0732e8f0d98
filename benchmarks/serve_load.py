"""Load on the web app: /api/similar with 20 concurrent clients on loopback, then 500 sequential requests
and the server's memory before and after.

    python benchmarks/serve_load.py [--catalog DIR] [--clients 20] [--requests 200] [--sequential 500]

Without --catalog it builds a small generated catalog. The server runs as `soundalike serve` in its own
process (so its memory is measured alone); each request uploads a 10 s excerpt of a catalog track.
Reports requests/s and p50/p95 latency, and RSS after a warm-up vs after the sequential run.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _post(url: str, body: bytes) -> float:
    t0 = time.perf_counter()
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(req, timeout=120) as r:
        r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}")
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalog", help="an existing catalog (default: a generated 20-track one)")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=200, help="requests in the concurrent phase")
    ap.add_argument("--sequential", type=int, default=500, help="requests in the memory phase")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import soundfile as sf

    from soundalike import Catalog
    from soundalike.audio.io import decode
    from soundalike.testing import write_tracks

    with tempfile.TemporaryDirectory() as tmp:
        cat_dir = args.catalog
        if cat_dir is None:
            write_tracks(Path(tmp) / "music", list(range(1, 21)), duration=30.0)
            cat_dir = str(Path(tmp) / "cat")
            with Catalog.create(cat_dir) as cat:
                cat.add([Path(tmp) / "music"])
        with Catalog.open(cat_dir) as cat:
            first = cat.tracks()[0]
        y = decode(first.path, sr=22050, duration=10.0).samples
        buf = io.BytesIO()
        sf.write(buf, y, 22050, format="WAV")
        body = buf.getvalue()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "soundalike", "serve", "--catalog", cat_dir, "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.5)
            url = base + "/api/similar?k=10"
            for _ in range(5):
                _post(url, body)  # warm-up
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.clients) as pool:
                lat = list(pool.map(lambda _: _post(url, body), range(args.requests)))
            wall = time.perf_counter() - t0
            rss0 = _rss_mb(proc.pid)
            for _ in range(args.sequential):
                _post(url, body)
            rss1 = _rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    q = statistics.quantiles(lat, n=20)
    out = {"clients": args.clients, "requests": args.requests, "requests_per_s": round(args.requests / wall, 2),
           "p50_ms": round(statistics.median(lat) * 1000, 1), "p95_ms": round(q[18] * 1000, 1),
           "upload_seconds": 10.0, "sequential": args.sequential, "rss_mb_before": round(rss0, 1),
           "rss_mb_after": round(rss1, 1), "rss_growth_mb": round(rss1 - rss0, 1)}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"/api/similar, 10 s WAV uploads, {args.clients} concurrent clients, {args.requests} requests:")
        print(f"  {out['requests_per_s']:.1f} requests/s, p50 {out['p50_ms']:.0f} ms, p95 {out['p95_ms']:.0f} ms")
        print(f"memory over {args.sequential} sequential requests: {out['rss_mb_before']:.0f} MB -> "
              f"{out['rss_mb_after']:.0f} MB ({out['rss_growth_mb']:+.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
