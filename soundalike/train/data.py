"""Training data: decoded tracks, their augmented views, and the pair sampler.

Each track is kept as unreferenced dB mels (float16) of the clean audio plus
``augment.views`` waveform-augmented copies of a random segment (pitch,
tempo, EQ, reverb, noise, MP3), each with the per-frame waveform power needed
to mix noise in at a true SNR. Views are slow to make, so every track's
arrays are cached on disk under a key of (file, size, mtime, front-end,
augmentation, seed): a second run, or a resumed one, starts in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.augment.chain import AugmentConfig, NoiseBank, augment_chunk, augment_waveform
from soundalike.augment.spec import frame_power
from soundalike.errors import AudioDecodeError, ConfigError
from soundalike.features.mel import FrontendConfig


@dataclass
class View:
    """Mels of the clean track (``rate`` 1, ``start`` 0) or of an augmented segment of it."""

    db: np.ndarray  # float16 [shape=(n_mels, t)], 10*log10(max(power, amin)), unreferenced
    power: np.ndarray  # float32 [shape=(t,)], waveform mean square around each frame
    start: float = 0.0  # original-track frame where this view begins
    rate: float = 1.0  # tempo factor: view frame f is original frame start + f * rate
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return int(self.db.shape[1])

    def covers(self) -> tuple[float, float]:
        return self.start, self.start + self.frames * self.rate


@dataclass
class TrackMels:
    """One training track: its clean mels and its augmented views."""

    path: str
    group: str  # tracks of one group (a package, a work) land in the same split
    source: int  # index of the data source it came from
    clean: View
    views: list[View] = field(default_factory=list)

    @property
    def db(self) -> np.ndarray:
        return self.clean.db

    @property
    def sources(self) -> list[View]:
        return [self.clean, *self.views]


@dataclass
class DataSource:
    """Folders of audio with an optional manifest, drawn with a relative weight."""

    data: list[str]
    manifest: str | None = None
    weight: float = 1.0
    group_key: str | None = None  # manifest field that groups tracks for the split (default: work/group/label)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSource:
        d = dict(d)
        unknown = set(d) - {"data", "manifest", "weight", "group_key"}
        if unknown:
            raise ConfigError(f"unknown data-source settings {sorted(unknown)}: use data, manifest, weight, group_key")
        if "data" not in d:
            raise ConfigError("every data source needs `data` (folders or files of audio)")
        data = d["data"] if isinstance(d["data"], list) else [d["data"]]
        w = float(d.get("weight", 1.0))
        if w <= 0:
            raise ConfigError("a data source's weight must be positive")
        return cls([str(x) for x in data], d.get("manifest"), w, d.get("group_key"))


def _group_of(row: dict[str, Any], key: str | None, path: str) -> str:
    if key:
        return str(row.get(key) or path)
    return str(row.get("work") or row.get("group") or row.get("label") or path)


#: AugmentConfig fields applied per sample, not baked into the cached views: changing them
#: must not invalidate the cache.
PER_SAMPLE_AUGMENT = ("near_p", "jitter_frames", "noise_p", "time_mask_p", "time_mask_frames", "freq_mask_p",
                      "freq_mask_bins")


def _cache_key(path: Path, frontend: FrontendConfig, augment: AugmentConfig, seed: int, max_seconds: float) -> str:
    st = path.stat()
    views = {k: v for k, v in augment.to_dict().items() if k not in PER_SAMPLE_AUGMENT}
    raw = json.dumps([str(path), st.st_size, int(st.st_mtime), frontend.to_dict(), views, seed,
                      max_seconds, 3], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def _mels(y: np.ndarray, frontend: FrontendConfig) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from soundalike.features.mel import MelFrontend

    with torch.inference_mode():
        power = MelFrontend(frontend)(y)
        db = (10.0 * torch.log10(torch.clamp(power, min=frontend.amin))).numpy()
    pw = frame_power(y, frontend.hop_length, db.shape[1], frontend.n_fft)
    return db.astype(np.float16), pw


def _track_seed(path: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{os.path.basename(path)}:{seed}".encode()).digest()[:8], "little")


def prepare_track(path: str, frontend: FrontendConfig, augment: AugmentConfig, seed: int,
                  max_seconds: float) -> dict[str, Any] | None:
    """Decode one file; return its clean mels and ``augment.views`` augmented views (or None if unusable)."""
    import torch

    from soundalike.audio.io import decode

    torch.set_num_threads(1)
    try:
        audio = decode(path, sr=frontend.sample_rate, duration=None, max_duration=None)
    except AudioDecodeError:
        return None
    sr = frontend.sample_rate
    y = audio.samples[: int(max_seconds * sr)]
    if len(y) < frontend.chunk_samples:
        return None
    db, pw = _mels(y, frontend)
    out: dict[str, Any] = {"clean": {"db": db, "power": pw, "start": 0.0, "rate": 1.0, "params": {}}, "views": []}
    rng = np.random.default_rng(_track_seed(path, seed))
    seg = int(augment.view_seconds * sr)
    for _ in range(augment.views):
        s = int(rng.integers(0, max(1, len(y) - seg) + 1)) if len(y) > seg else 0
        z, params = augment_waveform(y[s : s + seg], sr, augment, rng)
        if len(z) < frontend.chunk_samples:
            continue
        vdb, vpw = _mels(z, frontend)
        out["views"].append({"db": vdb, "power": vpw, "start": s / frontend.hop_length,
                             "rate": float(params["rate"]), "params": params})
    return out


def _load_cached(path: Path) -> dict[str, Any] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            clean = {"db": z["clean_db"], "power": z["clean_power"], "start": 0.0, "rate": 1.0, "params": {}}
            views = [{"db": z[f"v{i}_db"], "power": z[f"v{i}_power"], **m} for i, m in enumerate(meta["views"])]
        return {"clean": clean, "views": views}
    except (OSError, KeyError, ValueError):
        return None


def _save_cached(path: Path, item: dict[str, Any]) -> None:
    arrays = {"clean_db": item["clean"]["db"], "clean_power": item["clean"]["power"]}
    meta: dict[str, Any] = {"views": []}
    for i, v in enumerate(item["views"]):
        arrays[f"v{i}_db"] = v["db"]
        arrays[f"v{i}_power"] = v["power"]
        meta["views"].append({"start": v["start"], "rate": v["rate"], "params": v["params"]})
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
    os.replace(tmp, path)


def _prepare_job(args: tuple[str, FrontendConfig, AugmentConfig, int, float, str | None]) -> dict[str, Any] | None:
    path, frontend, augment, seed, max_seconds, cache = args
    cpath = None
    if cache:
        cpath = Path(cache) / f"{_cache_key(Path(path), frontend, augment, seed, max_seconds)}.npz"
        if cpath.exists():
            hit = _load_cached(cpath)
            if hit is not None:
                return hit
    item = prepare_track(path, frontend, augment, seed, max_seconds)
    if item is not None and cpath is not None:
        _save_cached(cpath, item)
    return item


def load_sources(sources: Sequence[DataSource], frontend: FrontendConfig, augment: AugmentConfig, *, seed: int,
                 max_seconds: float, cache_dir: str | None = None, jobs: int = 1,
                 progress: bool = False) -> list[TrackMels]:
    """Decode every file of every source, with views, in ``jobs`` processes (cached in ``cache_dir``)."""
    from soundalike.data.files import read_manifest, walk_audio

    if not sources:
        raise ConfigError("no training data: set `data` (or `sources`) to folders of audio")
    todo: list[tuple[str, str, int]] = []
    for si, src in enumerate(sources):
        rows = read_manifest(src.manifest) if src.manifest else {}
        files = [str(f) for f in walk_audio(src.data)]
        if not files:
            raise ConfigError(f"no audio files under {src.data}")
        for f in files:
            todo.append((f, _group_of(rows.get(f, {}), src.group_key, f), si))
    if cache_dir:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    args = [(f, frontend, augment, seed, max_seconds, cache_dir) for f, _, _ in todo]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="file", desc="preparing audio", dynamic_ncols=True)
    results: list[dict[str, Any] | None] = []
    if jobs > 1 and len(todo) > 1:
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
            for r in pool.map(_prepare_job, args, chunksize=1):
                results.append(r)
                if bar is not None:
                    bar.update(1)
    else:
        for a in args:
            results.append(_prepare_job(a))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()

    def view(d: dict[str, Any]) -> View:
        return View(d["db"], d["power"], float(d["start"]), float(d["rate"]), dict(d.get("params") or {}))

    out = [TrackMels(f, g, si, view(r["clean"]), [view(v) for v in r["views"]])
           for (f, g, si), r in zip(todo, results, strict=True) if r is not None]
    if len(out) < 2:
        raise ConfigError(f"need at least 2 usable tracks of >= {frontend.chunk_seconds:.1f} s, found {len(out)}")
    return out


def split_tracks(tracks: list[TrackMels], fraction: float, seed: int, *,
                 valid_groups: Sequence[str] = ()) -> tuple[list[TrackMels], list[TrackMels]]:
    """Hold out whole groups (packages, works), never chunks of a training track.

    ``valid_groups`` names them; otherwise a seeded ``fraction`` of all groups.
    """
    groups = sorted({t.group for t in tracks})
    if valid_groups:
        missing = sorted(set(valid_groups) - set(groups))
        if missing:
            raise ConfigError(f"valid_groups {missing} match no training track; groups are e.g. {groups[:8]}")
        held = set(valid_groups)
    else:
        rng = np.random.default_rng(seed)
        rng.shuffle(groups)
        n_valid = int(round(len(groups) * fraction))
        if fraction > 0 and len(groups) > 2:
            n_valid = max(1, min(n_valid, len(groups) - 2))
        else:
            n_valid = 0
        held = set(groups[:n_valid])
    train = [t for t in tracks if t.group not in held]
    valid = [t for t in tracks if t.group in held]
    if len(train) < 2:
        raise ConfigError("the split leaves fewer than 2 training tracks")
    return train, valid


class PairSampler:
    """Batches of two augmented views of ``batch_size`` distinct tracks.

    Tracks are drawn in proportion to their length times their source's
    weight. The two chunks come from two different versions of the track
    (clean or augmented views) and sit either at about the same moment
    (``near_p``, +-``jitter_frames``) or anywhere in it; each then gets noise
    and masking of its own. With ``group_positive_p`` > 0 that share of pairs
    takes its positive from *another* track of the same group (package, work):
    the embedding then also learns what a package's tracks share.
    """

    def __init__(self, tracks: list[TrackMels], frontend: FrontendConfig, augment: AugmentConfig, *,
                 source_weights: Sequence[float] | None = None, noise_db: float = 0.0,
                 group_positive_p: float = 0.0, repeat_tracks: bool = False) -> None:
        self.tracks = tracks
        self.fe = frontend
        self.aug = augment
        self.noise_db = noise_db
        self.group_positive_p = group_positive_p
        self.repeat_tracks = repeat_tracks
        members: dict[str, list[int]] = {}
        for i, t in enumerate(tracks):
            members.setdefault(t.group, []).append(i)
        self.siblings = [[j for j in members[t.group] if j != i] for i, t in enumerate(tracks)]
        names = sorted(members)
        self.group_ids = np.array([names.index(t.group) for t in tracks], dtype=np.int64)
        self.bank = NoiseBank(frontend)
        lengths = np.array([t.clean.frames for t in tracks], dtype=np.float64)
        weights = np.ones(len(tracks))
        if source_weights is not None:
            sw = np.asarray(source_weights, dtype=np.float64)
            src = np.array([t.source for t in tracks])
            for s in np.unique(src):
                m = src == s
                weights[m] = sw[s] * lengths[m] / lengths[m].sum()
        else:
            weights = lengths
        self.p = weights / weights.sum()

    def _pick(self, rng: np.random.Generator, t: TrackMels) -> tuple[View, int, View, int]:
        F = self.fe.chunk_frames
        srcs = [v for v in t.sources if v.frames >= F]
        if len(srcs) > 1:
            i, j = rng.choice(len(srcs), size=2, replace=False)
            va, vb = srcs[int(i)], srcs[int(j)]
        else:
            va = vb = srcs[0]
        if rng.random() < self.aug.near_p:
            lo = max(va.covers()[0], vb.covers()[0])
            hi = min(va.covers()[1], vb.covers()[1]) - F * max(va.rate, vb.rate)
            if hi <= lo and va is not t.clean and t.clean.frames >= F:  # two views that do not overlap:
                vb = t.clean  # pair the view with the clean track, which covers every moment
                lo = max(va.covers()[0], vb.covers()[0])
                hi = min(va.covers()[1], vb.covers()[1]) - F * max(va.rate, vb.rate)
            if hi > lo:
                tt = float(rng.uniform(lo, hi))
                fa = int(round((tt - va.start) / va.rate))
                j = int(rng.integers(-self.aug.jitter_frames, self.aug.jitter_frames + 1)) if self.aug.jitter_frames else 0
                fb = int(round((tt - vb.start) / vb.rate)) + j
                fa = min(max(fa, 0), va.frames - F)
                fb = min(max(fb, 0), vb.frames - F)
                return va, fa, vb, fb
        fa = int(rng.integers(0, va.frames - F + 1))
        fb = int(rng.integers(0, vb.frames - F + 1))
        if va is vb and va.frames - F >= F:  # a different chunk of the same version: half a chunk away
            while abs(fa - fb) < F // 2:
                fb = int(rng.integers(0, vb.frames - F + 1))
        return va, fa, vb, fb

    def _input(self, v: View, f: int, rng: np.random.Generator) -> np.ndarray:
        F = self.fe.chunk_frames
        db = v.db[:, f : f + F].astype(np.float32)
        power = float(np.mean(v.power[f : f + F]))
        x = augment_chunk(db, power, self.aug, rng, bank=self.bank, top_db=self.fe.top_db, amin=self.fe.amin)
        if self.noise_db > 0:
            x = np.clip(x + rng.normal(0.0, self.noise_db, x.shape).astype(np.float32), -self.fe.top_db, 0.0)
        return x

    def batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Two arrays [shape=(B, n_mels, chunk_frames)] of referenced dB chunks (view a, view b)
        and the group id of each pair [shape=(B,)]."""
        if self.repeat_tracks and batch_size > len(self.tracks):
            # more pairs than tracks: some tracks give several moments, which are then each other's
            # negatives (what a fingerprint must tell apart: two places in one track)
            idx = rng.choice(len(self.tracks), size=batch_size, replace=True, p=self.p)
        else:
            idx = rng.choice(len(self.tracks), size=min(batch_size, len(self.tracks)), replace=False, p=self.p)
        xa, xb = [], []
        F = self.fe.chunk_frames
        for i in idx:
            sib = self.siblings[int(i)]
            if self.group_positive_p and sib and rng.random() < self.group_positive_p:
                other = self.tracks[sib[int(rng.integers(0, len(sib)))]]
                va = self.tracks[int(i)].clean
                fa = int(rng.integers(0, va.frames - F + 1))
                srcs = [v for v in other.sources if v.frames >= F]
                vb = srcs[int(rng.integers(0, len(srcs)))]
                fb = int(rng.integers(0, vb.frames - F + 1))
            else:
                va, fa, vb, fb = self._pick(rng, self.tracks[int(i)])
            xa.append(self._input(va, fa, rng))
            xb.append(self._input(vb, fb, rng))
        return np.stack(xa), np.stack(xb), self.group_ids[idx]

    def bags(self, rng: np.random.Generator, batch_size: int, *, per_group: int = 2,
             bag: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Song-level batches: ``batch_size`` tracks drawn ``per_group`` at a time from groups (packages,
        works), each seen as two bags of ``bag`` augmented chunks.

        Chunk 0 of the two bags is an instance pair (:meth:`_pick`: the same moment or anywhere, in two
        versions of the track); the other chunks come from anywhere in any version. Returns bag arrays a
        and b [shape=(B, bag, n_mels, chunk_frames)] and each track's group id [shape=(B,)].
        """
        F = self.fe.chunk_frames
        n_groups_all = int(self.group_ids.max()) + 1
        group_p = np.bincount(self.group_ids, weights=self.p, minlength=n_groups_all)
        live = int((group_p > 0).sum())
        n_groups = max(1, min(live, -(-batch_size // per_group)))
        groups = rng.choice(n_groups_all, size=n_groups, replace=False, p=group_p / group_p.sum())
        idx: list[int] = []
        for g in groups:
            members = np.flatnonzero(self.group_ids == g)
            pm = self.p[members] / self.p[members].sum()
            take = min(per_group, len(members), batch_size - len(idx))
            idx.extend(int(i) for i in rng.choice(members, size=take, replace=False, p=pm))
            if len(idx) >= batch_size:
                break
        xa = np.empty((len(idx), bag, self.fe.n_mels, F), dtype=np.float32)
        xb = np.empty_like(xa)
        for r, i in enumerate(idx):
            t = self.tracks[i]
            va, fa, vb, fb = self._pick(rng, t)
            xa[r, 0] = self._input(va, fa, rng)
            xb[r, 0] = self._input(vb, fb, rng)
            srcs = [v for v in t.sources if v.frames >= F]
            for out in (xa, xb):
                for k in range(1, bag):
                    v = srcs[int(rng.integers(0, len(srcs)))]
                    out[r, k] = self._input(v, int(rng.integers(0, v.frames - F + 1)), rng)
        return xa, xb, self.group_ids[np.asarray(idx)]
