"""From frame-wise activations to notes (Onsets and Frames' decoding).

A note starts at a peak of a key's onset activation above ``onset_threshold`` (``reonset_threshold`` when
the key is sounding already); it sounds while the frame
activation stays above ``frame_threshold`` (or the offset activation stays below ``offset_threshold``)
and ends when it drops, or where the same key's next onset starts. Its velocity is the velocity head at
the onset. Notes shorter than ``min_seconds`` are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from soundalike.transcribe.notes import MIN_PITCH, Note


@dataclass
class NoteDecoder:
    """How activations become notes; stored with the model (thresholds chosen on validation renders)."""

    onset_threshold: float = 0.5
    frame_threshold: float = 0.4
    offset_threshold: float = 0.6  # a note also ends where the offset head is this sure
    min_seconds: float = 0.03
    reonset_threshold: float = 0.0  # an onset peak while the key already sounds needs at least this (re-strikes
    # are rarer than a sustained note's swells: vibrato, tremolo, a choir's breath)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> NoteDecoder:
        known = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in (d or {}).items() if k in known})


def onset_peaks(onset: np.ndarray, threshold: float) -> np.ndarray:
    """(key, frame) of local maxima (over 3 frames) of ``onset`` [shape=(keys, T)] above ``threshold``."""
    prev = np.pad(onset, ((0, 0), (1, 0)))[:, :-1]
    nxt = np.pad(onset, ((0, 0), (0, 1)))[:, 1:]
    peak = (onset >= threshold) & (onset >= prev) & (onset > nxt)
    return np.argwhere(peak)


def decode_notes(act: np.ndarray, *, fps: float, decoder: NoteDecoder | None = None,
                 min_pitch: int = MIN_PITCH) -> list[Note]:
    """Notes from activations [shape=(4, keys, T)] (onset, frame, offset, velocity), sorted by onset."""
    d = decoder or NoteDecoder()
    onset, frame, offset, velocity = act[0], act[1], act[2], act[3]
    n_frames = act.shape[-1]
    peaks = onset_peaks(onset, d.onset_threshold)
    if d.reonset_threshold > d.onset_threshold and len(peaks):  # the key sounds already: a stricter onset
        keys, frames = peaks[:, 0], peaks[:, 1]
        sounding = (frames > 0) & (frame[keys, np.maximum(frames - 1, 0)] >= d.frame_threshold)
        peaks = peaks[~sounding | (onset[keys, frames] >= d.reonset_threshold)]
    notes: list[Note] = []
    by_key: dict[int, list[int]] = {}
    for k, f in peaks:
        by_key.setdefault(int(k), []).append(int(f))
    for k, starts in by_key.items():
        starts.sort()
        for i, f0 in enumerate(starts):
            limit = starts[i + 1] if i + 1 < len(starts) else n_frames
            f = f0 + 1
            while f < limit and frame[k, f] >= d.frame_threshold and offset[k, f] < d.offset_threshold:
                f += 1
            if f < limit and offset[k, f] >= d.offset_threshold:
                f += 1  # the offset frame is the note's last
            on, off = f0 / fps, f / fps
            if off - on < d.min_seconds:
                continue
            vel = int(np.clip(round(float(velocity[k, f0]) * 127), 1, 127))
            notes.append(Note(round(on, 4), round(off, 4), k + min_pitch, vel))
    return sorted(notes, key=lambda n: (n.onset, n.pitch))
