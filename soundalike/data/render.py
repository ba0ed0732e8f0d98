"""Render the demo corpus: music21 scores -> MIDI -> tinysoundfont -> audio files.

Everything comes from pip packages: the scores from music21's corpus, the
General MIDI soundfont ``TimGM6mb.sf2`` from inside ``pretty_midi``, the
synthesiser from ``tinysoundfont`` (install it with ``--no-deps``). Each chosen
work is rendered in several instrumentations (General MIDI programs
reassigned), and every file gets a manifest row with its labels.

The corpus is a pure function of its :class:`DemoCorpusConfig`: the same seed
gives the same works, ensembles and samples.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import ParameterError, RenderError

#: music21 corpus collections the demo corpus draws from.
COLLECTIONS: tuple[str, ...] = (
    "bach", "palestrina", "monteverdi", "trecento", "ryansMammoth",
    "essenFolksong", "oneills1850", "beethoven", "mozart", "haydn",
)

COMPOSERS: dict[str, str] = {
    "bach": "Johann Sebastian Bach",
    "palestrina": "Giovanni Pierluigi da Palestrina",
    "monteverdi": "Claudio Monteverdi",
    "trecento": "Italian trecento (various)",
    "ryansMammoth": "traditional (Ryan's Mammoth Collection)",
    "essenFolksong": "traditional (Essen folksong collection)",
    "oneills1850": "traditional (O'Neill's Music of Ireland)",
    "beethoven": "Ludwig van Beethoven",
    "mozart": "Wolfgang Amadeus Mozart",
    "haydn": "Joseph Haydn",
}

# collections stored as a few ABC files holding hundreds of tunes each
OPUS_COLLECTIONS = frozenset({"essenFolksong", "oneills1850"})
_SCORE_SUFFIXES = frozenset({".mxl", ".xml", ".musicxml", ".krn", ".abc", ".mid", ".midi"})

#: Named ensembles: parts (highest first) take these General MIDI programs in turn.
ENSEMBLES: dict[str, tuple[int, ...]] = {
    "piano": (0,),
    "harpsichord": (6,),
    "organ": (19,),
    "strings": (40, 41, 42, 43),
    "brass": (56, 60, 57, 58),
    "woodwinds": (73, 68, 71, 70),
    "choir": (52,),
    "guitars": (24, 25),
    "mallets": (11, 12),
    "synth": (80, 81, 88, 38),
}

GM_FAMILIES: tuple[str, ...] = (
    "piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth lead", "synth pad", "synth effects", "ethnic", "percussive", "sound effects",
)

_FORMATS = ("flac", "wav", "ogg", "mp3")  # written by soundalike.audio.save


def gm_family(program: int) -> str:
    """General MIDI family name of a program number 0-127."""
    return GM_FAMILIES[int(program) // 8]


def default_soundfont() -> Path:
    """Path of ``TimGM6mb.sf2`` inside the installed ``pretty_midi`` package."""
    try:
        import pretty_midi
    except ImportError as exc:
        raise RenderError("pretty_midi is not installed; it carries the soundfont: "
                          "pip install 'soundalike[render]'") from exc
    path = Path(pretty_midi.__file__).with_name("TimGM6mb.sf2")
    if not path.is_file():
        raise RenderError(f"{path} is missing from the pretty_midi package; pass --soundfont FILE.sf2")
    return path


@dataclass(frozen=True)
class DemoCorpusConfig:
    """What to render. Every field reaches the renderer."""

    collections: tuple[str, ...] = COLLECTIONS  # music21 corpus collections
    works_per_collection: int = 6  # works drawn at random from each collection
    instrumentations: int = 2  # versions of each work; the first keeps the score's own programs
    ensembles: tuple[str, ...] = tuple(ENSEMBLES)  # pool the re-instrumentations draw from
    keep_original: bool = True  # version 1 uses the programs music21 exports
    max_seconds: float = 60.0  # each render is cut here (the length guard)
    min_seconds: float = 5.0  # shorter renders are skipped
    sample_rate: int = 22050
    audio_format: str = "flac"  # flac, wav, ogg or mp3
    seed: int = 0
    soundfont: str | None = None  # .sf2 path; None: TimGM6mb.sf2 from pretty_midi
    extra_soundfonts: tuple[str, ...] = ()  # more .sf2 files: each version draws one of all of them at random

    def __post_init__(self) -> None:
        unknown = set(self.collections) - set(COLLECTIONS)
        if unknown:
            raise ParameterError(f"unknown collections {sorted(unknown)}; choose from {', '.join(COLLECTIONS)}")
        bad = set(self.ensembles) - set(ENSEMBLES)
        if bad:
            raise ParameterError(f"unknown ensembles {sorted(bad)}; choose from {', '.join(ENSEMBLES)}")
        if self.works_per_collection < 1 or self.instrumentations < 1:
            raise ParameterError("works_per_collection and instrumentations must be >= 1")
        if not self.keep_original and not self.ensembles:
            raise ParameterError("with keep_original off, at least one ensemble is needed")
        if not 0 < self.min_seconds < self.max_seconds <= 3600:
            raise ParameterError("need 0 < min_seconds < max_seconds <= 3600")
        if self.audio_format not in _FORMATS:
            raise ParameterError(f"audio_format must be one of {', '.join(_FORMATS)}")


@dataclass
class RenderSummary:
    out: str
    tracks: int = 0
    works: int = 0
    seconds: float = 0.0
    skipped: Counter = field(default_factory=Counter)
    wall_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["skipped"] = dict(self.skipped)
        d["skipped_total"] = sum(self.skipped.values())
        d["x_realtime"] = round(self.seconds / self.wall_seconds, 1) if self.wall_seconds else None
        return d


# --------------------------------------------------------------------- choosing


@dataclass(frozen=True)
class _Task:
    index: int
    collection: str
    source: str  # corpus path
    n_tunes: int  # tunes taken from an opus file (1 for single works)


def corpus_paths(collection: str) -> list[Path]:
    from music21 import corpus

    paths = [Path(p) for p in corpus.getComposer(collection)]
    return sorted(p for p in paths if p.suffix.lower() in _SCORE_SUFFIXES)


def plan_tasks(config: DemoCorpusConfig) -> list[_Task]:
    """Choose the works, deterministically for ``config.seed``."""
    tasks: list[_Task] = []
    for coll in config.collections:
        paths = corpus_paths(coll)
        if not paths:
            continue
        rng = random.Random(f"{config.seed}:{coll}")
        n = config.works_per_collection
        if coll in OPUS_COLLECTIONS:
            # ABC files of hundreds of tunes: parse one file (two for large requests)
            files = rng.sample(paths, min(len(paths), max(1, math.ceil(n / 50))))
            share = [n // len(files) + (1 if i < n % len(files) else 0) for i in range(len(files))]
            for f, k in zip(files, share, strict=True):
                if k:
                    tasks.append(_Task(len(tasks), coll, str(f), k))
        else:
            for f in rng.sample(paths, min(len(paths), n)):
                tasks.append(_Task(len(tasks), coll, str(f), 1))
    return tasks


# ------------------------------------------------------------------- rendering


def _slug(text: str, limit: int = 60) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return (s or "work")[:limit]


def midi_events(midi_bytes: bytes, max_seconds: float) -> tuple[list[tuple[float, Any]], float | None]:
    """(time_s, message) for channel messages up to ``max_seconds``, and the first tempo in BPM."""
    import mido

    mid = mido.MidiFile(file=io.BytesIO(midi_bytes))
    events: list[tuple[float, Any]] = []
    t = 0.0
    tempo_bpm: float | None = None
    for msg in mid:  # mido applies tempo changes: msg.time is a delta in seconds
        t += msg.time
        if t > max_seconds:
            break
        if msg.type == "set_tempo" and tempo_bpm is None:
            tempo_bpm = round(mido.tempo2bpm(msg.tempo), 2)
        if not msg.is_meta and hasattr(msg, "channel"):
            events.append((t, msg))
    return events, tempo_bpm


_SYNTHS: dict[tuple[str, int], tuple[Any, int]] = {}


def cached_synth(soundfont: str, sample_rate: int) -> tuple[Any, int]:
    """:func:`load_synth`, once per soundfont and rate in this process (a render worker keeps its synths)."""
    key = (soundfont, sample_rate)
    if key not in _SYNTHS:
        _SYNTHS[key] = load_synth(soundfont, sample_rate)
    return _SYNTHS[key]


def load_synth(soundfont: str, sample_rate: int) -> tuple[Any, int]:
    """A tinysoundfont synth with ``soundfont`` loaded: (synth, soundfont id). Loading a large .sf2 takes a
    second, so callers rendering many short pieces load it once and pass it to :func:`synthesize`."""
    try:
        import tinysoundfont
    except ImportError as exc:
        raise RenderError("tinysoundfont is not installed: pip install --no-deps tinysoundfont") from exc

    synth = tinysoundfont.Synth(samplerate=sample_rate)
    return synth, synth.sfload(soundfont)


def reset_synth(engine: Any, sample_rate: int) -> None:
    """Bring a used tinysoundfont synth back to how a new one sounds: the controllers a score may have moved
    (volume, pan, expression, pitch bend) at their defaults, and every voice stopped and faded out (its quick
    release is rendered and dropped), so a render does not depend on what the process rendered before."""
    engine.sounds_off()
    for ch in range(16):
        engine.control_change(ch, 7, 127)
        engine.control_change(ch, 10, 64)
        engine.control_change(ch, 11, 127)
        engine.pitchbend(ch, 8192)
    engine.generate(int(0.2 * sample_rate))


def synthesize(events: list[tuple[float, Any]], *, soundfont: str, sample_rate: int, max_seconds: float,
               programs: dict[int, int] | None = None, tail_seconds: float = 1.0,
               synth: tuple[Any, int] | None = None) -> tuple[np.ndarray, dict[int, int]]:
    """Render MIDI channel events with tinysoundfont.

    ``programs`` maps channel -> General MIDI program and overrides the score's
    program changes (drums on channel 9 stay). The output never exceeds
    ``max_seconds`` + ``tail_seconds``. ``synth`` reuses a :func:`load_synth`
    result (of this soundfont and rate) instead of loading the soundfont again.
    Returns a mono float32 waveform and the program each melodic channel played.
    """
    loaded = synth if synth is not None else load_synth(soundfont, sample_rate)
    engine: Any = loaded[0]
    sfid = loaded[1]
    if synth is not None:  # a reused synth starts as a new one would: no voice, controller or bend left over
        reset_synth(engine, sample_rate)
    used: dict[int, int] = {}
    channels = sorted({m.channel for _, m in events})
    for ch in channels:
        prog = (programs or {}).get(ch, 0)
        engine.program_select(ch, sfid, 0, prog, is_drums=(ch == 9))
        if ch != 9:
            used[ch] = prog
    limit = int((max_seconds + tail_seconds) * sample_rate)
    out = np.zeros(limit, dtype=np.float32)
    cursor = 0

    def advance(to: int) -> None:
        nonlocal cursor
        to = min(to, limit)
        if to > cursor:
            buf = np.frombuffer(engine.generate(to - cursor), dtype=np.float32)
            out[cursor:to] = buf.reshape(-1, 2).mean(axis=1)
            cursor = to

    for t, msg in events:
        advance(int(round(t * sample_rate)))
        ch = msg.channel
        if msg.type == "note_on" and msg.velocity > 0:
            engine.noteon(ch, msg.note, msg.velocity)
        elif msg.type in ("note_off", "note_on"):
            engine.noteoff(ch, msg.note)
        elif msg.type == "program_change" and ch != 9 and (programs is None or ch not in programs):
            engine.program_select(ch, sfid, 0, msg.program)
            used[ch] = msg.program
        elif msg.type == "control_change":
            engine.control_change(ch, msg.control, msg.value)
        elif msg.type == "pitchwheel":
            engine.pitchbend(ch, msg.pitch + 8192)
    end = min(limit, cursor + int(tail_seconds * sample_rate))
    engine.notes_off()
    advance(end)
    return out[:cursor], used


def _score_programs(events: list[tuple[float, Any]]) -> dict[int, int]:
    progs: dict[int, int] = {}
    for _, m in events:
        if m.type == "program_change" and m.channel != 9:
            progs.setdefault(m.channel, m.program)
    for _, m in events:
        if m.channel != 9:
            progs.setdefault(m.channel, 0)
    return progs


def _channels_by_register(events: list[tuple[float, Any]]) -> list[int]:
    notes: dict[int, list[int]] = {}
    for _, m in events:
        if m.type == "note_on" and m.velocity > 0 and m.channel != 9:
            notes.setdefault(m.channel, []).append(m.note)
    return sorted(notes, key=lambda ch: -float(np.mean(notes[ch])))


def truncate_score(score: Any, max_seconds: float) -> Any:
    """Keep only the measures that can sound within ``max_seconds``.

    music21's MIDI export is slow on long scores (minutes for a quartet
    movement); the render is cut at ``max_seconds`` anyway, so export no more.
    """
    try:
        marks = score.flatten().getElementsByClass("MetronomeMark")
        qpm = max(float(marks[0].getQuarterBPM()), 30.0) if marks else 120.0
        max_ql = max_seconds * qpm / 60.0 * 1.25 + 8.0  # quarter notes, with a margin for tempo changes
        if float(score.highestTime) <= max_ql or not score.parts:
            return score
        for m in score.parts[0].getElementsByClass("Measure"):
            if float(m.offset) > max_ql and m.number:
                return score.measures(0, m.number)
    except Exception:  # odd scores: export them whole
        return score
    return score


def _render_task(args: tuple[_Task, DemoCorpusConfig, str, tuple[str, ...]]) -> tuple[list[dict[str, Any]], Counter]:
    from soundalike.audio.io import save

    task, cfg, out_dir, soundfonts = args
    skipped: Counter = Counter()
    rows: list[dict[str, Any]] = []
    try:
        from music21 import corpus, midi
        from music21 import stream as m21stream
    except ImportError as exc:
        raise RenderError("music21 is not installed: pip install 'soundalike[render]'") from exc
    try:
        parsed = corpus.parse(task.source)
    except Exception as exc:  # music21 raises many kinds on odd scores
        skipped[f"parse:{type(exc).__name__}"] += task.n_tunes
        return rows, skipped
    # seeded by the score's place in music21's corpus, not by where music21 is installed
    rel_source = task.source.split("/corpus/", 1)[-1]
    if isinstance(parsed, m21stream.Opus):
        scores = list(parsed.scores)
        rng = random.Random(f"{cfg.seed}:{rel_source}")
        picks = sorted(rng.sample(range(len(scores)), min(task.n_tunes, len(scores))))
        works = [(i, scores[i]) for i in picks]
    else:
        works = [(None, parsed)]  # type: ignore[list-item]
    rng = random.Random(f"{cfg.seed}:{rel_source}:ensembles")
    for number, score in works:
        title = (getattr(score.metadata, "title", None) if score.metadata else None) or Path(task.source).stem
        stem = str(Path(rel_source).with_suffix(""))  # e.g. beethoven/opus18no1/movement3
        work_id = stem + (f"#{number}" if number is not None else "")
        try:
            mf = midi.translate.streamToMidiFile(truncate_score(score, cfg.max_seconds))
            events, tempo = midi_events(mf.writestr(), cfg.max_seconds)
        except Exception as exc:  # ExpanderException on repeats, and others
            skipped[f"expand:{type(exc).__name__}"] += 1
            continue
        if not any(m.type == "note_on" for _, m in events):
            skipped["no-notes"] += 1
            continue
        versions: list[tuple[str, dict[int, int] | None]] = []
        if cfg.keep_original:
            versions.append(("original", None))
        pool = list(cfg.ensembles)
        rng.shuffle(pool)
        while len(versions) < cfg.instrumentations and pool:
            versions.append((pool.pop(), {}))
        order = _channels_by_register(events)
        for ensemble, programs in versions:
            if programs is not None:
                progs = ENSEMBLES[ensemble]
                programs = {ch: progs[i % len(progs)] for i, ch in enumerate(order)}
            soundfont = soundfonts[0] if len(soundfonts) == 1 else rng.choice(soundfonts)
            y, used = synthesize(events, soundfont=soundfont, sample_rate=cfg.sample_rate,
                                 max_seconds=cfg.max_seconds, programs=programs,
                                 synth=cached_synth(soundfont, cfg.sample_rate))
            if programs is None:
                used = {**_score_programs(events), **used}
            dur = len(y) / cfg.sample_rate
            peak = float(np.max(np.abs(y))) if len(y) else 0.0
            rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) if len(y) else 0.0
            if dur < cfg.min_seconds:
                skipped["too-short"] += 1
                continue
            if rms < 1e-4:
                skipped["silent"] += 1
                continue
            y = (y * (0.89 / peak)).astype(np.float32)  # peak at -1 dBFS
            digest = hashlib.sha1(f"{work_id}:{ensemble}".encode()).hexdigest()[:6]
            name = _slug(stem.split("/", 1)[-1]) + (f"-{number}" if number is not None else "")
            rel = Path("audio") / task.collection / f"{name}-{digest}__{ensemble}.{cfg.audio_format}"
            dest = Path(out_dir) / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            save(dest, y, cfg.sample_rate)
            program_list = [used[ch] for ch in sorted(used)]
            rows.append({
                "path": rel.as_posix(),
                "work": work_id,
                "title": str(title),
                "collection": task.collection,
                "composer": COMPOSERS[task.collection],
                "source": rel_source,
                "ensemble": ensemble,
                "programs": program_list,
                "families": sorted({gm_family(p) for p in program_list}),
                "tempo_bpm": tempo,
                "duration": round(dur, 3),
                "soundfont": Path(soundfont).name,
            })
    return rows, skipped


def write_demo_query(out_dir: Path, rows: list[dict[str, Any]], *, offset: float = 5.0,
                     duration: float = 20.0) -> dict[str, Any] | None:
    """Write ``out_dir/query.mp3``: a 128 kbit/s MP3 excerpt of one corpus track, the demo's query."""
    from soundalike.audio.io import load, save

    for row in rows:
        if row["duration"] >= offset + duration:
            y, sr = load(out_dir / row["path"], sr=None, offset=offset, duration=duration)
            save(out_dir / "query.mp3", y, sr, bitrate=128_000)
            return {"path": "query.mp3", "source": row["path"], "offset": offset, "duration": duration}
    return None


def render_demo_corpus(out: str | Path, config: DemoCorpusConfig | None = None, *, jobs: int | None = None,
                       progress: Callable[[int, int], None] | bool = False) -> RenderSummary:
    """Render the demo corpus into ``out`` and write ``out/manifest.jsonl`` + ``out/corpus.json``.

    ``jobs`` worker processes (default: all cores). Works music21 cannot parse
    or expand are skipped and counted in the summary.
    """
    cfg = config or DemoCorpusConfig()
    soundfont = str(Path(cfg.soundfont).expanduser()) if cfg.soundfont else str(default_soundfont())
    soundfonts = (soundfont, *(str(Path(f).expanduser()) for f in cfg.extra_soundfonts))
    for sf in soundfonts:
        if not Path(sf).is_file():
            raise RenderError(f"soundfont {sf} does not exist")
    try:
        import tinysoundfont  # noqa: F401
    except ImportError as exc:
        raise RenderError("tinysoundfont is not installed: pip install --no-deps tinysoundfont") from exc
    out_dir = Path(out).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = plan_tasks(cfg)
    summary = RenderSummary(out=str(out_dir))
    t0 = time.perf_counter()
    args = [(t, cfg, str(out_dir), soundfonts) for t in tasks]
    n_jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks) or 1))
    results: list[tuple[list[dict[str, Any]], Counter]] = []
    bar = None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), unit="file", desc="rendering", dynamic_ncols=True)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if bar is not None:
            bar.update(1)
        elif callable(progress):
            progress(done, len(tasks))

    # the largest opus files first, so one long parse does not finish last
    order = sorted(range(len(args)), key=lambda i: -tasks[i].n_tunes)
    by_index: dict[int, tuple[list[dict[str, Any]], Counter]] = {}
    if n_jobs == 1:
        for i in order:
            by_index[i] = _render_task(args[i])
            tick()
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ctx.Pool(n_jobs) as pool:
            for i, res in zip(order, pool.imap(_render_task, [args[i] for i in order], chunksize=1), strict=True):
                by_index[i] = res
                tick()
    if bar is not None:
        bar.close()
    results = [by_index[i] for i in range(len(args))]
    rows: list[dict[str, Any]] = []
    for r, skipped in results:
        rows.extend(r)
        summary.skipped.update(skipped)
    summary.tracks = len(rows)
    summary.works = len({r["work"] for r in rows})
    summary.seconds = round(sum(r["duration"] for r in rows), 2)
    summary.wall_seconds = round(time.perf_counter() - t0, 2)
    manifest = out_dir / "manifest.jsonl"
    tmp = manifest.with_name(".manifest.jsonl.part")
    with open(tmp, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
    os.replace(tmp, manifest)
    query = write_demo_query(out_dir, rows)
    info = {"config": asdict(cfg), "soundfont": Path(soundfont).name,
            "soundfonts": [Path(sf).name for sf in soundfonts], "summary": summary.to_dict(), "query": query}
    (out_dir / "corpus.json").write_text(json.dumps(info, indent=2, default=list) + "\n")
    return summary
