"""Training sets for tag heads, one loader per source, all giving a :class:`TagData`.

Every loader cuts log-mel chunks with the encoder's own front-end, runs the
frozen encoder once, and keeps what the head reads (``head.head_input`` of the
encoder's block maps) as float16, so a head trains without re-running the
encoder:

- :func:`teacher_data`: musicnn's soft scores (:mod:`soundalike.tagging.teacher`), one chunk per teacher
  row, cut at exactly the row's start (musicnn's rows are 2.992 s apart);
- :func:`instrument_data`: rendered General MIDI notes and phrases, one chunk per clip, labelled by family
  (:mod:`soundalike.data.instruments`);
- :func:`fma_data`: FMA tracks (:mod:`soundalike.data.fma`), every chunk labelled with the track's top genre.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from soundalike.errors import AudioDecodeError, DatasetError, ParameterError

#: Frames between timeline chunk starts for the default front-end: 64 x 512 / 22050 = 1.49 s.
TIMELINE_HOP_FRAMES = 64


@dataclass
class TagData:
    """Head inputs with targets: soft scores [shape=(n, n_tags)] (multi-label) or class indices [shape=(n,)]."""

    inputs: np.ndarray  # float16 [shape=(n, ...)]: what the head reads
    targets: np.ndarray
    groups: np.ndarray  # int64 [shape=(n,)]: the track or clip each row comes from (split by it, never by row)
    tags: tuple[str, ...]
    multi_label: bool
    source: dict[str, Any] = field(default_factory=dict)
    group_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.inputs)

    def subset(self, mask: np.ndarray) -> TagData:
        return TagData(self.inputs[mask], self.targets[mask], self.groups[mask], self.tags, self.multi_label,
                       dict(self.source), list(self.group_names))


def chunks_at(encoder: Any, samples: np.ndarray, starts: Sequence[int] | None = None, *,
              hop_frames: int = TIMELINE_HOP_FRAMES) -> tuple[Any, np.ndarray]:
    """Log-mel chunks (dB, each relative to its own maximum) starting at frame ``starts`` (those that fit),
    or every ``hop_frames``; a clip shorter than one chunk gives one chunk padded with silence.

    returns (torch [shape=(n, n_mels, chunk_frames)], the start frame of each chunk [shape=(n,)])
    """
    import torch

    from soundalike.features.mel import MelFrontend, chunk_power, power_to_db

    fe = encoder.frontend
    power = MelFrontend(fe)(np.asarray(samples, dtype=np.float32))
    n_frames = int(power.shape[-1])
    if starts is None:
        ch = chunk_power(power, chunk_frames=fe.chunk_frames, hop_frames=hop_frames)
        first = np.arange(len(ch)) * hop_frames
    else:
        first = np.asarray([s for s in starts if s + fe.chunk_frames <= n_frames or s == 0], dtype=np.int64)
        if not len(first):
            return torch.zeros((0, fe.n_mels, fe.chunk_frames)), first
        if n_frames < fe.chunk_frames:
            power = torch.nn.functional.pad(power, (0, fe.chunk_frames - n_frames))
        ch = torch.stack([power[:, s : s + fe.chunk_frames] for s in first])
    return power_to_db(ch, amin=fe.amin, top_db=fe.top_db), first


def head_inputs(encoder: Any, head: Any, chunks: Any, *, batch_size: int = 64) -> np.ndarray:
    """What ``head`` reads for each log-mel chunk [shape=(n, n_mels, chunk_frames)], as float16."""
    import torch

    tap = int(head.config.tap)
    upto = tap + 1 if tap >= 0 else None
    raw = bool(getattr(head, "reads_chunks", False))  # a baseline that reads the log-mel itself
    encoder._prepare()
    x = torch.as_tensor(chunks, dtype=torch.float32)
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            b = x[i : i + batch_size]
            out.append(head.head_input(b if raw else encoder.net.trunk(b, upto)).to(torch.float16).numpy())
    if not out:
        raise DatasetError("no chunks to compute head inputs for")
    return np.concatenate(out)


def _progress(items: Sequence[Any], desc: str, on: bool) -> Iterable[Any]:
    if not on:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="file", dynamic_ncols=True)


def _collect(rows: Iterator[tuple[np.ndarray, np.ndarray, str]], tags: Sequence[str], multi_label: bool,
             source: dict[str, Any]) -> TagData:
    xs, ys, gs = [], [], []
    names: list[str] = []
    for x, y, name in rows:
        xs.append(x)
        ys.append(y)
        gs.append(np.full(len(x), len(names), dtype=np.int64))
        names.append(name)
    if not xs:
        raise DatasetError(f"no training chunks came out of {source.get('dataset', 'the data set')}")
    return TagData(np.concatenate(xs), np.concatenate(ys), np.concatenate(gs), tuple(tags), multi_label, source, names)


def teacher_data(encoder: Any, head: Any, teacher: Any, *, paths: Sequence[str] | None = None,
                 max_seconds: float = 600.0, views: int = 0, seed: int = 0, progress: bool = False) -> TagData:
    """One chunk per teacher row, cut at the row's start frame, with the row's soft scores as targets.

    ``teacher``: :class:`~soundalike.tagging.teacher.TeacherTags`; ``paths``: a subset of its files;
    ``views``: more copies of each track with :func:`vary_timbre` and the same targets (training only).
    Files that no longer decode are skipped (and listed in ``source['skipped']``).
    """
    from soundalike.audio.io import decode

    fe = encoder.frontend
    wanted = list(paths) if paths is not None else sorted(teacher.scores)
    frames_per_row = teacher.chunk_seconds * fe.sample_rate / fe.hop_length
    skipped: list[str] = []
    rng = np.random.default_rng(seed)

    def rows() -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
        for path in _progress(wanted, "teacher set", progress):
            scores = teacher.scores[path]
            try:
                audio = decode(path, sr=fe.sample_rate, duration=max_seconds, max_duration=None)
            except AudioDecodeError:
                skipped.append(path)
                continue
            starts = np.round(np.arange(len(scores)) * frames_per_row).astype(np.int64)
            for v in range(views + 1):
                y = audio.samples if v == 0 else vary_timbre(audio.samples, fe.sample_rate, rng)
                chunks, first = chunks_at(encoder, y, starts)
                if len(first):
                    yield head_inputs(encoder, head, chunks), scores[np.searchsorted(starts, first)], path

    source = {"dataset": "teacher", "teacher": {k: teacher.info.get(k) for k in ("model", "musicnn", "numpy")},
              "files": len(wanted), "skipped": skipped, "views": views}
    return _collect(rows(), teacher.tags, True, source)


def vary_timbre(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A random recording-like change of one clip: EQ (up to +-12 dB in 3 bands), reverb half the time,
    and noise at 20-40 dB SNR; so a head learns instrument families, not one soundfont's samples."""
    from soundalike.augment import waveform as W

    out = W.random_eq(y, sr, rng, max_db=12.0)
    if rng.random() < 0.5:
        out = W.reverb(out, sr, rng, rt60=float(rng.uniform(0.2, 1.2)), wet=float(rng.uniform(0.1, 0.4)))
    out = W.add_noise(out, float(rng.uniform(20.0, 40.0)), rng, "pink" if rng.random() < 0.5 else "white")
    return out[: len(y)].astype(np.float32)


def instrument_data(encoder: Any, head: Any, clips: Any, *, views: int = 0, seed: int = 0) -> TagData:
    """One chunk per rendered clip (:class:`~soundalike.data.instruments.InstrumentClips`, rendered at the
    encoder's sample rate), labelled by General MIDI family; ``views`` more copies of each clip with
    :func:`vary_timbre` (training only)."""
    fe = encoder.frontend
    if clips.sample_rate != fe.sample_rate:
        raise ParameterError(f"clips are at {clips.sample_rate} Hz; render them at the encoder's {fe.sample_rate} Hz")
    import torch

    rng = np.random.default_rng(seed)

    def rows() -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
        for i, wave in enumerate(clips.waves):
            waves = [wave] + [vary_timbre(wave, fe.sample_rate, rng) for _ in range(views)]
            chunks = [chunks_at(encoder, w, [0])[0] for w in waves]
            yield (head_inputs(encoder, head, torch.cat(chunks)), np.repeat(clips.families[i : i + 1], len(waves)),
                   f"program {clips.programs[i]} clip {i}")

    source = {"dataset": "instruments", "soundfont": clips.soundfont, "clips": len(clips.waves), "views": views}
    return _collect(rows(), clips.family_names, False, source)


def fma_data(encoder: Any, head: Any, tracks: Sequence[Any], *, genres: Sequence[str] | None = None,
             hop_frames: int | None = None, progress: bool = False) -> TagData:
    """Every chunk of each FMA track (:class:`~soundalike.data.fma.FmaTrack`), labelled with its top genre.

    ``genres`` fixes the label order (default: sorted genres of ``tracks``). Undecodable MP3s (FMA has a
    few) are skipped and listed in ``source['skipped']``.
    """
    from soundalike.audio.io import decode

    fe = encoder.frontend
    names = list(genres) if genres is not None else sorted({t.genre_top for t in tracks})
    index = {g: i for i, g in enumerate(names)}
    skipped: list[str] = []

    def rows() -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
        for t in _progress(list(tracks), "FMA set", progress):
            if t.genre_top not in index:
                continue
            try:
                audio = decode(t.path, sr=fe.sample_rate, max_duration=None)
            except AudioDecodeError:
                skipped.append(t.path)
                continue
            chunks, _ = chunks_at(encoder, audio.samples, hop_frames=hop_frames or fe.chunk_frames)
            yield (head_inputs(encoder, head, chunks), np.full(len(chunks), index[t.genre_top], dtype=np.int64),
                   t.path)

    source = {"dataset": "fma", "tracks": len(tracks), "skipped": skipped}
    return _collect(rows(), names, False, source)
