"""Ingest and query speed, beside a librosa baseline measured in the same run.

    python benchmarks/ingest.py [--tracks 20] [--seconds 30] [--catalog-size 10000]

Prints x-realtime for decode, front-end, encoder and end-to-end indexing of
MP3 files, the same for librosa.load + librosa mel + the same CNN (eager),
their ratio, and the warm latency of a 30 s MP3 query against a catalog of
--catalog-size tracks (real tracks plus perturbed copies of their embeddings).
Targets (issue 2): end-to-end >= 300x realtime; query <= 150 ms.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--catalog-size", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-tags", dest="tags", action="store_false", help="index without the default tag heads")
    ap.add_argument("--hash-model", default="", help="also give tracks hash codes with this model (default none)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import faiss

    faiss.omp_set_num_threads(1)
    from soundalike import Catalog, load_encoder
    from soundalike.audio import load, save
    from soundalike.features.mel import MelFrontend, chunk_power, power_to_db
    from soundalike.tasks import similar
    from soundalike.testing import synth_track

    enc = load_encoder()
    fe = enc.frontend
    tmp = Path(tempfile.mkdtemp(prefix="soundalike-bench-"))
    music = tmp / "music"
    music.mkdir()
    paths = [save(music / f"t{i:03d}.mp3", synth_track(1000 + i, sr=44100, duration=args.seconds), 44100,
                  bitrate=160_000) for i in range(args.tracks)]
    audio_s = args.tracks * args.seconds
    res: dict[str, float] = {}

    # --- soundalike, stage by stage
    waves, t_dec = timed(lambda: [load(p, sr=fe.sample_rate)[0] for p in paths])
    mel = MelFrontend(fe)

    def frontend():
        with torch.inference_mode():
            return [power_to_db(chunk_power(mel(w), chunk_frames=fe.chunk_frames, hop_frames=fe.chunk_hop_frames),
                                amin=fe.amin, top_db=fe.top_db) for w in waves]

    chunks, t_fe = timed(frontend)
    enc.embed_chunks(chunks[0])  # warm-up
    _, t_cnn = timed(lambda: [enc.embed_chunks(c) for c in chunks])
    cat = Catalog.create(tmp / "catalog", tag_heads="default" if args.tags else None,
                         hash_model=args.hash_model or None)
    rep, t_e2e = timed(lambda: cat.add(music))
    for stage, secs in rep.stage_seconds.items():
        res[f"stage_{stage}_x"] = audio_s / secs if secs > 0 else float("inf")
    res.update(decode_x=audio_s / t_dec, frontend_x=audio_s / t_fe, encoder_x=audio_s / t_cnn,
               end_to_end_x=audio_s / t_e2e)

    # --- baseline: librosa.load + librosa mel + the same CNN, eager NCHW
    import librosa

    base_net = load_encoder().net.eval()

    def baseline():
        for p in paths:
            y, _ = librosa.load(p, sr=fe.sample_rate)
            S = librosa.feature.melspectrogram(y=y, sr=fe.sample_rate, n_fft=fe.n_fft, hop_length=fe.hop_length,
                                               n_mels=fe.n_mels)
            n = 1 + (S.shape[1] - fe.chunk_frames) // fe.chunk_hop_frames
            x = np.stack([librosa.power_to_db(S[:, i * fe.chunk_hop_frames:i * fe.chunk_hop_frames + fe.chunk_frames],
                                              ref=np.max, top_db=fe.top_db) for i in range(n)])
            with torch.no_grad():
                base_net(torch.from_numpy(x))

    baseline()  # warm librosa's caches and numba
    _, t_base = timed(baseline)
    res["baseline_x"] = audio_s / t_base
    res["speedup_vs_baseline"] = t_base / t_e2e

    # --- query latency against a catalog of --catalog-size tracks
    n_fill = max(0, args.catalog_size - len(cat))
    con = sqlite3.connect(cat.root / "catalog.sqlite")
    cols = ("size, mtime_ns, duration, title, artist, album, genre, tags, labels, n_chunks, chunk_hop, chunk_emb, "
            "added_at")
    src = con.execute(f"SELECT {cols}, song_emb FROM tracks").fetchall()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_fill):
        r = src[i % len(src)]
        v = np.frombuffer(r[-1], np.float32) + rng.normal(0, 0.3, enc.embed_dim).astype(np.float32)
        v /= np.linalg.norm(v)
        rows.append((f"/filler/{i}.mp3", f"filler{i}", *r[:-1], v.tobytes()))
    con.executemany(f"INSERT INTO tracks(path, file_hash, {cols}, song_emb) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows)
    con.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
    con.commit()
    con.close()
    cat.close()
    cat = Catalog.open(tmp / "catalog")
    q = save(tmp / "query.mp3", synth_track(1003, sr=44100, duration=30.0), 44100, bitrate=128_000)
    similar(cat, q, k=10)  # warm: index loaded, model ready
    lat = []
    for _ in range(15):
        matches, dt = timed(lambda: similar(cat, q, k=10))
        lat.append(dt * 1000)
    assert matches[0].track.path.endswith("t003.mp3"), "the query's own track should rank first"
    res["catalog_tracks"] = len(cat)
    res["query_ms_median"] = statistics.median(lat)
    res["query_ms_p90"] = sorted(lat)[int(0.9 * len(lat)) - 1]

    if args.json:
        print(json.dumps({k: round(v, 2) for k, v in res.items()}, indent=2))
        return
    print(f"{args.tracks} MP3 tracks x {args.seconds:.0f} s ({audio_s / 60:.1f} min), {args.threads} torch threads")
    print(f"{'stage':<28}{'x realtime':>12}")
    for k, label in [("decode_x", "decode (PyAV + soxr)"), ("frontend_x", "front-end (torch mel)"),
                     ("encoder_x", "encoder (CNN)"), ("end_to_end_x", "end to end (soundalike index)"),
                     ("baseline_x", "baseline (librosa + eager CNN)")]:
        print(f"{label:<28}{res[k]:>12.0f}")
    print("inside `index` (x realtime of each stage's own wall time; decode overlaps the rest in a thread):")
    for k in sorted(k for k in res if k.startswith("stage_")):
        print(f"  {k[6:-2]:<26}{res[k]:>12.0f}")
    print(f"end to end vs baseline: {res['speedup_vs_baseline']:.2f}x   (target: >= 300x realtime end to end)")
    print(f"30 s MP3 query, {res['catalog_tracks']} tracks: median {res['query_ms_median']:.0f} ms, "
          f"p90 {res['query_ms_p90']:.0f} ms   (target: <= 150 ms)")


if __name__ == "__main__":
    main()
