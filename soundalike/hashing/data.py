"""Labelled tracks for the hash-CNN: whole-track mels, a track-level split, and 29.12 s clips.

Tracks are decoded once at the model's front-end and kept as unreferenced dB
mels (float16, cached on disk by :func:`soundalike.train.data.load_sources`).
A clip is cut from them and referenced to its own maximum (``top_db`` below
it), which is what :func:`soundalike.features.mel.log_mel_chunks` gives for
the same audio, up to the STFT's edge frames. Tracks shorter than a clip are
padded with silence, as the model pads at inference.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundalike.errors import ConfigError, ParameterError
from soundalike.features.mel import FrontendConfig

#: The reference front-end: 12 kHz, n_fft 512, hop 256, 96 mels; 1366 frames = 29.12 s.
HASH_FRONTEND = FrontendConfig(sample_rate=12000, n_fft=512, hop_length=256, n_mels=96, chunk_frames=1366,
                               chunk_hop_frames=1366)
MIN_TRACK_SECONDS = 5.0  # shorter files are left out; longer ones shorter than a clip are padded


@dataclass
class LabelledTracks:
    """Whole-track dB mels with an integer label and a split group per track."""

    paths: list[str]
    db: list[np.ndarray]  # float16 [shape=(n_mels, t)], 10*log10(power), unreferenced
    labels: np.ndarray  # int [shape=(n_tracks,)], index into label_names
    groups: list[str]  # tracks of one group (a work and its renderings) stay on one side of the split
    label_names: tuple[str, ...]
    frontend: FrontendConfig
    unlabelled: list[str]  # files found without a label in the manifest (left out)

    def __len__(self) -> int:
        return len(self.paths)


def load_labelled(data: Sequence[str | Path], *, manifest: str | Path | None = None, label_key: str = "label",
                  group_key: str | None = None, frontend: FrontendConfig = HASH_FRONTEND,
                  cache_dir: str | Path | None = None, max_seconds: float = 600.0, jobs: int = 1,
                  progress: bool = False) -> LabelledTracks:
    """Decode the audio under ``data``; labels come from the manifest's ``label_key`` field.

    Files the manifest gives no label are left out (listed in ``unlabelled``).

    ``group_key`` names a manifest field whose tracks must stay together in the
    split (e.g. ``work`` for renderings of one score); by default each track is
    its own group (a track-level split).
    """
    from soundalike.augment.chain import AugmentConfig
    from soundalike.data.files import read_manifest
    from soundalike.train.data import DataSource, load_sources

    folders = [str(d) for d in data]
    if manifest is None:
        found = [Path(d) / "manifest.jsonl" for d in folders if (Path(d) / "manifest.jsonl").is_file()]
        if not found:
            raise ConfigError(f"no manifest.jsonl in {folders}: labels come from a manifest (pass manifest=)")
        manifest = found[0]
    rows = read_manifest(manifest)
    loading = frontend.replace(chunk_frames=int(MIN_TRACK_SECONDS * frontend.sample_rate / frontend.hop_length) + 1)
    tracks = load_sources([DataSource(folders, str(manifest), 1.0, group_key)], loading, AugmentConfig(views=0),
                          seed=0, max_seconds=max_seconds, cache_dir=None if cache_dir is None else str(cache_dir),
                          jobs=jobs, progress=progress)
    kept = [t for t in tracks if label_key in rows.get(t.path, {})]
    if not kept:
        raise ConfigError(f"no track under {folders} has a {label_key!r} field in {manifest}")
    names = tuple(sorted({str(rows[t.path][label_key]) for t in kept}))
    if len(names) < 2:
        raise ConfigError(f"need at least 2 distinct {label_key!r} labels, found {list(names)}")
    index = {n: i for i, n in enumerate(names)}
    return LabelledTracks(
        paths=[t.path for t in kept], db=[t.db for t in kept],
        labels=np.array([index[str(rows[t.path][label_key])] for t in kept]),
        groups=[t.group if group_key else t.path for t in kept], label_names=names, frontend=frontend,
        unlabelled=[t.path for t in tracks if label_key not in rows.get(t.path, {})])


def split_tracks(labels: np.ndarray, groups: Sequence[str], *, test_fraction: float = 0.25,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Track-level split, stratified by label: about ``test_fraction`` of each label's groups go to test.

    Every label with at least two groups keeps one on each side. Returns (train, test) track indices.
    """
    if not 0 < test_fraction < 1:
        raise ParameterError(f"test_fraction must be in (0, 1), got {test_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test: list[int] = []
    for lab in np.unique(labels):
        members = [int(i) for i in np.flatnonzero(labels == lab)]
        gs = sorted({groups[i] for i in members})
        rng.shuffle(gs)
        n = min(max(1, int(round(len(gs) * test_fraction))), len(gs) - 1) if len(gs) > 1 else 0
        held = set(gs[:n])
        test.extend(i for i in members if groups[i] in held)
    test_idx = np.array(sorted(test), dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return train_idx, test_idx


def cut_clip(db: np.ndarray, start: int, frames: int, *, top_db: float = 80.0) -> np.ndarray:
    """Frames [start, start + frames) of unreferenced dB mels, silence-padded, as dB in [-top_db, 0]."""
    seg = np.asarray(db[:, start : start + frames], dtype=np.float32)
    if seg.shape[1] < frames:
        seg = np.pad(seg, ((0, 0), (0, frames - seg.shape[1])), constant_values=-np.inf)
    peak = seg.max()
    if not np.isfinite(peak):
        return np.full(seg.shape, -top_db, dtype=np.float32)
    return np.maximum(seg - peak, -top_db)


def clip_starts(n_frames: int, frames: int, hop: int, *, limit: int | None = None) -> list[int]:
    """Start frames of clips every ``hop`` frames that fit in the track (at least one: the first)."""
    starts = list(range(0, max(n_frames - frames, 0) + 1, hop))
    if limit is not None and len(starts) > limit:  # spread over the whole track
        starts = [starts[int(i)] for i in np.linspace(0, len(starts) - 1, limit).round()]
    return starts


def iter_clips(tracks: LabelledTracks, idx: Sequence[int] | np.ndarray, *, hop: int, limit: int | None = None,
               batch: int = 32) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of fixed clips of the tracks ``idx``: (clips (b, n_mels, frames) float32, track index (b,))."""
    fe = tracks.frontend
    items = [(int(i), s) for i in idx for s in clip_starts(tracks.db[int(i)].shape[1], fe.chunk_frames, hop,
                                                             limit=limit)]
    for j in range(0, len(items), batch):
        part = items[j : j + batch]
        yield (np.stack([cut_clip(tracks.db[i], s, fe.chunk_frames, top_db=fe.top_db) for i, s in part]),
               np.array([i for i, _ in part]))
