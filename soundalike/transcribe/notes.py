"""Notes: what a transcription is (onset, offset, MIDI pitch, velocity), to and from MIDI files and MIDI
events, as a piano roll, and as the arrangement-independent note feature a catalog keeps per track.

A catalog compares tracks by what they play, not how it sounds, through the transcription's chroma:
``activation_chroma`` folds the model's per-key frame activations into the 12 pitch classes, four frames
a second (``chroma_sequence`` does the same from notes, a MIDI file's say); ``chroma_feature`` summarises
a sequence in a fixed-length vector (its pitch-class profile and how the harmony moves a quarter second
and a second later) for a first, cosine ranking; ``alignment_score`` then finds how well two sequences line
up at their best time offset and tempo ratio. Another arrangement of a work plays the same harmony in the
same order, whatever the instruments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import ParameterError

#: The lowest and highest MIDI pitch a transcription reports (the 88 keys of a piano).
MIN_PITCH, MAX_PITCH = 21, 108


@dataclass(frozen=True)
class Note:
    """One transcribed (or reference) note: times in seconds, MIDI pitch 0-127, velocity 1-127."""

    onset: float
    offset: float
    pitch: int
    velocity: int = 80

    def to_dict(self) -> dict[str, Any]:
        return {"onset": round(self.onset, 4), "offset": round(self.offset, 4), "pitch": int(self.pitch),
                "velocity": int(self.velocity)}


def note_name(pitch: int) -> str:
    """``60`` -> ``"C4"``."""
    names = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    return f"{names[int(pitch) % 12]}{int(pitch) // 12 - 1}"


def notes_from_events(events: Iterable[tuple[float, Any]], *, end: float | None = None) -> list[Note]:
    """The notes of time-stamped mido channel messages (``(seconds, message)``), drums (channel 10)
    left out: each ``note_on`` is paired with the next ``note_off`` (or velocity-0 ``note_on``) of its
    channel and pitch; a note still sounding at ``end`` (or at the last event) ends there. A repeated
    ``note_on`` of a sounding pitch ends the earlier note."""
    sounding: dict[tuple[int, int], tuple[float, int]] = {}
    notes: list[Note] = []
    last = 0.0
    for t, msg in events:
        last = max(last, float(t))
        if getattr(msg, "channel", 9) == 9 or msg.type not in ("note_on", "note_off"):
            continue
        key = (msg.channel, msg.note)
        if key in sounding:
            start, vel = sounding.pop(key)
            if t > start:
                notes.append(Note(start, float(t), int(msg.note), vel))
        if msg.type == "note_on" and msg.velocity > 0:
            sounding[key] = (float(t), int(msg.velocity))
    stop = last if end is None else float(end)
    for (_, pitch), (start, vel) in sounding.items():
        if stop > start:
            notes.append(Note(start, stop, pitch, vel))
    return sorted(notes, key=lambda n: (n.onset, n.pitch))


def write_midi(notes: Sequence[Note], path: str | Path, *, program: int = 0, bpm: float = 120.0) -> Path:
    """Write ``notes`` as a one-track standard MIDI file (:func:`midi_bytes`), atomically."""
    from soundalike.models.checkpoint import atomic_write

    out = Path(path)
    data = midi_bytes(notes, program=program, bpm=bpm)
    atomic_write(out, lambda tmp: Path(tmp).write_bytes(data))
    return out


def midi_bytes(notes: Sequence[Note], *, program: int = 0, bpm: float = 120.0) -> bytes:
    """``notes`` as the bytes of a one-track standard MIDI file (General MIDI ``program``; 480 ticks per beat
    at ``bpm``, so a note's times survive to the millisecond)."""
    import io

    import mido

    if not 0 <= int(program) <= 127:
        raise ParameterError(f"a General MIDI program is 0-127, got {program}")
    tpb = 480
    tempo = mido.bpm2tempo(bpm)
    per_sec = tpb * 1e6 / tempo
    msgs: list[tuple[int, int, Any]] = []
    for n in notes:
        on = int(round(n.onset * per_sec))
        off = max(on + 1, int(round(n.offset * per_sec)))
        msgs.append((on, 1, mido.Message("note_on", note=int(n.pitch), velocity=int(np.clip(n.velocity, 1, 127)))))
        msgs.append((off, 0, mido.Message("note_off", note=int(n.pitch), velocity=0)))
    msgs.sort(key=lambda m: (m[0], m[1]))  # at one tick, offs before ons (a repeated pitch re-strikes)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    track.append(mido.Message("program_change", program=int(program), time=0))
    now = 0
    for tick, _, msg in msgs:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    mid = mido.MidiFile(ticks_per_beat=tpb)
    mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def read_midi(path: str | Path) -> list[Note]:
    """The notes of a standard MIDI file (every track; drums left out)."""
    import mido

    try:
        mid = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise ParameterError(f"{Path(path).name} is not a readable MIDI file ({exc})") from exc
    events: list[tuple[float, Any]] = []
    t = 0.0
    for msg in mid:
        t += msg.time
        if not msg.is_meta:
            events.append((t, msg))
    return notes_from_events(events, end=t)


def piano_roll(notes: Sequence[Note], *, fps: float = 50.0, duration: float | None = None) -> np.ndarray:
    """A binary piano roll [shape=(128, frames)] of ``notes`` at ``fps`` frames per second."""
    end = duration if duration is not None else max((n.offset for n in notes), default=0.0)
    roll = np.zeros((128, int(np.ceil(end * fps)) + 1), bool)
    for n in notes:
        a = int(round(n.onset * fps))
        b = max(a + 1, int(round(n.offset * fps)))
        roll[int(n.pitch), a:b] = True
    return roll


#: Frames per second of :func:`chroma_sequence`, and the most of a track it keeps.
CHROMA_FPS = 4.0
CHROMA_MAX_SECONDS = 600.0


def chroma_sequence(notes: Sequence[Note], *, fps: float = CHROMA_FPS,
                    max_seconds: float = CHROMA_MAX_SECONDS) -> np.ndarray:
    """Which pitch classes sound when: [shape=(frames, 12), float32], each frame the time each pitch class
    sounds in it (notes capped at 2 s, so a held drone does not outweigh the harmony), L2-normalised
    (silent frames stay zero); the first ``max_seconds`` only."""
    end = min(max((n.offset for n in notes), default=0.0), max_seconds)
    n_frames = int(np.ceil(end * fps))
    out = np.zeros((n_frames, 12), np.float64)
    for n in notes:
        a, b = n.onset * fps, min(n.offset, n.onset + 2.0, end) * fps
        for f in range(int(a), min(n_frames, int(np.ceil(b)))):
            out[f, n.pitch % 12] += max(0.0, min(b, f + 1) - max(a, f))
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def activation_chroma(frame: np.ndarray, fps: float, *, min_pitch: int = MIN_PITCH, out_fps: float = CHROMA_FPS,
                      max_seconds: float = CHROMA_MAX_SECONDS, floor: float = 0.1) -> np.ndarray:
    """The chroma sequence [shape=(frames, 12), float32] of frame activations [shape=(keys, T)] (key 0 is
    ``min_pitch``) at ``fps``: each pitch class's activation summed over octaves, averaged over ``out_fps``
    frames, L2-normalised; frames whose strongest class is under ``floor`` (nothing sounds) are zero."""
    frame = np.asarray(frame, np.float64)[:, : int(max_seconds * fps)]
    pc = np.zeros((12, frame.shape[1]))
    for k in range(frame.shape[0]):
        pc[(k + min_pitch) % 12] += frame[k]
    n = int(np.floor(pc.shape[1] / fps * out_fps + 1e-9))  # whole output frames only
    if n == 0:
        return np.zeros((0, 12), np.float32)
    edges = np.floor(np.arange(n + 1) * fps / out_fps + 1e-9).astype(np.int64)  # output frame j: [edges j, j+1)
    csum = np.concatenate([np.zeros((12, 1)), np.cumsum(pc, axis=1)], axis=1)
    pooled = ((csum[:, edges[1:]] - csum[:, edges[:-1]]) / np.maximum(1, np.diff(edges))).T
    pooled[pooled.max(axis=1) < floor] = 0.0
    norm = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.where(norm > 0, norm, 1.0)).astype(np.float32)


#: Length of :func:`chroma_feature`: the pitch-class profile (12), and pitch-class co-occurrences a quarter
#: second (144) and a second (144) apart.
FEATURE_DIM = 12 + 144 + 144


def chroma_feature(seq: np.ndarray) -> np.ndarray:
    """The fixed-length summary of a chroma sequence (see :data:`FEATURE_DIM`), float32, L2-normalised (each
    block too, so each counts the same); all zeros for a sequence without sound."""
    seq = np.asarray(seq, np.float64)
    out = np.zeros(FEATURE_DIM, np.float32)
    if not len(seq) or not seq.any():
        return out
    blocks = [seq.mean(axis=0)]
    for lag in (1, int(CHROMA_FPS)):
        a, b = seq[:-lag], seq[lag:]
        blocks.append((a[:, :, None] * b[:, None, :]).sum(axis=0).ravel() if len(a) else np.zeros(144))
    v = np.concatenate([x / (np.linalg.norm(x) + 1e-12) for x in blocks])
    return (v / (np.linalg.norm(v) + 1e-12)).astype(np.float32)


#: Tempo ratios :func:`alignment_score` tries (another arrangement may be played a little faster or slower).
TEMPO_RATIOS: tuple[float, ...] = (0.8, 0.89, 1.0, 1.12, 1.25)


def alignment_score(a: np.ndarray, b: np.ndarray, *, ratios: Sequence[float] = TEMPO_RATIOS,
                    min_overlap: float = 0.5) -> float:
    """How well chroma sequences ``a`` and ``b`` (:func:`chroma_sequence`) line up: the best, over
    ``b`` stretched by each of ``ratios`` and every time offset where they overlap by at least ``min_overlap``
    of the shorter, of the mean frame cosine over the overlap (0-1; 0 when either is empty)."""
    if not len(a) or not len(b):
        return 0.0
    best = 0.0
    for r in ratios:
        n = max(1, int(round(len(b) * r)))
        bs = b[np.minimum((np.arange(n) / r).astype(np.int64), len(b) - 1)]
        size = len(a) + n - 1
        nfft = 1 << (size - 1).bit_length()
        fa = np.fft.rfft(a, nfft, axis=0)
        fb = np.fft.rfft(bs[::-1], nfft, axis=0)
        corr = np.fft.irfft(fa * fb, nfft, axis=0)[:size].sum(axis=1)  # lag k: a[t] . bs[t - (k - n + 1)]
        # frames where both have sound, at every lag: the overlap the mean is over
        ca = np.fft.rfft((np.abs(a).sum(axis=1) > 0).astype(np.float64), nfft)
        cb = np.fft.rfft((np.abs(bs).sum(axis=1) > 0).astype(np.float64)[::-1], nfft)
        both = np.rint(np.fft.irfft(ca * cb, nfft)[:size])
        need = max(1.0, min_overlap * min(len(a), n))
        ok = both >= need
        if ok.any():
            best = max(best, float((corr[ok] / both[ok]).max()))
    return float(min(1.0, best))
