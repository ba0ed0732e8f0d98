"""Restoration: the shipped model beside noisereduce (spectral gating), in one run, on real music no model
here was trained on.

    python benchmarks/restore.py [--data data/debian-eval] [--excerpts 12] [--seconds 8] [--model PATH]
                                 [--identify 40] [--tag 12] [--json] [--save FILE]

Music: excerpts of the independent Debian packages (``soundalike datasets debian-music data/debian-eval
--eval-packages``), 44.1 kHz, mono (the model shares one mask across channels, so a channel is what it
sees). Every degradation is generated in this run with seeds training never uses.

- Denoising: each noise of :mod:`soundalike.restore.noises` at 0, 5, 10 and 20 dB SNR. Seen noises are
  the training ones (white, pink, brown, hum, crackle, hiss, room, crowd); unseen ones were never trained
  on (blue, fan, rain, buzz217). Reported: SI-SDR improvement (dB) of ours and of noisereduce 3.0 with its
  defaults (non-stationary gating), with ``stationary=True``, and stationary given 2 s of the noise alone
  (``y_noise``, as a user would select from a quiet passage); the target compares ours with the best of
  the three at each SNR.
- Clean music in: SI-SDR of the output against the input (how far below the music the change is) and
  the level change (dB); and at 20 and 30 dB SNR, the SI-SDR change (a loss is negative).
- Declipping: hard clipping at 20, 30, 40 and 50 % of the peak; SDR improvement with ``declip`` alone
  and with both. Unseen: asymmetric clipping (30 % / 50 %) and a tanh saturation (12 dB drive).
- The mask's phase: complex (shipped) against the same magnitude with the noisy phase, at 0 dB.
- Speed: ``restore_file`` on 3 minutes of stereo 44.1 kHz WAV, file to file, seconds of audio per second;
  noisereduce on the same audio.
- ``identify --restore`` (``--identify`` queries): 8 s excerpts of catalog tracks under 0 dB noise, hit
  rate (right track, offset within 0.5 s, above the threshold) with and without restoring first.
- ``tag --restore`` (``--tag`` excerpts): how close the tags of a noisy excerpt (0 dB) are to the clean
  excerpt's, with and without restoring: Pearson correlation of the tag scores, and top-5 overlap.

Peer: ``pip install noisereduce`` (in the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SR = 44100
SNRS = (0.0, 5.0, 10.0, 20.0)
CLIP_LEVELS = (0.2, 0.3, 0.4, 0.5)


def excerpts(data: Path, n: int, seconds: float, seed: int, *, skip: int = 0) -> list[tuple[str, float, np.ndarray]]:
    """``n`` loud excerpts (path, offset, mono 44.1 kHz) from different tracks, after the first ``skip``."""
    from soundalike.audio.io import decode

    rows = [json.loads(x) for x in (data / "manifest.jsonl").read_text().splitlines() if x.strip()]
    rows = [r for r in rows if not fnmatch(str(r.get("source", r["path"])), "*/sounds/*")]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))[skip:]
    out = []
    for i in order:
        r = rows[int(i)]
        dur = float(r.get("duration") or 0)
        if dur < seconds + 2:
            continue
        off = float(rng.uniform(0.2, 0.8) * (dur - seconds))
        y = decode(data / r["path"], sr=SR, offset=off, duration=seconds).samples
        if float(np.sqrt(np.mean(y**2))) < 0.01:
            continue
        out.append((str(data / r["path"]), off, y))
        if len(out) == n:
            break
    return out


def noisereducers() -> dict[str, Any]:
    """noisereduce three ways: its defaults (non-stationary gating), ``stationary=True``, and stationary with a
    clip of the noise alone (``y_noise``: what a user selects from a quiet passage; here 2 s of the same
    noise, which flatters it). Each ``f(noisy, noise_clip)``."""
    import warnings

    import noisereduce

    def run(stationary: bool, clip: bool) -> Any:
        def f(y: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                extra = {"y_noise": noise} if clip and noise is not None else {}
                return np.asarray(noisereduce.reduce_noise(y=y, sr=SR, stationary=stationary, **extra), np.float32)
        return f

    return {"noisereduce": run(False, False), "noisereduce_stationary": run(True, False),
            "noisereduce_noise_clip": run(True, True)}


def mean(v: list[float]) -> float:
    return round(float(np.mean(v)), 2) if v else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data/debian-eval", help="folder with manifest.jsonl")
    ap.add_argument("--excerpts", type=int, default=12, help="music excerpts per condition (default 12)")
    ap.add_argument("--seconds", type=float, default=8.0, help="excerpt length (default 8)")
    ap.add_argument("--model", default=None, help="a restoration model (default: the shipped one)")
    ap.add_argument("--identify", type=int, default=40, help="identify queries at 0 dB (0: skip)")
    ap.add_argument("--tag", type=int, default=12, help="tag excerpts at 0 dB (0: skip)")
    ap.add_argument("--speed-seconds", type=float, default=180.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="also print the report as JSON")
    ap.add_argument("--save", metavar="FILE", default=None, help="also write the report as JSON to FILE")
    args = ap.parse_args()

    from tqdm import tqdm

    from soundalike.audio.io import save
    from soundalike.restore import load_restoration_model, restore_waveform
    from soundalike.restore.noises import (
        TRAIN_NOISES,
        UNSEEN_NOISES,
        add_at_snr,
        asymmetric_clip,
        hard_clip,
        make_noise,
        soft_clip,
    )
    from soundalike.restore.train import TEST_SEED0, sdr, si_sdr
    from soundalike.tasks.restore import restore_file

    if not (args.data / "manifest.jsonl").is_file():
        print(f"no {args.data}/manifest.jsonl: soundalike datasets debian-music {args.data} --eval-packages",
              file=sys.stderr)
        return 2
    model = load_restoration_model(args.model)
    ours = lambda y, **kw: restore_waveform(y, SR, model=model, **kw)  # noqa: E731
    peers = noisereducers()
    music = excerpts(args.data, args.excerpts, args.seconds, args.seed)
    report: dict[str, Any] = {"model": model.name, "fingerprint": model.fingerprint, "excerpts": len(music),
                              "seconds": args.seconds, "music": str(args.data.name)}

    # ------------------------------------------------------------------ denoising
    rows: dict[str, dict[str, dict[str, list[float]]]] = {}
    noises = {**{k: "seen" for k in TRAIN_NOISES}, **{k: "unseen" for k in UNSEEN_NOISES}}
    bar = tqdm(total=len(noises) * len(SNRS) * len(music), desc="denoising", unit="excerpt")
    for ni, (name, _) in enumerate(noises.items()):
        for si, snr in enumerate(SNRS):
            cell = rows.setdefault(name, {}).setdefault(f"{snr:g}", {"ours": [], **{p: [] for p in peers}})
            for k, (_, _, clean) in enumerate(music):
                rng = np.random.default_rng([TEST_SEED0, ni, si, k])
                noise = make_noise(name, len(clean) + 2 * SR, SR, rng)
                noisy = add_at_snr(clean, noise[: len(clean)], snr)
                scale = float(np.std(noisy - clean)) / max(float(np.std(noise[: len(clean)])), 1e-12)
                noise_clip = noise[len(clean):] * np.float32(scale)
                base = si_sdr(noisy, clean)
                cell["ours"].append(si_sdr(ours(noisy), clean) - base)
                for p, f in peers.items():
                    cell[p].append(si_sdr(f(noisy, noise_clip), clean) - base)
                bar.update(1)
    bar.close()
    denoise: dict[str, Any] = {"per_noise": {n: {s: {k: mean(v) for k, v in c.items()} for s, c in d.items()}
                                             for n, d in rows.items()}}
    for group in ("seen", "unseen", "all"):
        names = [n for n, g in noises.items() if group in ("all", g)]
        denoise[group] = {f"{snr:g}": {k: mean([x for n in names for x in rows[n][f"{snr:g}"][k]])
                                       for k in ("ours", *peers)} for snr in SNRS}
    targets = {}
    for snr in (0.0, 5.0, 10.0):
        d = denoise["all"][f"{snr:g}"]
        best_peer = max(d[p] for p in peers)
        targets[f"{snr:g}"] = {"ours": d["ours"], "best_noisereduce": best_peer,
                               "margin": round(d["ours"] - best_peer, 2), "met": d["ours"] >= best_peer + 3.0}
    denoise["target_3db_over_noisereduce"] = targets
    report["denoise"] = denoise

    # ------------------------------------------------------------------ clean music, high SNR
    clean_rows: dict[str, list[float]] = {"si_sdr_out_vs_in": [], "level_change_db": [], "snr20_change": [],
                                          "snr30_change": []}
    for k, (_, _, clean) in enumerate(tqdm(music, desc="clean music", unit="excerpt")):
        out = ours(clean)
        clean_rows["si_sdr_out_vs_in"].append(si_sdr(out, clean))
        clean_rows["level_change_db"].append(10 * np.log10(np.mean(out.astype(np.float64) ** 2)
                                                           / np.mean(clean.astype(np.float64) ** 2)))
        for snr in (20.0, 30.0):
            rng = np.random.default_rng([TEST_SEED0, 99, int(snr), k])
            noisy = add_at_snr(clean, make_noise("pink", len(clean), SR, rng), snr)
            clean_rows[f"snr{snr:g}_change"].append(si_sdr(ours(noisy), clean) - si_sdr(noisy, clean))
    report["clean"] = {k: mean(v) for k, v in clean_rows.items()}
    report["clean"]["worst_level_change_db"] = round(float(np.max(np.abs(clean_rows["level_change_db"]))), 3)

    # ------------------------------------------------------------------ declipping
    clip_rows: dict[str, dict[str, list[float]]] = {}
    kinds = {**{f"hard {int(100 * lv)} %": (lambda y, lv=lv: hard_clip(y, lv)) for lv in CLIP_LEVELS},
             "unseen: asymmetric 30/50 %": lambda y: asymmetric_clip(y, 0.3, 0.5),
             "unseen: soft, 12 dB drive": lambda y: soft_clip(y, 12.0)}
    for kind, clip in tqdm(kinds.items(), desc="declipping", unit="kind"):
        cell = clip_rows.setdefault(kind, {"declip": [], "both": [], "input_sdr": []})
        for _, _, clean in music:
            x = clip(clean)
            base = sdr(x, clean)
            cell["input_sdr"].append(base)
            cell["declip"].append(sdr(ours(x, denoise=False, declip=True), clean) - base)
            cell["both"].append(sdr(ours(x), clean) - base)
    report["declip"] = {k: {m: mean(v) for m, v in c.items()} for k, c in clip_rows.items()}
    hard = [x for k, c in clip_rows.items() if k.startswith("hard") for x in c["declip"]]
    report["declip_target"] = {"mean_sdr_gain_20_50": mean(hard), "met": mean(hard) >= 6.0,
                               "worst_level": min(mean(c["declip"]) for k, c in clip_rows.items() if k.startswith("hard"))}

    # ------------------------------------------------------------------ phase
    phase: dict[str, list[float]] = {"complex": [], "noisy": []}
    for k, (_, _, clean) in enumerate(music):
        for ni, name in enumerate(TRAIN_NOISES):
            rng = np.random.default_rng([TEST_SEED0, 50 + ni, k])
            noisy = add_at_snr(clean, make_noise(name, len(clean), SR, rng), 0.0)
            base = si_sdr(noisy, clean)
            for ph in phase:
                phase[ph].append(si_sdr(ours(noisy, phase=ph), clean) - base)
    report["phase_at_0db"] = {k: mean(v) for k, v in phase.items()}

    # ------------------------------------------------------------------ speed
    long = np.concatenate([y for _, _, y in music])
    while len(long) < args.speed_seconds * SR:
        long = np.concatenate([long, long])
    long = long[: int(args.speed_seconds * SR)]
    stereo = np.stack([long, np.roll(long, 441)])
    rng = np.random.default_rng([TEST_SEED0, 7])
    stereo = stereo + 0.05 * rng.standard_normal(stereo.shape).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="soundalike-restore-bench-") as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        save(src, stereo, SR)
        restore_file(src, Path(tmp) / "warm.wav", model=model, max_duration=None)  # graph export, caches
        t0 = time.perf_counter()
        restore_file(src, dst, model=model, max_duration=None)
        t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    for c in stereo:
        peers["noisereduce"](c)
    t_nr = time.perf_counter() - t0
    report["speed"] = {"seconds_of_audio": args.speed_seconds, "channels": 2,
                       "ours_x_realtime": round(args.speed_seconds / t_ours, 1),
                       "noisereduce_x_realtime": round(args.speed_seconds / t_nr, 1),
                       "met": args.speed_seconds / t_ours >= 20.0}

    # ------------------------------------------------------------------ identify --restore
    if args.identify:
        report["identify_at_0db"] = identify_bench(args, ours, noises)

    # ------------------------------------------------------------------ tag --restore
    if args.tag:
        report["tag_at_0db"] = tag_bench(args, ours, noises)

    print_report(report)
    if args.json:
        print(json.dumps(report, indent=2))
    if args.save:
        Path(args.save).write_text(json.dumps(report, indent=2))
    return 0


def identify_bench(args: argparse.Namespace, ours: Any, noises: dict[str, str]) -> dict[str, Any]:
    """Catalog: up to 60 tracks' fingerprints (their first 10 minutes); queries: 8 s excerpts of them under
    0 dB noise, each noise in turn."""
    from tqdm import tqdm

    from soundalike.audio.io import decode, resample
    from soundalike.fingerprint import load_fingerprinter
    from soundalike.fingerprint.index import BinaryIndex
    from soundalike.restore.noises import add_at_snr, make_noise
    from soundalike.restore.train import TEST_SEED0

    fp = load_fingerprinter()
    rows = [json.loads(x) for x in (args.data / "manifest.jsonl").read_text().splitlines() if x.strip()]
    rows = [r for r in rows if not fnmatch(str(r.get("source", r["path"])), "*/sounds/*")]
    rng = np.random.default_rng(args.seed + 1)
    rows = [rows[int(i)] for i in rng.permutation(len(rows))[:60]]
    waves = [decode(args.data / r["path"], sr=SR, duration=600.0, max_duration=None).samples
             for r in tqdm(rows, desc="identify: decoding", unit="track")]
    index = BinaryIndex.build(fp.bits, [(i, fp.track_codes(resample(y, orig_sr=SR, target_sr=fp.sample_rate),
                                                           fp.sample_rate), fp.hop_seconds)
                                        for i, y in enumerate(tqdm(waves, desc="identify: fingerprinting",
                                                                   unit="track"))])
    names = list(noises)
    hits: dict[str, dict[str, list[bool]]] = {"plain": {"seen": [], "unseen": []},
                                              "restored": {"seen": [], "unseen": []}}
    clean_hits = []
    for q in tqdm(range(args.identify), desc="identify: queries", unit="query"):
        r = np.random.default_rng([TEST_SEED0, 300, q])
        t = int(r.integers(0, len(waves)))
        y = waves[t]
        if len(y) < 10 * SR:
            continue
        start = int(r.integers(0, len(y) - 8 * SR))
        clean = y[start: start + 8 * SR]
        name = names[q % len(names)]
        noisy = add_at_snr(clean, make_noise(name, len(clean), SR, r), 0.0)

        def hit(x: np.ndarray, t: int = t, start: int = start) -> bool:
            c = fp.match(index, resample(x, orig_sr=SR, target_sr=fp.sample_rate), fp.sample_rate, top=1)
            return bool(c) and c[0].track_id == t and abs(c[0].offset - start / SR) <= 0.5 and (
                c[0].confidence >= fp.calibration.threshold)

        clean_hits.append(hit(clean))
        hits["plain"][noises[name]].append(hit(noisy))
        hits["restored"][noises[name]].append(hit(ours(noisy)))
    out: dict[str, Any] = {"queries": len(clean_hits), "tracks": len(waves), "clean_hit_rate": mean(clean_hits)}
    for way, d in hits.items():
        out[way] = {g: mean(v) for g, v in d.items()}
        out[way]["all"] = mean(d["seen"] + d["unseen"])
    out["helps"] = out["restored"]["all"] > out["plain"]["all"]
    return out


def tag_bench(args: argparse.Namespace, ours: Any, noises: dict[str, str]) -> dict[str, Any]:
    from soundalike.audio.io import resample
    from soundalike.restore.noises import add_at_snr, make_noise
    from soundalike.restore.train import TEST_SEED0
    from soundalike.tagging.tagger import load_tagger

    tagger = load_tagger()
    tsr = tagger.encoder.frontend.sample_rate
    music = excerpts(args.data, args.tag, 10.0, args.seed + 2)

    def scores(x: np.ndarray) -> np.ndarray:
        return tagger.tag_waveform(resample(x, orig_sr=SR, target_sr=tsr)).track

    def top5(v: np.ndarray) -> set[int]:
        return set(np.argsort(-v)[:5].tolist())

    res: dict[str, list[float]] = {"plain_corr": [], "restored_corr": [], "plain_top5": [], "restored_top5": []}
    names = list(noises)
    for k, (_, _, clean) in enumerate(music):
        ref = scores(clean)
        for ni, name in enumerate(names):
            rng = np.random.default_rng([TEST_SEED0, 400, k, ni])
            noisy = add_at_snr(clean, make_noise(name, len(clean), SR, rng), 0.0)
            for way, x in (("plain", noisy), ("restored", ours(noisy))):
                s = scores(x)
                res[f"{way}_corr"].append(float(np.corrcoef(s, ref)[0, 1]))
                res[f"{way}_top5"].append(len(top5(s) & top5(ref)) / 5)
    out: dict[str, Any] = {"excerpts": len(music), "noises": len(names), **{k: mean(v) for k, v in res.items()}}
    out["helps"] = out["restored_corr"] > out["plain_corr"]
    return out


def print_report(r: dict[str, Any]) -> None:
    print(f"\nrestoration: {r['model']} ({r['fingerprint']}), {r['excerpts']} excerpts of {r['seconds']:g} s "
          f"from {r['music']}")
    print("\nSI-SDR improvement, dB (mean over excerpts and noises)")
    print(f"  {'input SNR':>9}  {'group':<7} {'ours':>7} {'noisereduce':>12} {'nr stationary':>14} {'nr noise clip':>14}")
    for group in ("seen", "unseen", "all"):
        for snr, d in r["denoise"][group].items():
            print(f"  {snr:>7} dB  {group:<7} {d['ours']:7.2f} {d['noisereduce']:12.2f} {d['noisereduce_stationary']:14.2f}"
                  f" {d['noisereduce_noise_clip']:14.2f}")
    print("  target, ours >= the better noisereduce + 3 dB:")
    for snr, t in r["denoise"]["target_3db_over_noisereduce"].items():
        print(f"    {snr:>3} dB: ours {t['ours']:.2f}, noisereduce {t['best_noisereduce']:.2f}, margin "
              f"{t['margin']:+.2f} -> {'met' if t['met'] else 'NOT met'}")
    print("\nper noise at 0 dB (ours / noisereduce / stationary / with a noise clip):")
    for n, d in r["denoise"]["per_noise"].items():
        c = d["0"]
        print(f"  {n:<9} {c['ours']:6.2f} {c['noisereduce']:6.2f} {c['noisereduce_stationary']:6.2f} "
              f"{c['noisereduce_noise_clip']:6.2f}")
    c = r["clean"]
    print(f"\nclean music in: output vs input SI-SDR {c['si_sdr_out_vs_in']:.1f} dB, level change "
          f"{c['level_change_db']:+.3f} dB (worst {c['worst_level_change_db']:.3f}); SI-SDR change at 20 dB SNR "
          f"{c['snr20_change']:+.2f}, at 30 dB {c['snr30_change']:+.2f}")
    print("\ndeclipping, SDR improvement dB (input SDR):")
    for k, d in r["declip"].items():
        print(f"  {k:<28} declip {d['declip']:6.2f}  both {d['both']:6.2f}  (input {d['input_sdr']:.1f})")
    t = r["declip_target"]
    print(f"  target >= 6 dB at 20-50 %: mean {t['mean_sdr_gain_20_50']:.2f}, worst level {t['worst_level']:.2f} -> "
          f"{'met' if t['met'] else 'NOT met'}")
    p = r["phase_at_0db"]
    print(f"\nmask phase at 0 dB (seen noises): complex {p['complex']:.2f} dB, noisy phase {p['noisy']:.2f} dB")
    s = r["speed"]
    print(f"\nspeed, {s['seconds_of_audio']:g} s stereo WAV file to file: ours {s['ours_x_realtime']:.1f}x realtime, "
          f"noisereduce {s['noisereduce_x_realtime']:.1f}x -> {'met' if s['met'] else 'NOT met'} (>= 20x)")
    if "identify_at_0db" in r:
        i = r["identify_at_0db"]
        print(f"\nidentify at 0 dB ({i['queries']} queries, {i['tracks']} tracks; clean {i['clean_hit_rate']:.2f}): "
              f"plain {i['plain']['all']:.2f} (seen {i['plain']['seen']:.2f}, unseen {i['plain']['unseen']:.2f}), "
              f"--restore {i['restored']['all']:.2f} (seen {i['restored']['seen']:.2f}, unseen "
              f"{i['restored']['unseen']:.2f}) -> {'helps' if i['helps'] else 'does not help'}")
    if "tag_at_0db" in r:
        g = r["tag_at_0db"]
        print(f"tag at 0 dB ({g['excerpts']} excerpts x {g['noises']} noises): correlation with the clean tags "
              f"plain {g['plain_corr']:.3f}, --restore {g['restored_corr']:.3f}; top-5 overlap plain "
              f"{g['plain_top5']:.2f}, --restore {g['restored_top5']:.2f} -> {'helps' if g['helps'] else 'does not help'}")


if __name__ == "__main__":
    raise SystemExit(main())
