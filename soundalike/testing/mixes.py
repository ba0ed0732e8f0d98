"""Generated long recordings made of catalog tracks, with the truth of what plays when.

:func:`make_mix` strings excerpts of given tracks together the way a DJ mix or a radio hour does:
crossfades, small tempo nudges, background noise, talk over the music, and stretches of music that is in
no catalog. :func:`score_segments` compares found segments with the truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrueSegment:
    track: int  # index into the tracks given to make_mix
    start: float  # seconds into the mix
    end: float
    offset: float  # seconds into the track at ``start``


def make_mix(tracks: Sequence[np.ndarray], sr: int, *, order: Sequence[int], seconds: Sequence[float],
             seed: int = 0, crossfade: float = 2.0, tempo_nudge: float = 0.02, snr_db: float | None = 20.0,
             talk: int = 1, fillers: Sequence[np.ndarray] = (), filler_seconds: float = 12.0
             ) -> tuple[np.ndarray, list[TrueSegment]]:
    """A mix of excerpts: ``order[i]`` (an index into ``tracks``, or -1 for the next of ``fillers``, music
    in no catalog) plays for ``seconds[i]`` from a random offset, tempo nudged by up to ``tempo_nudge``,
    crossfaded over ``crossfade`` s into the next; then noise at ``snr_db`` and ``talk`` bursts of
    speech-like noise over the music. Returns (mix, the catalog segments as heard), boundaries at the
    crossfades' midpoints."""
    from soundalike.augment.waveform import add_noise, time_stretch
    from soundalike.testing.ood import ood_clip

    rng = np.random.default_rng(seed)
    fade = int(crossfade * sr)
    parts: list[tuple[int, np.ndarray, float, float]] = []  # (track or -1, audio, offset, rate)
    fill = iter(fillers)
    for ti, secs in zip(order, seconds, strict=True):
        src = next(fill) if ti < 0 else tracks[ti]
        secs = filler_seconds if ti < 0 else secs
        rate = 1.0 + float(rng.uniform(-tempo_nudge, tempo_nudge)) if ti >= 0 else 1.0
        need = int((secs + crossfade) * rate * sr)
        if len(src) < need:
            raise ValueError(f"track {ti} is shorter than the {secs + crossfade:.1f} s asked of it")
        at = int(rng.integers(0, len(src) - need + 1))
        y = src[at : at + need].astype(np.float32)
        if rate != 1.0:
            y = time_stretch(y, rate)
        parts.append((ti, y, at / sr, rate))
    out = np.zeros(sum(len(p[1]) for p in parts), np.float32)
    truth: list[TrueSegment] = []
    pos = 0
    for i, (ti, part, off, rate) in enumerate(parts):
        y = part.copy()
        if i > 0:
            y[:fade] *= np.linspace(0.0, 1.0, fade, dtype=np.float32)
        if i < len(parts) - 1:
            y[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        out[pos : pos + len(y)] += y
        start = pos / sr + (crossfade / 2 if i > 0 else 0.0)
        end = (pos + len(y)) / sr - (crossfade / 2 if i < len(parts) - 1 else 0.0)
        if ti >= 0:
            truth.append(TrueSegment(int(ti), start, end, off + (start - pos / sr) * rate))
        pos += len(y) - fade
    out = out[: pos + fade]
    if truth:
        truth[-1] = TrueSegment(truth[-1].track, truth[-1].start, min(truth[-1].end, len(out) / sr), truth[-1].offset)
    for k in range(talk):  # a presenter talks over the music for a few seconds
        n = int(4.0 * sr)
        at = int(rng.integers(0, max(1, len(out) - n)))
        voice = ood_clip("speech_noise", seed * 100 + k, sr=sr, duration=4.0)
        out[at : at + n] += 0.5 * voice[: len(out[at : at + n])]
    if snr_db is not None:
        out = add_noise(out, snr_db, rng, "pink")
    peak = float(np.abs(out).max())
    return (out * (0.9 / peak) if peak > 0 else out).astype(np.float32), truth


def score_segments(found: Sequence[tuple[int, float, float]], truth: Sequence[TrueSegment], *,
                   min_overlap: float = 0.5) -> dict[str, float]:
    """Precision and recall of found ``(track, start, end)`` against the truth: a found segment is right
    when it names a true segment's track and overlaps it by at least ``min_overlap`` of the shorter of the
    two; and the worst boundary error (s) over the right ones."""
    used: set[int] = set()
    right = 0
    worst = 0.0
    for track, start, end in found:
        for j, t in enumerate(truth):
            if j in used or t.track != track:
                continue
            inter = min(end, t.end) - max(start, t.start)
            if inter >= min_overlap * min(end - start, t.end - t.start):
                used.add(j)
                right += 1
                worst = max(worst, abs(start - t.start), abs(end - t.end))
                break
    return {"precision": right / len(found) if found else 1.0, "recall": len(used) / len(truth) if truth else 1.0,
            "max_boundary_error": worst, "found": len(found), "true": len(truth)}
