"""Music whose every note is known: the transcription model's training and test material.

Three sources, each a pure function of its seed:

- :func:`generate_texture`: generated polyphony: a key and a chord progression played by one to four
  General MIDI instruments in roles (bass lines, block chords, arpeggios, melodies, a free chromatic
  voice), with velocity and articulation varying note to note and the pitch range wide;
- :func:`soundalike.events.pieces.generate_piece`: the events model's pop-like pieces (bass, chords and
  melody over drums): the notes besides the drums are the labels, the drums are what must be ignored;
- the music21 corpus: works' notes extracted once into a cache (:func:`build_corpus_cache`; chorales,
  renaissance polyphony, folk tunes, string quartets), played at a random tempo, transposed, on random
  instruments. Works whose id hashes to the test share are held out (:func:`corpus_split`).

:func:`make_piece` draws one of them; :func:`render_notes_piece` renders it with a soundfont. Train with
``TimGM6mb.sf2`` and the OPL3 FM font; ``fluid-soundfont-gm`` stays unseen for the benchmark.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.transcribe.notes import MAX_PITCH, MIN_PITCH, Note, notes_from_events

#: Where ``soundalike datasets notes-corpus`` writes the corpus notes (and training looks for them).
DEFAULT_CORPUS_CACHE = Path("data/notes-corpus/notes.jsonl.gz")
#: Collections the corpus cache draws from (polyphonic first).
CORPUS_COLLECTIONS: tuple[str, ...] = ("bach", "palestrina", "monteverdi", "trecento", "beethoven", "mozart",
                                       "haydn", "ryansMammoth", "oneills1850", "essenFolksong")

# melodic General MIDI programs by role (no percussion, effects or drums)
_BASS = (32, 33, 34, 35, 36, 38, 39, 42, 43, 58, 0, 19)
_HARMONY = (0, 1, 2, 4, 5, 6, 16, 17, 19, 21, 24, 25, 26, 27, 46, 48, 49, 50, 52, 61, 88, 89, 90, 91, 11, 12, 8)
_LEAD = (0, 6, 8, 11, 12, 13, 22, 24, 40, 41, 42, 56, 57, 60, 64, 65, 66, 68, 69, 70, 71, 72, 73, 74, 75, 79,
         80, 81, 82, 104, 105, 107, 108, 109, 110, 15, 14, 10, 9, 7, 3, 29, 30)


@dataclass
class NotesPiece:
    """Audio-to-be: MIDI channel events (drums on channel 10 included) and the notes they play."""

    seed: int
    events: list[tuple[float, Any]]
    notes: list[Note]
    seconds: float
    source: str  # "texture", "pop" or "corpus:<work>"


def _events_of(notes: list[tuple[float, float, int, int, int]], programs: dict[int, int],
               end: float) -> list[tuple[float, Any]]:
    import mido

    events: list[tuple[float, Any]] = [(0.0, mido.Message("program_change", channel=ch, program=p))
                                       for ch, p in programs.items()]
    for start, stop, ch, pitch, vel in notes:
        if start >= end - 0.05:
            continue
        events.append((start, mido.Message("note_on", channel=ch, note=int(pitch), velocity=int(vel))))
        events.append((min(stop, end), mido.Message("note_off", channel=ch, note=int(pitch), velocity=0)))
    events.sort(key=lambda e: (e[0], e[1].type == "note_on"))
    return events


def generate_texture(seed: int, *, seconds: float = 10.0) -> NotesPiece:
    """Generated polyphony (see the module docstring), about ``seconds`` long."""
    rng = np.random.default_rng([seed, 11])
    bpm = float(math.exp(rng.uniform(math.log(50), math.log(180))))
    beat = 60.0 / bpm
    key = int(rng.integers(0, 12))
    scale = np.array([[0, 2, 4, 5, 7, 9, 11], [0, 2, 3, 5, 7, 8, 10], [0, 2, 3, 5, 7, 8, 11],
                      [0, 2, 4, 7, 9, 12, 14]][int(rng.choice(4, p=[0.5, 0.3, 0.1, 0.1]))])
    per_bar = int(rng.choice([3, 4, 4]))
    n_bars = int(math.ceil(seconds / (beat * per_bar))) + 1
    prog = [int(rng.choice([0, 3, 4, 5, 1, 2, 6])) for _ in range(n_bars)]
    roles = list(rng.choice(["bass", "chords", "arpeggio", "melody", "melody", "free", "counter"],
                            size=int(rng.integers(1, 5)), replace=False))
    lead_in = float(rng.uniform(0.0, 1.0))
    notes: list[tuple[float, float, int, int, int]] = []
    programs: dict[int, int] = {}

    def degree_pitch(deg: int, base: int) -> int:
        return base + key + int(scale[deg % len(scale)]) + 12 * (deg // len(scale))

    for ch, role in enumerate(roles):
        pool = _BASS if role == "bass" else _HARMONY if role in ("chords", "arpeggio") else _LEAD
        programs[ch] = int(rng.choice(pool))
        level = float(rng.uniform(35, 120))
        legato = float(rng.uniform(0.3, 1.0))
        octave = {"bass": int(rng.choice([24, 36])), "chords": int(rng.choice([48, 60])),
                  "arpeggio": int(rng.choice([48, 60, 72])), "melody": int(rng.choice([60, 72, 84])),
                  "counter": int(rng.choice([48, 60])), "free": int(rng.choice([36, 48, 60, 72]))}[role]
        step = float(rng.choice([0.25, 0.5, 0.5, 1.0, 1.0])) if role in ("arpeggio", "melody", "counter", "free") \
            else float(rng.choice([0.5, 1.0, 2.0, float(per_bar)]))
        walk = int(rng.integers(0, 8))
        t_beats = 0.0
        while t_beats < n_bars * per_bar:
            bar = int(t_beats // per_bar)
            root = prog[bar]
            chord = [root, root + 2, root + 4] + ([root + 6] if rng.random() < 0.2 else [])
            dur = step * (float(rng.choice([1, 1, 1, 2])) if role in ("melody", "counter", "free") else 1.0)
            start = lead_in + t_beats * beat + float(rng.normal(0, 0.008))
            stop = start + dur * beat * legato
            vel = int(np.clip(level + rng.normal(0, 12), 15, 127))
            pitches: list[int] = []
            if role == "bass":
                pitches = [degree_pitch(root, octave) + (7 if rng.random() < 0.2 else 0)]
            elif role == "chords":
                pitches = [degree_pitch(d, octave) for d in chord]
                if rng.random() < 0.3:  # an inversion
                    pitches[0] += 12
            elif role == "arpeggio":
                k = int(round(t_beats / step))
                pitches = [degree_pitch(chord[k % len(chord)] + 7 * ((k // len(chord)) % 2), octave)]
            elif role in ("melody", "counter"):
                if rng.random() < 0.15:
                    pitches = []  # a rest
                else:
                    walk += int(rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3, 4, -4]))
                    walk = int(np.clip(walk, -3, 12))
                    pitches = [degree_pitch(walk, octave)]
                    if rng.random() < 0.1:  # a double stop
                        pitches.append(pitches[0] + int(rng.choice([3, 4, 7, 8, 9, 12])))
            else:  # free: chromatic, any interval, sometimes a cluster
                n = 1 if rng.random() < 0.7 else int(rng.integers(2, 5))
                pitches = list(octave + rng.integers(0, 25, size=n))
            for p in {int(p) for p in pitches if MIN_PITCH <= p <= MAX_PITCH}:
                notes.append((start, stop, ch, p, vel))
            t_beats += dur
    end = lead_in + seconds
    notes = [(max(0.0, a), b, c, d, e) for a, b, c, d, e in notes]
    events = _events_of(notes, programs, end)
    return NotesPiece(int(seed), events, notes_from_events(events, end=end), end, "texture")


def pop_piece(seed: int, *, seconds: float = 10.0) -> NotesPiece:
    """An events-model piece (:func:`soundalike.events.pieces.generate_piece`): its pitched notes are the
    labels; its drums are in the audio only."""
    from soundalike.events.pieces import generate_piece

    p = generate_piece(seed, seconds=seconds, metronome=0.0)
    return NotesPiece(int(seed), p.events, notes_from_events(p.events, end=p.seconds), p.seconds, "pop")


# --------------------------------------------------------------------- the music21 corpus


def corpus_split(work: str) -> str:
    """``"test"`` for the tenth of works (by a hash of their id) the benchmark keeps, else ``"train"``."""
    return "test" if int(hashlib.sha1(work.encode()).hexdigest()[:8], 16) % 10 == 0 else "train"


def _work_notes(score: Any, max_seconds: float) -> tuple[list[list[float]], int] | None:
    from music21 import midi

    from soundalike.data.render import midi_events, truncate_score

    mf = midi.translate.streamToMidiFile(truncate_score(score, max_seconds))
    events, _ = midi_events(mf.writestr(), max_seconds)
    channels = sorted({m.channel for _, m in events if m.type == "note_on"} - {9})
    if not channels:
        return None
    out: list[list[float]] = []
    for ch in channels:
        part = notes_from_events([(t, m) for t, m in events if getattr(m, "channel", -1) == ch])
        out += [[round(n.onset, 4), round(n.offset, 4), n.pitch, channels.index(ch)] for n in part]
    return sorted(out), len(channels)


def build_corpus_cache(out: str | Path = DEFAULT_CORPUS_CACHE, *, collections: tuple[str, ...] = CORPUS_COLLECTIONS,
                       works_per_collection: int = 120, max_seconds: float = 90.0, seed: int = 0,
                       budget_seconds: float | None = None,
                       progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Extract the notes of up to ``works_per_collection`` works of each collection (chosen with ``seed``)
    into ``out`` (gzipped JSON lines: work id, split, parts, notes as ``[onset, offset, pitch, part]`` at the
    score's tempo); at most ``budget_seconds`` of parsing. Works music21 cannot parse or expand are counted
    and skipped. Returns a summary."""
    import random

    from music21 import corpus
    from music21 import stream as m21stream

    from soundalike.data.render import OPUS_COLLECTIONS, corpus_paths

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    per_coll: list[list[tuple[str, Path]]] = []
    for coll in collections:
        paths = corpus_paths(coll)
        rng = random.Random(f"{seed}:{coll}")
        # a file of hundreds of tunes (Essen, O'Neill's) parses for many seconds: two files, five tunes each
        n = min(len(paths), 2 if coll in OPUS_COLLECTIONS else works_per_collection)
        per_coll.append([(coll, p) for p in rng.sample(paths, n)])
    # round-robin over the collections, so a time budget cuts every collection short, not the last ones
    plan = [item for group in itertools.zip_longest(*per_coll) for item in group if item is not None]
    rows, skipped = 0, 0
    tmp = out.with_name(out.name + ".part")
    with gzip.open(tmp, "wt") as fh:
        for i, (coll, path) in enumerate(plan):
            if budget_seconds is not None and time.perf_counter() - t0 > budget_seconds:
                break
            rel = str(path).split("/corpus/", 1)[-1]
            try:
                parsed = corpus.parse(str(path))
                scores = list(parsed.scores)[:5] if isinstance(parsed, m21stream.Opus) else [parsed]
                for k, score in enumerate(scores):
                    got = _work_notes(score, max_seconds)
                    if got is None:
                        continue
                    work = rel + (f"#{k}" if isinstance(parsed, m21stream.Opus) else "")
                    notes, parts = got
                    fh.write(json.dumps({"work": work, "collection": coll, "split": corpus_split(work),
                                         "parts": parts, "notes": notes}) + "\n")
                    rows += 1
            except Exception:  # music21 raises many kinds on odd scores
                skipped += 1
            if progress is not None:
                progress(i + 1, len(plan))
    tmp.replace(out)
    return {"out": str(out), "works": rows, "skipped": skipped, "seconds": round(time.perf_counter() - t0, 1)}


_CORPUS: dict[tuple[str, str], list[dict[str, Any]]] = {}


def load_corpus_cache(path: str | Path = DEFAULT_CORPUS_CACHE, *, split: str = "train") -> list[dict[str, Any]]:
    """The cached works of one split ([] when the cache was not built)."""
    key = (str(path), split)
    if key not in _CORPUS:
        p = Path(path)
        works: list[dict[str, Any]] = []
        if p.is_file():
            with gzip.open(p, "rt") as fh:
                works = [w for w in map(json.loads, fh) if w["split"] == split and w["notes"]]
        _CORPUS[key] = works
    return _CORPUS[key]


def corpus_piece(seed: int, works: list[dict[str, Any]], *, seconds: float = 10.0) -> NotesPiece:
    """A random excerpt of a random cached work, at a random tempo factor, transposed, each part on a random
    instrument, with velocities varied per part and note."""
    rng = np.random.default_rng([seed, 12])
    w = works[int(rng.integers(0, len(works)))]
    arr = np.asarray(w["notes"], np.float64)
    stretch = float(rng.uniform(0.7, 1.4))
    arr[:, :2] *= stretch
    total = float(arr[:, 1].max())
    a = float(rng.uniform(0.0, max(0.0, total - seconds))) if total > seconds else 0.0
    arr = arr[(arr[:, 0] >= a) & (arr[:, 0] < a + seconds)]
    arr[:, :2] -= a - float(rng.uniform(0.0, 0.5))
    shift = int(rng.integers(-7, 8))
    parts = int(w["parts"])
    programs = {ch: int(rng.choice(_LEAD if rng.random() < 0.5 else _HARMONY)) for ch in range(min(parts, 9))}
    levels = rng.uniform(40, 120, size=max(parts, 1))
    notes = []
    for on, off, pitch, part in arr:
        p = int(pitch) + shift
        ch = int(part) % 9
        if MIN_PITCH <= p <= MAX_PITCH:
            vel = int(np.clip(levels[int(part) % len(levels)] + rng.normal(0, 10), 15, 127))
            notes.append((float(on), float(off) - 0.01, ch, p, vel))
    end = seconds + 0.5
    events = _events_of(notes, programs, end)
    return NotesPiece(int(seed), events, notes_from_events(events, end=end), end, f"corpus:{w['work']}")


#: How often each source is drawn (the corpus only when its cache was built).
SOURCE_SHARES: dict[str, float] = {"texture": 0.45, "pop": 0.2, "corpus": 0.35}


def make_piece(seed: int, *, seconds: float = 10.0, corpus: list[dict[str, Any]] | None = None) -> NotesPiece:
    """One piece from a source drawn by :data:`SOURCE_SHARES` (see the module docstring)."""
    r = np.random.default_rng([seed, 10]).random()
    if corpus and r < SOURCE_SHARES["corpus"]:
        return corpus_piece(seed, corpus, seconds=seconds)
    if r < SOURCE_SHARES["corpus"] + SOURCE_SHARES["pop"]:
        return pop_piece(seed, seconds=seconds)
    return generate_texture(seed, seconds=seconds)


def render_notes_piece(piece: NotesPiece, *, soundfont: str | Path, sample_rate: int = 16000,
                       synth: tuple[Any, int] | None = None) -> np.ndarray:
    """The piece as a mono float32 waveform at ``sample_rate``, peak-normalised to -1 dBFS."""
    from soundalike.data.render import synthesize

    y, _ = synthesize(piece.events, soundfont=str(soundfont), sample_rate=sample_rate, max_seconds=piece.seconds,
                      tail_seconds=0.5, synth=synth, programs=None)
    peak = float(np.abs(y).max()) if len(y) else 0.0
    return (y * np.float32(0.89 / peak) if peak > 1e-6 else y).astype(np.float32)
