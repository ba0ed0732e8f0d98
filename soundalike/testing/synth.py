"""Generated, seeded audio for tests: tones, chirps, noise, and little 'tracks'."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tone(freq: float, *, sr: int = 22050, duration: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    """A sine at ``freq`` Hz. Returns float32 [shape=(round(sr * duration),)]."""
    t = np.arange(int(round(sr * duration))) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chirp(fmin: float, fmax: float, *, sr: int = 22050, duration: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    """An exponential sweep from ``fmin`` to ``fmax`` Hz."""
    t = np.arange(int(round(sr * duration))) / sr
    k = np.log(fmax / fmin) / duration
    phase = 2 * np.pi * fmin * (np.exp(k * t) - 1) / k
    return (amplitude * np.sin(phase)).astype(np.float32)


def noise(*, sr: int = 22050, duration: float = 1.0, amplitude: float = 0.1, seed: int = 0) -> np.ndarray:
    return (amplitude * np.random.default_rng(seed).standard_normal(int(round(sr * duration)))).astype(np.float32)


def synth_track(seed: int, *, sr: int = 22050, duration: float = 30.0) -> np.ndarray:
    """A 'track' with its own scale, timbre, tempo and drum pattern, fixed by ``seed``.

    Different seeds sound clearly different; excerpts of one seed share its character.
    """
    rng = np.random.default_rng(seed)
    n = int(round(sr * duration))
    y = np.zeros(n, np.float64)
    tempo = rng.uniform(70, 160)
    beat = 60.0 / tempo
    root = rng.uniform(110, 440)
    scale = root * 2 ** (np.array(sorted(rng.choice(12, size=5, replace=False))) / 12)
    harmonics = rng.uniform(0, 1, size=6) ** 2
    bright = rng.uniform(0.5, 3.0)
    t_note = np.arange(int(beat * sr)) / sr
    env = np.exp(-t_note * rng.uniform(2, 8))
    for i in range(int(duration / beat)):
        f = scale[rng.integers(len(scale))] * (2 if rng.random() < 0.3 else 1)
        note = sum(h * np.sin(2 * np.pi * f * (k + 1) * t_note) / (k + 1) ** bright for k, h in enumerate(harmonics))
        s = int(i * beat * sr)
        e = min(n, s + len(note))
        y[s:e] += (note * env)[: e - s]
    if rng.random() < 0.7:  # drums
        hit = rng.standard_normal(int(0.05 * sr)) * np.exp(-np.arange(int(0.05 * sr)) / (0.01 * sr))
        every = int(rng.choice([1, 2]))
        for i in range(0, int(duration / beat), every):
            s = int(i * beat * sr)
            e = min(n, s + len(hit))
            y[s:e] += 0.5 * hit[: e - s]
    y /= max(1e-9, np.abs(y).max())
    return (0.8 * y).astype(np.float32)


def write_tracks(folder: str | Path, seeds: list[int], *, sr: int = 22050, duration: float = 30.0,
                 suffix: str = ".wav") -> list[Path]:
    """Write :func:`synth_track` for each seed as ``folder/track_SEED.suffix``."""
    from soundalike.audio.io import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [save(folder / f"track_{s:03d}{suffix}", synth_track(s, sr=sr, duration=duration), sr) for s in seeds]


#: Register (root frequency, Hz) and pulse of each generated class: low and slow, middle, high and fast.
CLASS_STYLES = ((110.0, 70.0), (440.0, 110.0), (1760.0, 160.0), (55.0, 180.0), (880.0, 60.0))


def class_track(label: int, seed: int, *, sr: int = 22050, duration: float = 30.0) -> np.ndarray:
    """A track of class ``label`` (0-4): notes around the class's register at about its tempo.

    Tracks of one class share register and pulse; the notes, timbre and exact tempo vary with ``seed``.
    """
    if not 0 <= label < len(CLASS_STYLES):
        raise ValueError(f"label must be in 0..{len(CLASS_STYLES) - 1}")
    rng = np.random.default_rng(1000 * label + seed)
    root, bpm = CLASS_STYLES[label]
    n = int(round(sr * duration))
    beat = 60.0 / (bpm * rng.uniform(0.9, 1.1))
    t_note = np.arange(int(beat * sr)) / sr
    env = np.exp(-t_note * rng.uniform(3, 6))
    harmonics = rng.uniform(0.2, 1.0, size=4)
    y = np.zeros(n)
    for i in range(int(duration / beat)):
        f = root * 2 ** (rng.integers(0, 12) / 12)
        note = sum(h * np.sin(2 * np.pi * f * (k + 1) * t_note) / (k + 1) for k, h in enumerate(harmonics))
        s = int(i * beat * sr)
        e = min(n, s + len(note))
        y[s:e] += (note * env)[: e - s]
    y += 0.01 * rng.standard_normal(n)
    return (0.8 * y / max(1e-9, np.abs(y).max())).astype(np.float32)


def write_labelled_tracks(folder: str | Path, *, classes: int = 3, per_class: int = 6, sr: int = 12000,
                          duration: float = 45.0) -> Path:
    """Write ``classes`` x ``per_class`` :func:`class_track` WAVs and a manifest.jsonl (label = class name)."""
    import json

    from soundalike.audio.io import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for label in range(classes):
        for i in range(per_class):
            path = save(folder / f"class{label}_{i:02d}.wav", class_track(label, i, sr=sr, duration=duration), sr)
            rows.append({"path": path.name, "label": f"class{label}"})
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def write_mod(seconds: float = 8.0, *, period: int = 428, seed: int = 0) -> bytes:
    """A minimal 4-channel ProTracker module ("M.K."): one looped square-wave sample playing a note every 8 rows,
    its one pattern repeated to last about ``seconds`` (7.68 s per pattern at speed 6, 125 BPM). For tests of
    the tracker-module path; FFmpeg's libopenmpt renders it."""
    import struct

    rng = np.random.default_rng(seed)
    half = 16 + int(rng.integers(0, 16))
    sample = (([100] * half + [-100] * half) * 8)[:512]
    header = bytearray(b"soundalike test".ljust(20, b"\0"))
    header += b"square".ljust(22, b"\0") + struct.pack(">HBBHH", len(sample) // 2, 0, 64, 0, len(sample) // 2)
    header += (b"\0" * 22 + struct.pack(">HBBHH", 0, 0, 0, 0, 1)) * 30
    repeats = max(1, min(128, round(seconds / 7.68)))
    header += bytes([repeats, 127]) + bytes(128) + b"M.K."
    pattern = bytearray(64 * 4 * 4)
    for row in range(0, 64, 8):
        p = period + (row // 8) * 16
        cell = bytes([(1 & 0xF0) | (p >> 8), p & 0xFF, (1 & 0x0F) << 4, 0])
        pattern[row * 16 : row * 16 + 4] = cell
    return bytes(header) + bytes(pattern) + bytes(np.array(sample, dtype=np.int8).tobytes())


def click_track(beats: np.ndarray, *, sr: int = 22050, duration: float | None = None, accent_every: int = 4,
                amplitude: float = 0.5) -> np.ndarray:
    """A metronome: a 30 ms click (a decaying 1.5 kHz ping over a noise burst) at each time in ``beats`` (s),
    every ``accent_every``-th one higher (2.5 kHz) and louder, as a downbeat. Returns float32 of ``duration``
    s (default: to 1 s after the last click)."""
    beats = np.asarray(beats, np.float64)
    total = duration if duration is not None else (float(beats.max()) + 1.0 if len(beats) else 1.0)
    y = np.zeros(int(round(sr * total)), np.float32)
    t = np.arange(int(0.03 * sr)) / sr
    env = np.exp(-t / 0.006)
    burst = np.random.default_rng(0).standard_normal(len(t)) * 0.3
    for i, b in enumerate(beats):
        accent = accent_every > 0 and i % accent_every == 0
        click = (np.sin(2 * np.pi * (2500.0 if accent else 1500.0) * t) + burst) * env * (1.0 if accent else 0.6)
        start = int(round(b * sr))
        seg = click[: max(0, len(y) - start)]
        y[start : start + len(seg)] += (amplitude * seg).astype(np.float32)
    return y


def harmonic_notes(notes: list[tuple[float, float, int]], *, sr: int = 22050, duration: float | None = None,
                   harmonics: int = 8, amplitude: float = 0.2, seed: int = 0) -> np.ndarray:
    """Notes ``(onset s, offset s, MIDI pitch)`` as plucked-string-like tones: ``harmonics`` partials at
    1/h amplitude, a 5 ms attack, a decay, and a 40 ms release after the offset; each partial's phase random
    (``seed``)."""
    rng = np.random.default_rng(seed)
    end = duration if duration is not None else max((b for _, b, _ in notes), default=0.0) + 0.5
    y = np.zeros(int(end * sr), np.float64)
    for on, off, pitch in notes:
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        a, b = int(on * sr), min(len(y), int((off + 0.04) * sr))
        t = np.arange(b - a) / sr
        env = np.minimum(1.0, t / 0.005) * np.exp(-t * 1.5)
        env[t > off - on] *= np.exp(-(t[t > off - on] - (off - on)) / 0.012)
        tone = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi)) / h
                   for h in range(1, harmonics + 1) if f0 * h < sr / 2)
        y[a:b] += amplitude * env * tone
    return y.astype(np.float32)
