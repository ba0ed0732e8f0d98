"""Generated music whose every event is known: the events models' training and test material.

:func:`generate_piece` writes a short piece as General MIDI events — a tempo (steady, ramped or
stepped), a metre, swing or not, a drum part from pattern templates with variations and fills, a bass,
chords and a melody on random General MIDI programs — and returns with it the exact times of every note
onset, beat, downbeat and kick / snare / hi-hat hit. :func:`render_piece` renders it with a soundfont
(:func:`soundalike.data.render.synthesize`). Train with ``TimGM6mb.sf2`` (inside ``pretty_midi``) and
the OPL3 FM font; keep Debian's ``fluid-soundfont-gm`` unseen for testing.

The piece is a pure function of its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Drum classes the models transcribe, and the General MIDI drum notes each one covers.
DRUM_CLASSES: dict[str, tuple[int, ...]] = {
    "kick": (35, 36),
    "snare": (37, 38, 39, 40),  # side stick, snares, hand clap
    "hihat": (42, 44, 46),  # closed, pedal, open
}
#: Other drum notes a part may play (toms, cymbals, percussion): onsets, but none of the classes.
OTHER_DRUMS: tuple[int, ...] = (41, 43, 45, 47, 48, 50, 49, 57, 51, 53, 54, 56, 75, 76)

# one bar of 16ths per line, "x": hit (velocity high), "o": softer hit, ".": nothing
_PATTERNS_4: dict[str, dict[int, str]] = {
    "rock": {36: "x.......x.x.....", 38: "....x.......x...", 42: "x.x.x.x.x.x.x.x."},
    "four_on_floor": {36: "x...x...x...x...", 39: "....x.......x...", 42: "..x...x...x...x.", 46: "..o...o...o...o."},
    "halftime": {36: "x.........x.....", 38: "........x.......", 42: "x.x.x.x.x.x.x.x."},
    "breakbeat": {36: "x.........x..x..", 38: "....x..o.o..x...", 42: "x.x.x.x.x.x.x.xo"},
    "sixteenths": {36: "x.....x...x.....", 38: "....x.......x...", 42: "xoxoxoxoxoxoxoxo"},
    "shuffle": {36: "x.......x.......", 38: "....x.......x...", 42: "x..ox..ox..ox..o"},
    "disco": {36: "x...x...x...x...", 38: "....x.......x...", 46: "..x...x...x...x.", 42: "x...x...x...x..."},
    "funk": {36: "x..x..x...x.....", 38: "....x..o.o..x..o", 42: "xxxxxxxxxxxxxxxx"},
    "ride_jazz": {36: "x.......x.......", 44: "....x.......x...", 51: "x...x.xox...x.xo", 38: "..........o....."},
}
_PATTERNS_3: dict[str, dict[int, str]] = {
    "waltz": {36: "x...........", 38: "....x...x...", 42: "x.x.x.x.x.x."},
    "six_eight": {36: "x.....x.....", 38: "......x.....", 42: "x.xx.xx.xx.x"},
}


@dataclass
class Piece:
    """A generated piece: MIDI channel events and the exact times (s) of what happens in it."""

    seed: int
    events: list[tuple[float, Any]]  # (time_s, mido message), time-ordered
    seconds: float
    onsets: np.ndarray  # every note onset, hits closer than 30 ms merged [shape=(n,)]
    beats: np.ndarray
    downbeats: np.ndarray
    drums: dict[str, np.ndarray] = field(default_factory=dict)  # class -> hit times
    drum_velocities: dict[str, np.ndarray] = field(default_factory=dict)  # class -> 1..127
    tempo: float = 120.0  # median BPM
    beats_per_bar: int = 4
    style: str = ""

    def labels(self) -> dict[str, Any]:
        """The events as a JSON-friendly dict (times rounded to 0.1 ms)."""
        r = lambda a: [round(float(t), 4) for t in a]  # noqa: E731
        return {"seed": self.seed, "seconds": round(self.seconds, 3), "tempo": round(self.tempo, 2),
                "beats_per_bar": self.beats_per_bar, "style": self.style, "onsets": r(self.onsets),
                "beats": r(self.beats), "downbeats": r(self.downbeats),
                "drums": {k: r(v) for k, v in self.drums.items()}}


def merge_close(times: np.ndarray, within: float = 0.03) -> np.ndarray:
    """Sorted unique times, those within ``within`` s of the previous kept one dropped."""
    out: list[float] = []
    for t in np.sort(np.asarray(times, np.float64)):
        if not out or t - out[-1] >= within:
            out.append(float(t))
    return np.asarray(out, np.float64)


def _beat_times(rng: np.random.Generator, n_beats: int, bpm: float) -> tuple[np.ndarray, str]:
    """Times of ``n_beats + 1`` beats: a steady tempo, a ramp, a step, or a little human drift."""
    kind = rng.choice(["steady", "steady", "ramp", "step", "drift"])
    tempo = np.full(n_beats, bpm)
    if kind == "ramp":
        tempo = bpm * np.linspace(1.0, float(rng.uniform(0.85, 1.18)), n_beats)
    elif kind == "step":
        at = int(rng.integers(n_beats // 3, max(n_beats // 3 + 1, 2 * n_beats // 3)))
        tempo[at:] = bpm * float(rng.choice([0.8, 0.9, 1.1, 1.25]))
    elif kind == "drift":
        tempo = bpm * (1.0 + np.cumsum(rng.normal(0, 0.004, n_beats)))
    tempo = np.clip(tempo, 40.0, 240.0)
    return np.concatenate([[0.0], np.cumsum(60.0 / tempo)]), str(kind)


#: Share of pieces that are a metronome alone (a count-in, a click track): wood blocks or claves on every beat.
METRONOME_SHARE = 0.04


def generate_piece(seed: int, *, seconds: float = 12.0, drums: float = 0.8, melodic: float = 0.9,
                   tempo_range: tuple[float, float] = (60.0, 190.0), metronome: float = METRONOME_SHARE) -> Piece:
    """A piece of about ``seconds`` with drums (probability ``drums``) and melodic parts (``melodic``; a
    piece always has one or the other), or (probability ``metronome``) a metronome alone. Tempo
    log-uniform in ``tempo_range``; metre 4/4 (or 3/4, 6/8)."""
    import mido

    if np.random.default_rng([seed, 1]).random() < metronome:  # its own stream: other seeds' pieces unchanged
        return metronome_piece(seed, seconds=seconds, tempo_range=tempo_range)
    rng = np.random.default_rng(seed)
    has_drums = bool(rng.random() < drums)
    has_melody = bool(rng.random() < melodic) or not has_drums
    bpm = float(math.exp(rng.uniform(math.log(tempo_range[0]), math.log(tempo_range[1]))))
    triple = bool(rng.random() < 0.2)
    per_bar = 3 if triple else 4
    patterns = _PATTERNS_3 if triple else _PATTERNS_4
    style = str(rng.choice(sorted(patterns)))
    n_beats = int(math.ceil(seconds * bpm / 60.0)) + per_bar
    beats, tempo_kind = _beat_times(rng, n_beats, bpm)
    lead_in = float(rng.uniform(0.0, 1.5))  # the piece need not start on a downbeat at 0 s
    beats = beats + lead_in
    swing = float(rng.uniform(0.55, 0.67)) if rng.random() < 0.25 else 0.5
    sub_per_beat = 4  # 16ths (12 per 3/4 bar)

    def at(beat_pos: float) -> float:
        """Time of a position in beats (fractions through the beat; swung 8ths)."""
        b = int(math.floor(beat_pos))
        frac = beat_pos - b
        if swing != 0.5:  # the off-beat 8th moves to ``swing`` of the beat; 16ths around it follow
            frac = frac / 0.5 * swing if frac <= 0.5 else swing + (frac - 0.5) / 0.5 * (1 - swing)
        b = min(b, len(beats) - 2)
        return float(beats[b] + frac * (beats[b + 1] - beats[b]))

    n_bars = n_beats // per_bar
    notes: list[tuple[float, float, int, int, int]] = []  # (start, end, channel, pitch, velocity)
    drum_hits: dict[str, list[tuple[float, int]]] = {k: [] for k in DRUM_CLASSES}
    # a drum part: the pattern, with random dropped/added hits, a fill before every 4th bar, crashes
    if has_drums:
        base = patterns[style]
        kit_swap = {38: int(rng.choice([38, 40])), 36: int(rng.choice([35, 36]))}
        start_bar = int(rng.integers(0, 2)) if has_melody else 0
        for bar in range(start_bar, n_bars):
            fill = has_melody and bar % 4 == 3 and rng.random() < 0.5 or rng.random() < 0.08
            for note, pat in base.items():
                note = kit_swap.get(note, note)
                for i, mark in enumerate(pat):
                    if fill and i >= len(pat) // 2 and note not in (36, 35):
                        continue
                    hit = mark != "." and rng.random() > 0.05 or mark == "." and rng.random() < 0.02
                    if hit:
                        vel = (100 if mark == "x" else 70) + int(rng.integers(-20, 21))
                        notes.append((at(bar * per_bar + i / sub_per_beat), 0.0, 9, note, int(np.clip(vel, 20, 127))))
            if fill:
                toms = [int(rng.choice([50, 48, 47, 45, 43, 41, 38])) for _ in range(4)]
                step = int(rng.choice([1, 2]))
                for i in range(len(base[next(iter(base))]) // 2, len(base[next(iter(base))]), step):
                    notes.append((at(bar * per_bar + i / sub_per_beat), 0.0, 9, toms[(i // step) % 4],
                                  int(rng.integers(70, 121))))
            if bar % 8 == 0 and rng.random() < 0.6:
                notes.append((at(bar * per_bar), 0.0, 9, int(rng.choice([49, 57])), int(rng.integers(80, 121))))
            if rng.random() < 0.1:  # a percussion accent
                notes.append((at(bar * per_bar + int(rng.integers(0, per_bar * 4)) / 4), 0.0, 9,
                              int(rng.choice(OTHER_DRUMS)), int(rng.integers(50, 110))))
    # melodic parts: a chord progression in a key; bass on roots, a chord instrument, a melody
    if has_melody:
        key = int(rng.integers(0, 12))
        minor = bool(rng.random() < 0.4)
        scale = np.array([0, 2, 3, 5, 7, 8, 10] if minor else [0, 2, 4, 5, 7, 9, 11])
        degrees = [0, 3, 4, 5, 1, 2, 6]
        progression = [int(rng.choice(degrees[:4] if k % 2 == 0 else degrees)) for k in range(4)]
        programs = {
            0: int(rng.choice([32, 33, 34, 35, 36, 38, 39, 43, 42])),  # bass
            1: int(rng.choice([0, 1, 2, 4, 5, 16, 17, 19, 24, 25, 26, 27, 48, 49, 50, 88, 89, 90, 91, 46, 11])),
            2: int(rng.choice([0, 6, 8, 11, 12, 13, 22, 24, 40, 41, 56, 57, 60, 64, 65, 66, 68, 71, 73, 80, 81,
                               82, 104, 105, 107, 108])),
        }
        parts = [p for p in (0, 1, 2) if rng.random() < 0.8] or [2]
        chord_rhythm = rng.choice(["bar", "beat", "half", "offbeat", "arp"])
        mel_density = float(rng.uniform(0.3, 0.9))
        for bar in range(n_bars):
            deg = progression[bar % 4]
            root = 48 + key + int(scale[deg % 7])
            chord = [root + int(scale[(deg + k) % 7] - scale[deg % 7] + 12 * ((deg + k) // 7 - deg // 7))
                     for k in (0, 2, 4)]
            b0 = bar * per_bar
            if 0 in parts:
                for b in range(per_bar):
                    if b == 0 or rng.random() < 0.6:
                        n = chord[0] - 12 if rng.random() < 0.8 else chord[0] - 5
                        notes.append((at(b0 + b), at(b0 + b + 0.9), 0, n, int(rng.integers(70, 115))))
            if 1 in parts:
                if chord_rhythm == "bar":
                    hits = [0.0]
                elif chord_rhythm == "half":
                    hits = [float(x) for x in range(0, per_bar, 2)]
                elif chord_rhythm == "beat":
                    hits = [float(x) for x in range(per_bar)]
                elif chord_rhythm == "offbeat":
                    hits = [x + 0.5 for x in range(per_bar)]
                else:
                    hits = [x / 2 for x in range(per_bar * 2)]
                for j, h in enumerate(hits):
                    voices = [chord[j % 3] + 12] if chord_rhythm == "arp" else [c + 12 for c in chord]
                    end = at(b0 + h + (0.45 if chord_rhythm in ("arp", "offbeat") else 0.95 * (per_bar - h if
                                                                                              chord_rhythm == "bar" else 1)))
                    vel = int(rng.integers(50, 100))
                    for v in voices:
                        notes.append((at(b0 + h), end, 1, v, vel))
            if 2 in parts:
                pos = 0.0
                while pos < per_bar:
                    dur = float(rng.choice([0.25, 0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
                    if rng.random() < mel_density:
                        deg_m = int(rng.integers(0, 8))
                        pitch = 72 + key + int(scale[deg_m % 7]) + 12 * (deg_m // 7) - (12 if rng.random() < 0.3 else 0)
                        notes.append((at(b0 + pos), at(b0 + min(pos + dur, per_bar)) - 0.02, 2, pitch,
                                      int(rng.integers(55, 120))))
                    pos += dur
    end_time = beats[0] + seconds
    notes = [n for n in notes if n[0] < end_time - 0.05]
    # the MIDI events, and the labels from the same notes
    events: list[tuple[float, Any]] = []
    if has_melody:
        for ch, prog in programs.items():
            events.append((0.0, mido.Message("program_change", channel=ch, program=prog)))
    for start, end, ch, pitch, vel in notes:
        events.append((start, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
        stop = start + 0.08 if ch == 9 else max(end, start + 0.05)
        events.append((min(stop, end_time), mido.Message("note_off", channel=ch, note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1].type == "note_on"))
    for start, _, ch, pitch, vel in notes:
        if ch == 9:
            for cls, members in DRUM_CLASSES.items():
                if pitch in members:
                    drum_hits[cls].append((start, vel))
    onset_times = merge_close(np.array([n[0] for n in notes]))
    beat_times = beats[(beats < end_time - 0.05)]
    # the first beat that is a bar line (bars count from the first beat)
    downbeats = beat_times[::per_bar]
    tempi = 60.0 / np.diff(beat_times) if len(beat_times) > 1 else np.array([bpm])
    # one hit per class at a time (a closed and an open hi-hat together are one hi-hat hit), as for onsets
    drum_times = {k: merge_close(np.array([t for t, _ in v])) for k, v in drum_hits.items()}
    drum_vels = {k: np.array([max(vel for t, vel in drum_hits[k] if 0 <= t - x < 0.03) for x in times], np.int64)
                 for k, times in drum_times.items()}
    return Piece(seed=int(seed), events=events, seconds=float(end_time), onsets=onset_times, beats=beat_times,
                 downbeats=downbeats, drums=drum_times, drum_velocities=drum_vels, tempo=float(np.median(tempi)),
                 beats_per_bar=per_bar, style=f"{style if has_drums else 'no drums'}, {tempo_kind} tempo"
                 + (", swing" if swing != 0.5 else "") + ("" if has_melody else ", drums only"))


def metronome_piece(seed: int, *, seconds: float = 12.0, tempo_range: tuple[float, float] = (60.0, 190.0)) -> Piece:
    """A click on every beat (the first of each bar higher or louder), at a tempo steady, ramped, stepped or
    drifting: onsets and beats are the clicks; no kick, snare or hi-hat."""
    import mido

    rng = np.random.default_rng([seed, 2])
    bpm = float(math.exp(rng.uniform(math.log(tempo_range[0]), math.log(tempo_range[1]))))
    per_bar = int(rng.choice([3, 4, 4]))
    n_beats = int(math.ceil(seconds * bpm / 60.0)) + per_bar
    beats, tempo_kind = _beat_times(rng, n_beats, bpm)
    beats = beats + float(rng.uniform(0.0, 1.0))
    end_time = float(beats[0] + seconds)
    beats = beats[beats < end_time - 0.05]
    high, low = [(76, 77), (75, 75), (56, 56), (77, 76)][int(rng.integers(0, 4))]
    events: list[tuple[float, Any]] = []
    for i, t in enumerate(beats):
        down = i % per_bar == 0
        note, vel = (high, 120) if down else (low, int(rng.integers(70, 100)))
        events.append((float(t), mido.Message("note_on", channel=9, note=note, velocity=vel)))
        events.append((float(t) + 0.05, mido.Message("note_off", channel=9, note=note, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1].type == "note_on"))
    tempi = 60.0 / np.diff(beats) if len(beats) > 1 else np.array([bpm])
    empty = np.zeros(0)
    return Piece(seed=int(seed), events=events, seconds=end_time, onsets=np.asarray(beats, np.float64),
                 beats=np.asarray(beats, np.float64), downbeats=np.asarray(beats[::per_bar], np.float64),
                 drums={k: empty for k in DRUM_CLASSES}, drum_velocities={k: empty.astype(np.int64) for k in DRUM_CLASSES},
                 tempo=float(np.median(tempi)), beats_per_bar=per_bar, style=f"metronome, {tempo_kind} tempo")


def render_piece(piece: Piece, *, soundfont: str | Path, sample_rate: int = 16000,
                 synth: tuple[Any, int] | None = None, kit: Any = None, seed: int = 0) -> np.ndarray:
    """The piece as a mono float32 waveform at ``sample_rate`` (``synth``: a loaded synth to reuse). With
    ``kit`` (a :class:`soundalike.events.kits.DrumKit`) the drums are played with its samples, mixed at a
    random level (``seed``) against the rest."""
    from soundalike.data.render import synthesize

    events = piece.events
    drums = None
    if kit is not None:
        from soundalike.events.kits import render_drums

        rng = np.random.default_rng(seed)
        n = int((piece.seconds + 0.5) * sample_rate)
        drums, events = render_drums(piece.events, kit, sample_rate=sample_rate, n=n, rng=rng)
    y, _ = synthesize(events, soundfont=str(soundfont), sample_rate=sample_rate, max_seconds=piece.seconds,
                      tail_seconds=0.5, synth=synth, programs=None)
    if drums is not None and drums.any():
        y = np.pad(y, (0, max(0, len(drums) - len(y))))[: len(drums)]
        rest = float(np.sqrt(np.mean(y**2)))
        level = float(np.sqrt(np.mean(drums**2))) + 1e-9
        ratio = 10 ** (rng.uniform(-6.0, 6.0) / 20) * (rest / level if rest > 1e-4 else 0.1 / level)
        y = y.copy()
        y[: len(drums)] += drums * np.float32(ratio)
        y /= max(1.0, float(np.abs(y).max()) / 0.99)
    return y.astype(np.float32)
