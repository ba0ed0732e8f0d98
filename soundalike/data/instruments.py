"""Labelled instrument clips: single notes and short phrases for every General MIDI program.

Each clip is rendered with tinysoundfont from one soundfont; its label is the
program's GM family (piano, organ, guitar, bass, strings, ... 16 in all). Train
with one soundfont (``TimGM6mb.sf2`` inside pretty_midi) and test with another
(Debian's ``fluid-soundfont-gm``: ``/usr/share/sounds/sf2/FluidR3_GM.sf2``) so a
score measures generalisation to new recordings of an instrument, not memorised
samples. Pitches stay in each family's usual register; clips quieter than
``min_rms_db`` (a note outside what the soundfont sampled) are dropped and
counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.data.render import GM_FAMILIES, default_soundfont, gm_family, load_synth, synthesize
from soundalike.errors import ParameterError, RenderError

#: Debian's fluid-soundfont-gm (MIT): the held-out soundfont.
FLUID_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")

#: MIDI pitch range (low, high) per GM family, where its instruments usually play.
FAMILY_RANGES: dict[str, tuple[int, int]] = {
    "piano": (36, 96), "chromatic percussion": (60, 96), "organ": (36, 84), "guitar": (40, 76),
    "bass": (28, 55), "strings": (43, 84), "ensemble": (48, 84), "brass": (45, 77), "reed": (50, 84),
    "pipe": (60, 96), "synth lead": (48, 84), "synth pad": (40, 76), "synth effects": (40, 76),
    "ethnic": (48, 84), "percussive": (48, 84), "sound effects": (48, 72),
}


@dataclass
class InstrumentClips:
    """Rendered clips with their GM program and family."""

    waves: list[np.ndarray]  # float32 mono at sample_rate, each ``seconds`` long
    programs: np.ndarray  # int [shape=(n,)]
    families: np.ndarray  # int [shape=(n,)], index into GM_FAMILIES
    phrases: np.ndarray  # bool [shape=(n,)]: a phrase of notes rather than one note
    sample_rate: int
    soundfont: str
    dropped: int = 0  # clips left out as (nearly) silent
    family_names: tuple[str, ...] = field(default=GM_FAMILIES)


def _events(notes: list[tuple[float, float, int, int]]) -> list[tuple[float, Any]]:
    """(start s, end s, pitch, velocity) on channel 0 -> time-ordered MIDI messages."""
    import mido

    ev = [(s, mido.Message("note_on", channel=0, note=p, velocity=v)) for s, _, p, v in notes]
    ev += [(e, mido.Message("note_off", channel=0, note=p, velocity=0)) for _, e, p, _ in notes]
    return sorted(ev, key=lambda item: (item[0], item[1].type == "note_on"))


def render_instrument_clips(*, soundfont: str | Path | None = None, programs: tuple[int, ...] = tuple(range(128)),
                            per_program: int = 8, seconds: float = 2.0, phrase_p: float = 0.5,
                            sample_rate: int = 22050, min_rms_db: float = -45.0, seed: int = 0) -> InstrumentClips:
    """Render ``per_program`` clips of ``seconds`` for each program (seeded pitches, velocities, phrases)."""
    if per_program < 1 or seconds <= 0.2 or not 0 <= phrase_p <= 1:
        raise ParameterError("need per_program >= 1, seconds > 0.2 and 0 <= phrase_p <= 1")
    if any(not 0 <= p < 128 for p in programs):
        raise ParameterError("General MIDI programs are 0..127")
    sf = Path(soundfont) if soundfont is not None else default_soundfont()
    if not sf.is_file():
        hint = " (Debian: apt-get install fluid-soundfont-gm)" if sf == FLUID_SOUNDFONT else ""
        raise RenderError(f"soundfont {sf} does not exist{hint}")
    synth = load_synth(str(sf), sample_rate)
    rng = np.random.default_rng(seed)
    waves, progs, fams, phr = [], [], [], []
    dropped = 0
    n = int(round(seconds * sample_rate))
    for prog in programs:
        low, high = FAMILY_RANGES[gm_family(prog)]
        for _ in range(per_program):
            vel = int(rng.integers(60, 120))
            if rng.random() < phrase_p:  # 3-6 notes of a scale-like line
                k = int(rng.integers(3, 7))
                step = seconds * 0.9 / k
                base = int(rng.integers(low, max(low + 1, high - 7)))
                pitches = [min(high, base + int(x)) for x in np.cumsum(rng.choice([-2, -1, 1, 2, 3], size=k))]
                notes = [(i * step, (i + 0.9) * step, p, vel) for i, p in enumerate(pitches)]
                phrase = True
            else:
                notes = [(0.0, seconds * float(rng.uniform(0.5, 0.9)), int(rng.integers(low, high + 1)), vel)]
                phrase = False
            # the tail runs past the clip (which is cut at n), so releases die away before the next clip
            y, _ = synthesize(_events(notes), soundfont=str(sf), sample_rate=sample_rate, max_seconds=seconds,
                              programs={0: prog}, tail_seconds=seconds, synth=synth)
            y = np.pad(y[:n], (0, max(0, n - len(y))))
            rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
            if 20 * np.log10(max(rms, 1e-12)) < min_rms_db:
                dropped += 1
                continue
            waves.append((0.5 * y / max(1e-9, float(np.abs(y).max()))).astype(np.float32))
            progs.append(prog)
            fams.append(GM_FAMILIES.index(gm_family(prog)))
            phr.append(phrase)
    return InstrumentClips(waves, np.array(progs, dtype=np.int64), np.array(fams, dtype=np.int64),
                           np.array(phr, dtype=bool), sample_rate, str(sf), dropped)
