"""Sampled drum kits (Hydrogen's ``drumkit.xml`` format) for rendering the drum part of a generated piece.

A soundfont's drums are one recording per note; the drums people hear are many. Debian's
``hydrogen-drumkits`` package installs a dozen sampled kits (acoustic, electronic, break-beat) with
velocity layers. :func:`load_kit` reads one, maps each instrument to a General MIDI drum note by its
name (kick, snare, clap, side stick, closed / pedal / open hi-hat, toms, crash, ride, cowbell, ...), and
:func:`render_drums` plays a piece's channel-9 notes with its samples. Notes the kit has no instrument
for stay with the soundfont, so every labelled event still sounds.

The kits named in :data:`TEST_KITS` are never used for training: they are the benchmark's unseen kits.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

#: Where Debian's ``hydrogen-drumkits`` installs its kits, and where a user's Hydrogen keeps more.
KIT_DIRS: tuple[Path, ...] = (Path("/usr/share/hydrogen/data/drumkits"), Path.home() / ".hydrogen/data/drumkits")
#: Kits held out of training (acoustic with velocity layers, acoustic multi-mic, electronic).
TEST_KITS: tuple[str, ...] = ("The Black Pearl 1.0", "ForzeeStereo", "HardElectro1")

# instrument name -> GM drum note; the first rule that matches wins
_RULES: tuple[tuple[str, int], ...] = (
    (r"cowbell", 56), (r"tambourine", 54), (r"clap", 39),
    (r"side ?stick|rim ?click|\bstick\b", 37),
    (r"kick|bass ?drum|bassdrum|\bbd\d*\b", 36),
    (r"snare|rimshot", 38),
    (r"(hi.?hat|\bhh\b|\bhat\b).*(pedal|\bpd\b)|pedal.*(hh|hat)", 44),
    (r"(hi.?hat|\bhh\b|\bhat\b).*(open|semi|\bop\b|swish)|open.*(hh|hat)|\bohh\b", 46),
    (r"hi.?hat|\bhh\b|\bhat\b|closed", 42),
    (r"tom.*(floor|low|\blo\b)|floor.*tom|low.*tom", 43),
    (r"tom.*(mid)|mid.*tom", 47),
    (r"tom.*(hi|high|1)|high.*tom", 50),
    (r"\btom", 45),
    (r"ride.*(bell|cup)|bell", 53), (r"ride", 51),
    (r"crash|china|splash|cymbal", 49),
)
# a piece's note -> the notes a kit may play it with, in order of preference
_SUBSTITUTES: dict[int, tuple[int, ...]] = {
    35: (35, 36), 36: (36, 35), 38: (38, 40), 40: (40, 38), 39: (39, 38), 37: (37,),
    42: (42,), 44: (44, 42), 46: (46, 42),
    41: (41, 43, 45), 43: (43, 41, 45), 45: (45, 47, 43), 47: (47, 45, 48), 48: (48, 50, 47), 50: (50, 48, 47),
    49: (49, 57), 57: (57, 49), 51: (51, 59, 53), 53: (53, 51),
}


def gm_note_for(name: str) -> int | None:
    """The General MIDI drum note a kit instrument called ``name`` plays, or None (effects, djembes, ...)."""
    low = name.lower()
    for pattern, note in _RULES:
        if re.search(pattern, low):
            return note
    return None


@dataclass
class Layer:
    path: Path
    low: float = 0.0  # velocity range (0..1) this sample plays
    high: float = 1.0
    gain: float = 1.0


@dataclass
class DrumKit:
    """A sampled kit: GM drum note -> its instruments' velocity layers."""

    name: str
    notes: dict[int, list[list[Layer]]] = field(default_factory=dict)  # note -> instruments -> layers

    def has(self, note: int) -> int | None:
        """The note this kit plays ``note`` with (itself or a substitute), or None."""
        for alt in _SUBSTITUTES.get(note, (note,)):
            if alt in self.notes:
                return alt
        return None


def _strip(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def load_kit(folder: str | Path) -> DrumKit:
    """Read ``folder/drumkit.xml`` (both Hydrogen layouts: layers, or one ``filename`` per instrument)."""
    folder = Path(folder)
    root = ET.parse(folder / "drumkit.xml").getroot()
    for el in root.iter():
        el.tag = _strip(el.tag)
    kit = DrumKit(name=(root.findtext("name") or folder.name).strip())
    for inst in root.iter("instrument"):
        note = gm_note_for(inst.findtext("name") or "")
        if note is None or (inst.findtext("isMuted") or "").strip() == "true":
            continue
        layers: list[Layer] = []
        for layer in inst.iter("layer"):
            fn = layer.findtext("filename")
            if fn and (folder / fn).is_file():
                layers.append(Layer(folder / fn, float(layer.findtext("min") or 0), float(layer.findtext("max") or 1),
                                    float(layer.findtext("gain") or 1)))
        if not layers and inst.findtext("filename") and (folder / str(inst.findtext("filename"))).is_file():
            layers.append(Layer(folder / str(inst.findtext("filename"))))
        if layers:
            kit.notes.setdefault(note, []).append(layers)
    return kit


def installed_kits(*, split: str = "train") -> list[Path]:
    """Kit folders found under :data:`KIT_DIRS` that play kick, snare and hi-hat: ``split`` "train" (all but
    :data:`TEST_KITS`), "test" (those) or "all"."""
    out = []
    for base in KIT_DIRS:
        if not base.is_dir():
            continue
        for d in sorted(base.iterdir()):
            if not (d / "drumkit.xml").is_file():
                continue
            held_out = d.name in TEST_KITS
            if split == "train" and held_out or split == "test" and not held_out:
                continue
            try:
                kit = cached_kit(str(d))
            except (ET.ParseError, OSError, ValueError):
                continue
            if all(kit.has(n) is not None for n in (36, 38, 42)):
                out.append(d)
    return out


@lru_cache(maxsize=32)
def cached_kit(folder: str) -> DrumKit:
    return load_kit(folder)


@lru_cache(maxsize=1024)
def _sample(path: str, sample_rate: int) -> np.ndarray:
    """A sample as mono float32 at ``sample_rate``, trimmed to 2 s."""
    import soundfile as sf

    from soundalike.audio.io import resample

    y, sr = sf.read(path, dtype="float32", always_2d=True)
    y = resample(y.mean(axis=1), orig_sr=int(sr), target_sr=sample_rate)
    loud = np.flatnonzero(np.abs(y) > 0.02 * (np.abs(y).max() + 1e-9))
    y = y[max(0, int(loud[0]) - 16) if len(loud) else 0:][: 2 * sample_rate].copy()  # the hit starts at 0
    fade = min(len(y), sample_rate // 50)
    if fade:
        y[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return y


def render_drums(events: list[tuple[float, Any]], kit: DrumKit, *, sample_rate: int, n: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[float, Any]]]:
    """Channel-9 note-ons of ``events`` played with ``kit``'s samples (``n`` samples long), and the events
    left for the soundfont (everything else, including drum notes the kit cannot play)."""
    out = np.zeros(n, np.float32)
    rest: list[tuple[float, Any]] = []
    played: set[int] = set()
    choice: dict[int, list[Layer]] = {}
    for t, msg in events:
        if msg.channel != 9 or msg.type not in ("note_on", "note_off"):
            rest.append((t, msg))
            continue
        note = kit.has(msg.note)
        if note is None:
            rest.append((t, msg))
            continue
        if msg.type == "note_off" or msg.velocity == 0:
            continue
        if note not in choice:  # one instrument per note for the whole piece
            options = kit.notes[note]
            choice[note] = options[int(rng.integers(0, len(options)))]
        v = msg.velocity / 127.0
        layers = [la for la in choice[note] if la.low <= v <= la.high] or choice[note]
        layer = layers[int(rng.integers(0, len(layers)))]
        s = _sample(str(layer.path), sample_rate)
        start = int(round(t * sample_rate))
        if start >= n:
            continue
        seg = s[: n - start] * np.float32(layer.gain * (0.25 + 0.75 * v) ** 1.5)
        out[start:start + len(seg)] += seg
        played.add(note)
    return out, rest
