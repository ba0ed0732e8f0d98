"""``soundalike evaluate``: how well embeddings find tracks and group labels, beside baselines.

Over the labelled tracks of a catalog, for every method (the catalog's
model, any models to compare, the untrained encoder and MFCC statistics):

* excerpt -> track retrieval: random ``excerpt_seconds`` excerpts, clean and
  degraded (noise at ``noise_snr_db`` then an MP3 round trip at
  ``mp3_kbps``), scored against every track's chunk embeddings (mean over
  the excerpt's chunks of the best cosine within a track): recall@1,
  recall@10, MRR;
* same-label retrieval over song embeddings: precision@10, MAP, NDCG@10;
* a linear probe (cross-validated logistic regression) on the labels, and
  the silhouette of song embeddings by label;
* PCA and t-SNE (and UMAP if installed) maps of song embeddings coloured by label.

Everything is written to ``OUT/``: ``evaluation.json``, ``evaluation.md``
and PNG plots.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import AudioDecodeError, ParameterError
from soundalike.evaluation import metrics as M
from soundalike.evaluation.methods import Method, MFCCMethod, ModelMethod, untrained_like
from soundalike.index.scoring import moment_scores, similar_scores


@dataclass
class EvalConfig:
    label_key: str = "label"  # which manifest label groups tracks (label, package, collection, genre, ...)
    excerpt_seconds: float = 6.0
    excerpts_per_track: int = 2
    noise_snr_db: float = 10.0
    noise_color: str = "white"
    mp3_kbps: float = 64.0
    catalog_hop_frames: int = 32  # hop between catalog chunks for excerpt matching (~0.74 s)
    query_hop_frames: int = 43  # hop between an excerpt's chunks (~1 s)
    max_track_seconds: float = 600.0
    max_tracks: int | None = None  # evaluate a seeded sample of the catalog
    k: int = 10
    probe_folds: int = 5
    plots: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.excerpt_seconds <= 0 or self.excerpts_per_track < 1:
            raise ParameterError("excerpt_seconds must be > 0 and excerpts_per_track >= 1")
        if self.catalog_hop_frames < 1 or self.query_hop_frames < 1:
            raise ParameterError("hops must be at least one frame")
        if self.noise_color not in ("white", "pink"):
            raise ParameterError("noise_color must be white or pink")
        if not 8 <= self.mp3_kbps <= 320:
            raise ParameterError("mp3_kbps must be within [8, 320]")


@dataclass
class _Store:
    catalog_chunks: list[np.ndarray] = field(default_factory=list)
    songs: list[np.ndarray] = field(default_factory=list)
    queries: dict[str, list[np.ndarray]] = field(default_factory=lambda: {"clean": [], "noisy": []})
    query_songs: dict[str, list[np.ndarray]] = field(default_factory=lambda: {"clean": [], "noisy": []})
    stored_chunks: list[np.ndarray] = field(default_factory=list)  # at the method's own catalog hop
    similar_queries: dict[str, list[tuple[np.ndarray, np.ndarray, int]]] = field(
        default_factory=lambda: {"clean": [], "noisy": []})  # (song, chunks, phases) as `similar` embeds a query
    embed_seconds: float = 0.0  # wall time of embedding the catalog tracks (front-end + model)


def degrade(y: np.ndarray, sr: int, rng: np.random.Generator, *, snr_db: float, color: str, kbps: float) -> np.ndarray:
    """The evaluation's degraded query: noise at ``snr_db``, then an MP3 round trip at ``kbps``."""
    from soundalike.augment.waveform import add_noise, codec

    x = add_noise(y, snr_db, rng, color)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak > 0.99:
        x = x * np.float32(0.99 / peak)
    return codec(x, sr, bitrate_kbps=kbps)


def _label_of(track: Any, key: str) -> str | None:
    v = track.labels.get(key)
    if v is None and key == "genre":
        v = track.genre
    return None if v is None else str(v)


def evaluate(catalog: str | Path, out: str | Path, *, config: EvalConfig | None = None,
             compare: list[str] | None = None, progress: bool = False,
             log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the evaluation over ``catalog``'s labelled tracks; write the report into ``out``."""
    from soundalike.index.catalog import Catalog
    from soundalike.models.factory import load_encoder

    cfg = config or EvalConfig()
    say = log or (lambda msg: None)
    cat = Catalog.open(catalog)
    tracks = [t for t in cat.tracks() if _label_of(t, cfg.label_key) is not None]
    if not tracks:
        keys = sorted({k for t in cat.tracks() for k in t.labels})
        raise ParameterError(f"no track in {cat.root} has a {cfg.label_key!r} label; index with --manifest, "
                             f"or pick --label-key from {keys or 'none (this catalog has no labels)'}")
    rng = np.random.default_rng(cfg.seed)
    if cfg.max_tracks and len(tracks) > cfg.max_tracks:
        pick = sorted(rng.choice(len(tracks), size=cfg.max_tracks, replace=False))
        tracks = [tracks[i] for i in pick]
    labels = [str(_label_of(t, cfg.label_key)) for t in tracks]
    if len(set(labels)) < 2:
        raise ParameterError(f"all evaluated tracks share one {cfg.label_key!r} label ({labels[0]}); "
                             "label retrieval and the probe need at least two")

    enc = cat.encoder
    methods: list[Method] = [ModelMethod(enc, enc.name)]
    for ref in compare or []:
        other = load_encoder(ref)
        if other.fingerprint != enc.fingerprint:
            methods.append(ModelMethod(other, other.name))
    methods.append(ModelMethod(untrained_like(enc, cfg.seed), f"{enc.encoder}-untrained", kind="baseline"))
    methods.append(MFCCMethod(enc.frontend))
    report = evaluate_methods([t.path for t in tracks], labels, methods, cfg, progress=progress, log=say,
                              durations=[t.duration for t in tracks])
    report = {"catalog": str(cat.root), "model": enc.describe() if hasattr(enc, "describe") else enc.name,
              **report}
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    report["plots"] = {}
    if cfg.plots:
        from soundalike.evaluation.plots import plot_maps

        report["plots"] = plot_maps(report["_songs"], report["_labels"], outdir, seed=cfg.seed)
    report.pop("_songs", None)
    report.pop("_labels", None)
    (outdir / "evaluation.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    (outdir / "evaluation.md").write_text(markdown_report(report))
    report["files"] = sorted(str(p) for p in outdir.iterdir() if p.is_file())
    return report


def evaluate_methods(paths: list[str], labels: list[str], methods: list[Method], cfg: EvalConfig, *,
                     progress: bool = False, log: Callable[[str], None] | None = None,
                     durations: list[float] | None = None) -> dict[str, Any]:
    """Score every method on the same decoded tracks and the same excerpts.

    ``paths`` and their ``labels``; returns the report's ``methods`` (per method: excerpt retrieval, song-level
    retrieval of excerpts, label retrieval, probe, silhouette, embedding speed) plus ``tracks``, ``labels``,
    ``skipped`` and, under ``_songs`` / ``_labels``, the song embeddings for plots.
    """
    say = log or (lambda msg: None)
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ParameterError(f"two compared methods share a name: {names}")
    srs: list[Any] = [fe for m in methods if (fe := getattr(getattr(m, "encoder", None), "frontend", None))]
    sr = srs[0].sample_rate if srs else 22050
    for m in methods:
        fe = getattr(getattr(m, "encoder", None), "frontend", None)
        if fe is not None and fe.sample_rate != sr:
            raise ParameterError(f"{m.name} runs at {fe.sample_rate} Hz, another method at {sr} Hz")
    chunk_samples = max([fe.chunk_samples for fe in srs] or [0])
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    stores = {m.name: _Store() for m in methods}
    waves: list[np.ndarray] = []
    kept: list[int] = []
    skipped: list[dict[str, str]] = []
    it: Any = list(enumerate(paths))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, unit="track", desc="decoding", dynamic_ncols=True)
    ex_len = int(round(cfg.excerpt_seconds * sr))
    from soundalike.audio.io import decode

    for i, path in it:
        try:
            y = decode(path, sr=sr, duration=cfg.max_track_seconds, max_duration=None).samples
        except (AudioDecodeError, OSError) as exc:
            skipped.append({"path": path, "reason": str(exc)})
            continue
        if len(y) < max(ex_len, chunk_samples):
            skipped.append({"path": path, "reason": f"shorter than the {cfg.excerpt_seconds:g} s excerpt"})
            continue
        waves.append(y)
        kept.append(i)
    if len(kept) < 2:
        raise ParameterError(f"fewer than 2 usable tracks (skipped: {skipped[:3]})")
    labels = [labels[i] for i in kept]
    seconds = [len(y) / sr for y in waves]
    hours = sum(durations[i] for i in kept) / 3600 if durations else sum(seconds) / 3600
    if len(set(labels)) < 2:
        raise ParameterError("after skipping unusable files, fewer than two labels remain")

    queries: dict[str, list[np.ndarray]] = {"clean": [], "noisy": []}
    query_track: list[int] = []
    for ti, y in enumerate(waves):
        for _ in range(cfg.excerpts_per_track):
            start = int(rng.integers(0, len(y) - ex_len + 1))
            clean = y[start : start + ex_len]
            queries["clean"].append(clean)
            queries["noisy"].append(degrade(clean, sr, rng, snr_db=cfg.noise_snr_db, color=cfg.noise_color,
                                            kbps=cfg.mp3_kbps))
            query_track.append(ti)

    for m in methods:
        m.fit(waves)
        st = stores[m.name]
        seq: Any = waves
        if progress:
            from tqdm import tqdm

            seq = tqdm(waves, unit="track", desc=f"embedding ({m.name})", dynamic_ncols=True)
        t1 = time.perf_counter()
        for y in seq:
            st.songs.append(m.song(y))
        st.embed_seconds = time.perf_counter() - t1
        for y in waves:
            st.catalog_chunks.append(m.chunks(y, cfg.catalog_hop_frames))
            st.stored_chunks.append(m.chunks(y, m.catalog_hop_frames))  # what a catalog keeps
        for cond, qs in queries.items():
            st.queries[cond] = [m.chunks(q, cfg.query_hop_frames) for q in qs]
            st.query_songs[cond] = [m.song(q) for q in qs]
            grids = [m.query_grid(len(q) / sr) for q in qs]  # how `similar` embeds a file query
            dense = [m.chunks(q, hop) for q, (hop, _) in zip(qs, grids, strict=True)]
            st.similar_queries[cond] = [(m.song_of_chunks(c, q, p), c, p)
                                        for c, q, (_, p) in zip(dense, qs, grids, strict=True)]
        say(f"embedded with {m.name}")
    audio_seconds = float(sum(seconds))
    del waves

    truth = np.asarray(query_track)
    results: dict[str, Any] = {}
    songs_by_method: dict[str, np.ndarray] = {}
    for m in methods:
        st = stores[m.name]
        r: dict[str, Any] = {"kind": m.kind, "describe": m.describe()}
        songs = np.stack(st.songs)
        for cond in ("clean", "noisy"):
            ranks = M.rank_of(moment_scores(st.queries[cond], st.catalog_chunks), truth)
            r[f"excerpt_{cond}"] = {"recall@1": M.recall_at_k(ranks, 1), "recall@10": M.recall_at_k(ranks, 10),
                                    "mrr": M.mean_reciprocal_rank(ranks), "queries": len(ranks)}
            # what `similar` does with an excerpt: its song embedding against every track's song embedding
            ranks = M.rank_of(np.stack(st.query_songs[cond]) @ songs.T, truth)
            r[f"song_{cond}"] = {"recall@1": M.recall_at_k(ranks, 1), "recall@10": M.recall_at_k(ranks, 10),
                                 "mrr": M.mean_reciprocal_rank(ranks), "queries": len(ranks)}
            # what `similar` does with a file query: song cosine and moments against what the catalog keeps
            fused = np.stack([similar_scores(songs @ qs, qc, st.stored_chunks, phases=p)[0]
                              for qs, qc, p in st.similar_queries[cond]])
            ranks = M.rank_of(fused, truth)
            r[f"similar_{cond}"] = {"recall@1": M.recall_at_k(ranks, 1), "recall@10": M.recall_at_k(ranks, 10),
                                    "mrr": M.mean_reciprocal_rank(ranks), "queries": len(ranks)}
        songs_by_method[m.name] = songs
        r["label_retrieval"] = M.label_retrieval(songs, labels, k=cfg.k)
        r["linear_probe"] = M.linear_probe(songs, labels, n_folds=cfg.probe_folds, seed=cfg.seed)
        r["silhouette"] = M.silhouette(songs, labels)
        r["embed_x_realtime"] = round(audio_seconds / st.embed_seconds, 1) if st.embed_seconds > 0 else None
        results[m.name] = r

    label_counts: dict[str, int] = {}
    for lab in labels:
        label_counts[lab] = label_counts.get(lab, 0) + 1
    return {
        "config": asdict(cfg),
        "tracks": len(labels),
        "hours": round(hours, 3),
        "labels": label_counts,
        "skipped": skipped,
        "methods": results,
        "seconds": round(time.perf_counter() - t0, 1),
        "_songs": songs_by_method,
        "_labels": labels,
    }


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and math.isnan(o):
        return None
    return str(o)


def _f(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def markdown_report(report: dict[str, Any]) -> str:
    """The evaluation as Markdown tables (what the model card quotes)."""
    cfg = report["config"]
    k = cfg["k"]
    lines = [
        "# soundalike evaluation",
        "",
        f"Catalog `{os.path.basename(report['catalog'].rstrip('/'))}`: {report['tracks']} tracks, "
        f"{report['hours']:.2f} h, label `{cfg['label_key']}` "
        f"({len(report['labels'])} values: " + ", ".join(f"{k_} {v}" for k_, v in sorted(report['labels'].items())) + ").",
        "",
        f"Excerpts: {cfg['excerpts_per_track']} x {cfg['excerpt_seconds']:g} s per track; noisy = "
        f"{cfg['noise_color']} noise at {cfg['noise_snr_db']:g} dB SNR, then MP3 at {cfg['mp3_kbps']:g} kbps. "
        f"Catalog chunks every {cfg['catalog_hop_frames']} frames.",
        "",
        "## Excerpt -> track retrieval",
        "",
        "| method | clean R@1 | clean R@10 | clean MRR | noisy R@1 | noisy R@10 | noisy MRR |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in report["methods"].items():
        c, n = r["excerpt_clean"], r["excerpt_noisy"]
        lines.append(f"| {name} | {_f(c['recall@1'])} | {_f(c['recall@10'])} | {_f(c['mrr'])} | "
                     f"{_f(n['recall@1'])} | {_f(n['recall@10'])} | {_f(n['mrr'])} |")
    for key, title in (("song", "by song embedding alone"),
                       ("similar", "as `similar` ranks a file query (song cosine + moment score)")):
        lines += ["", f"## Excerpt -> track {title}", "",
                  "| method | clean R@1 | clean R@10 | noisy R@1 | noisy R@10 | noisy MRR |", "|---|---|---|---|---|---|"]
        for name, r in report["methods"].items():
            if f"{key}_clean" not in r:
                continue
            c, n = r[f"{key}_clean"], r[f"{key}_noisy"]
            lines.append(f"| {name} | {_f(c['recall@1'])} | {_f(c['recall@10'])} | {_f(n['recall@1'])} | "
                         f"{_f(n['recall@10'])} | {_f(n['mrr'])} |")
    lines += ["", f"## Same-{cfg['label_key']} retrieval and linear probe", "",
              f"| method | P@{k} | MAP | NDCG@{k} | probe accuracy | silhouette |", "|---|---|---|---|---|---|"]
    for name, r in report["methods"].items():
        lr, lp = r["label_retrieval"], r["linear_probe"]
        lines.append(f"| {name} | {_f(lr[f'precision@{k}'])} | {_f(lr['map'])} | {_f(lr[f'ndcg@{k}'])} | "
                     f"{_f(lp['accuracy'])} | {_f(r['silhouette'])} |")
    any_probe = next(iter(report["methods"].values()))["linear_probe"]
    lines += ["", f"Probe: {any_probe['folds']}-fold cross-validated logistic regression over "
              f"{any_probe['classes']} labels; guessing the commonest label scores {_f(any_probe['majority'])}.", ""]
    if report.get("plots"):
        lines += ["## Maps of song embeddings", ""]
        for kind, path in report["plots"].items():
            lines.append(f"![{kind}]({os.path.basename(path)})")
        lines.append("")
    if report.get("skipped"):
        lines += [f"{len(report['skipped'])} files were skipped (see evaluation.json).", ""]
    return "\n".join(lines)
