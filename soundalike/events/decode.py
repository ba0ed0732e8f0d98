"""From frame activations to events: peak picking, a Viterbi beat decoder, tempo and downbeats.

Beats are decoded as madmom's dynamic Bayesian network does it (Krebs, Böck & Widmer 2015): a hidden
state is (beat interval, position in the interval); the position advances one frame at a time, and at
the end of an interval the next interval may change with a probability that falls with the tempo
change; the beat activation is the observation at the first frames of each interval. The most likely
state sequence (Viterbi) gives beat times and a tempo that may drift. Downbeats are the beats, every 3
or 4, whose downbeat activation is highest on average.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from soundalike.events.model import DecoderSettings
from soundalike.events.pieces import DRUM_CLASSES

WHAT: tuple[str, ...] = ("onsets", "beats", "drums")


def parse_what(text: str) -> tuple[str, ...]:
    """``"onsets, beats"`` -> ``("onsets", "beats")``: the kinds a comma-separated ``--what`` / ``what=`` asks
    for (checked where they are used)."""
    return tuple(w.strip() for w in text.split(",") if w.strip())


@dataclass
class Events:
    """What happens when in a recording (times in seconds from its start)."""

    duration: float
    onsets: list[float] = field(default_factory=list)
    onset_strengths: list[float] = field(default_factory=list)
    beats: list[float] = field(default_factory=list)
    downbeats: list[float] = field(default_factory=list)
    beats_per_bar: int | None = None
    tempo: float | None = None  # BPM, the median beat interval's
    tempo_confidence: float = 0.0  # 0-1: how strongly the beats stand out of the beat activation
    tempo_curve: list[tuple[float, float]] = field(default_factory=list)  # (time, BPM) when the tempo drifts
    drums: dict[str, list[float]] = field(default_factory=dict)  # class -> hit times
    drum_strengths: dict[str, list[float]] = field(default_factory=dict)  # class -> activation 0-1 at each hit

    def shift(self, seconds: float) -> None:
        """Add ``seconds`` to every time (events of an excerpt, given in the whole file's time)."""
        sh = lambda xs: [x + seconds for x in xs]  # noqa: E731
        self.onsets, self.beats, self.downbeats = sh(self.onsets), sh(self.beats), sh(self.downbeats)
        self.tempo_curve = [(t + seconds, b) for t, b in self.tempo_curve]
        self.drums = {k: sh(v) for k, v in self.drums.items()}

    def to_dict(self) -> dict[str, Any]:
        r = lambda xs: [round(float(x), 3) for x in xs]  # noqa: E731
        return {
            "duration": round(self.duration, 3),
            "onsets": r(self.onsets), "onset_strengths": r(self.onset_strengths),
            "beats": r(self.beats), "downbeats": r(self.downbeats), "beats_per_bar": self.beats_per_bar,
            "tempo": None if self.tempo is None else round(self.tempo, 2),
            "tempo_confidence": round(self.tempo_confidence, 3),
            "tempo_curve": [[round(t, 2), round(b, 2)] for t, b in self.tempo_curve],
            "drums": {k: r(v) for k, v in self.drums.items()},
            "drum_strengths": {k: r(v) for k, v in self.drum_strengths.items()},
        }


def pick_peaks(act: np.ndarray, *, fps: float, threshold: float, combine: float = 0.03,
               window: int = 2) -> np.ndarray:
    """Times (s) of local maxima of ``act`` [shape=(frames,)] at or above ``threshold``, each the largest
    within ``window`` frames either side, peaks closer than ``combine`` s merged into the first; each
    time is refined between frames by a parabola through the peak and its neighbours."""
    a = np.asarray(act, np.float64)
    if a.size < 3:
        return np.zeros(0)
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.pad(a, window, constant_values=-np.inf)
    local_max = sliding_window_view(padded, 2 * window + 1).max(axis=1)
    idx = np.nonzero((a >= threshold) & (a == local_max))[0]
    keep: list[int] = []
    for i in idx:
        if not keep or (i - keep[-1]) / fps >= combine:
            keep.append(int(i))
    if not keep:
        return np.zeros(0)
    k = np.asarray(keep)
    left, right = a[np.maximum(k - 1, 0)], a[np.minimum(k + 1, len(a) - 1)]
    den = left - 2 * a[k] + right
    shift = np.where(np.abs(den) > 1e-9, 0.5 * (left - right) / np.where(den == 0, 1, den), 0.0)
    return (k + np.clip(shift, -0.5, 0.5)) / fps


def _intervals(min_bpm: float, max_bpm: float, fps: float, n: int = 80) -> np.ndarray:
    lo, hi = 60.0 * fps / max_bpm, 60.0 * fps / min_bpm
    iv = np.unique(np.rint(np.exp(np.linspace(np.log(lo), np.log(hi), n))).astype(np.int64))
    return iv[iv >= 2]


def viterbi_beats(act: np.ndarray, *, fps: float, min_bpm: float = 50.0, max_bpm: float = 220.0,
                  tempo_change: float = 60.0, beat_fraction: float = 1 / 16, prior_octaves: float = 0.0,
                  prior_bpm: float = 120.0) -> np.ndarray:
    """Beat frames: the most likely path through (interval, position) states given the beat activation
    [shape=(frames,)], as a float array of frame indices (refined to the activation's local peak).
    ``prior_octaves`` > 0: every beat also pays a log-normal tempo prior around ``prior_bpm`` with that
    spread in octaves, which settles a half / double tempo the activation leaves open."""
    full = np.clip(np.asarray(act, np.float64), 1e-6, 1 - 1e-6)
    # decoded at 50 frames/s or less (a quarter of the work at 100 frames/s), refined at the full rate
    step = max(1, int(fps // 50))
    n = len(full) // step * step
    a = full[:n].reshape(-1, step).max(axis=1) if step > 1 else full
    if step > 1 and n < len(full):
        a = np.append(a, full[n:].max())
    fps_full, fps = fps, fps / step
    T = len(a)
    iv = _intervals(min_bpm, max_bpm, fps)
    if T == 0 or len(iv) == 0:
        return np.zeros(0)
    starts = np.concatenate([[0], np.cumsum(iv)[:-1]])  # first state of each interval
    ends = starts + iv - 1  # last state of each interval
    S = int(iv.sum())
    position = np.concatenate([np.arange(v) for v in iv])
    interval_of = np.repeat(np.arange(len(iv)), iv)
    beat_state = position < np.maximum(1, np.rint(iv[interval_of] * beat_fraction))
    log_beat, log_none = np.log(a), np.log((1 - a) / (1 / beat_fraction - 1))
    # interval change at a beat: exp(-lambda * |ratio - 1|), rows normalised
    ratio = iv[None, :] / iv[:, None]
    trans = np.exp(-tempo_change * np.abs(ratio - 1.0))
    trans /= trans.sum(axis=1, keepdims=True)
    log_trans = np.log(np.maximum(trans, 1e-300))
    if prior_octaves > 0:  # paid on entering an interval: once per beat
        log_trans = log_trans - 0.5 * (np.log2(60.0 * fps / iv / prior_bpm) / prior_octaves)[None, :] ** 2
    v = np.where(beat_state, log_beat[0], log_none[0]) - np.log(S)
    back = np.zeros((T, len(iv)), np.int32)  # the interval each interval's first state came from
    shift_src = np.arange(S) - 1  # within an interval, a state comes from the one before it
    first = np.zeros(S, bool)
    first[starts] = True
    for t in range(1, T):
        cand = v[ends][:, None] + log_trans  # (from interval, to interval)
        best_from = np.argmax(cand, axis=0)
        new = np.empty(S)
        new[~first] = v[shift_src[~first]]
        new[starts] = cand[best_from, np.arange(len(iv))]
        back[t] = best_from
        new += np.where(beat_state, log_beat[t], log_none[t])
        v = new - new.max()
    # back-track
    s = int(np.argmax(v))
    beats: list[int] = []
    for t in range(T - 1, -1, -1):
        if first[s]:
            beats.append(t)
            if t > 0:
                s = int(ends[back[t, interval_of[s]]])
        elif t > 0:
            s -= 1
    frames = np.asarray(sorted(beats), np.int64) * step
    # the path's beat state starts each interval: move each beat to the activation's peak nearby
    w = max(1, int(round(0.03 * fps_full)))
    out = []
    for f in frames:
        lo, hi = max(0, f - w), min(len(full), f + step + w)
        out.append(lo + int(np.argmax(full[lo:hi])))
    return np.asarray(sorted(set(out)), np.float64)


def calibrated(act: np.ndarray, odds_scale: float) -> np.ndarray:
    """``act`` with its odds divided by ``odds_scale``: a network trained with a positive weight w on its
    rare positives over-states every probability by w in odds; this takes it back."""
    a = np.clip(np.asarray(act, np.float64), 0.0, 1.0)
    return a if odds_scale == 1.0 else a / (a + odds_scale * (1.0 - a))


def pulse_clarity(onset_act: np.ndarray, *, fps: float, min_bpm: float = 50.0, max_bpm: float = 220.0) -> float:
    """How periodic the onsets are, 0-1: the highest normalised autocorrelation of the (mean-removed)
    onset activation at a beat period between ``min_bpm`` and ``max_bpm`` (Lartillot et al.'s pulse
    clarity). Steady noise and ambience stay under about 0.2; music with a beat is above 0.3."""
    a = np.asarray(onset_act, np.float64)
    lo, hi = int(60.0 * fps / max_bpm), int(np.ceil(60.0 * fps / min_bpm))
    if a.size <= hi + 1:
        return 0.0
    a = a - a.mean()
    n = len(a)
    ac = np.fft.irfft(np.abs(np.fft.rfft(a, 2 * n)) ** 2)[: hi + 1]
    if ac[0] <= 1e-12:
        return 0.0
    return float(np.clip(ac[lo:].max() / ac[0], 0.0, 1.0))


def tempo_from_beats(beats: np.ndarray, *, drift: float = 0.04) -> tuple[float | None, list[tuple[float, float]]]:
    """(median BPM, tempo curve) from beat times; the curve (time, BPM of a 4-beat median) is given only
    when the local tempo strays more than ``drift`` from the median somewhere."""
    if len(beats) < 3:
        return None, []
    ibi = np.diff(beats)
    bpm = float(60.0 / np.median(ibi))
    local = np.array([60.0 / np.median(ibi[max(0, i - 2): i + 2]) for i in range(len(ibi))])
    if np.max(np.abs(local / bpm - 1.0)) <= drift:
        return bpm, []
    mids = (beats[:-1] + beats[1:]) / 2
    return bpm, [(float(t), float(b)) for t, b in zip(mids, local, strict=True)]


def downbeats_from(beats: np.ndarray, down_act: np.ndarray, fps: float) -> tuple[np.ndarray, int | None]:
    """The beats that start bars (every 3 or 4, the phase whose downbeat activation is highest) and the
    beats per bar."""
    if len(beats) < 6:
        return np.zeros(0), None
    f = np.clip(np.rint(beats * fps).astype(np.int64), 0, len(down_act) - 1)
    lo = np.clip(f - 2, 0, None)
    strength = np.array([down_act[a: b + 3].max() for a, b in zip(lo, f, strict=True)])
    best = (-1.0, 4, 0)
    for m in (4, 3):
        for p in range(m):
            s = strength[p::m]
            score = float(s.mean() - np.delete(strength, np.arange(p, len(strength), m)).mean()) if len(s) else -1.0
            if score > best[0] + (0.02 if m == 3 else 0.0):  # 4/4 unless 3/4 is clearly better
                best = (score, m, p)
    _, m, p = best
    return beats[p::m], m


def decode_events(act: np.ndarray, *, outputs: tuple[str, ...], fps: float, settings: DecoderSettings,
                  what: tuple[str, ...] = WHAT, duration: float | None = None) -> Events:
    """:class:`Events` from activations [shape=(len(outputs), frames)]."""
    unknown = set(what) - set(WHAT)
    if unknown:
        from soundalike.errors import ParameterError

        raise ParameterError(f"unknown event kinds {sorted(unknown)}; choose from {', '.join(WHAT)}")
    ev = Events(duration=float(duration if duration is not None else act.shape[1] / fps))
    th = settings.thresholds

    def peaks(name: str) -> tuple[list[float], list[float]]:
        a = act[outputs.index(name)]
        t = pick_peaks(a, fps=fps, threshold=th.get(name, 0.5), combine=settings.combine_seconds)
        s = a[np.clip(np.rint(t * fps).astype(np.int64), 0, len(a) - 1)] if len(t) else np.zeros(0)
        return [float(x) for x in t], [float(x) for x in s]

    if "onsets" in what:
        ev.onsets, ev.onset_strengths = peaks("onset")
    if "drums" in what:
        for cls in DRUM_CLASSES:
            ev.drums[cls], ev.drum_strengths[cls] = peaks(cls)
    if "beats" in what:
        b_act = act[outputs.index("beat")]
        # nothing to follow in silence or in sound without pulse: no beats
        if b_act.size and float(np.max(b_act)) >= th.get("beat", 0.5) * 0.6:
            frames = viterbi_beats(calibrated(b_act, settings.beat_odds_scale), fps=fps, min_bpm=settings.min_bpm,
                                   max_bpm=settings.max_bpm, tempo_change=settings.tempo_change,
                                   beat_fraction=settings.beat_fraction, prior_octaves=settings.prior_octaves)
            # beats in quiet stretches (the path runs through them) are dropped
            ok = b_act[frames.astype(np.int64)] >= 0.1 * th.get("beat", 0.5) if len(frames) else frames.astype(bool)
            beats = frames[ok] / fps
            pulse = pulse_clarity(act[outputs.index("onset")], fps=fps, min_bpm=settings.min_bpm,
                                  max_bpm=settings.max_bpm)
            if len(frames):
                at_beats = float(np.mean(b_act[frames.astype(np.int64)]))
                ev.tempo_confidence = float(np.clip(at_beats / max(float(np.mean(b_act)) * 4, 1e-6), 0, 1) *
                                            min(1.0, at_beats / 0.5) * min(1.0, pulse / 0.5))
            # the decoder finds a path through noise or music in free time too: without a pulse, no beats
            if pulse >= settings.min_pulse:
                ev.beats = [float(x) for x in beats]
                ev.tempo, ev.tempo_curve = tempo_from_beats(beats)
                down, ev.beats_per_bar = downbeats_from(beats, act[outputs.index("downbeat")], fps)
                ev.downbeats = [float(x) for x in down]
    return ev


#: Beat-phase bins per event kind in :func:`rhythm_descriptor`.
PHASE_BINS = 8
RHYTHM_KINDS: tuple[str, ...] = ("onsets", "kick", "snare", "hihat")


def rhythm_descriptor(ev: Events) -> np.ndarray:
    """A fixed-length description of a track's groove [shape=(4 + 4 * PHASE_BINS + 4,)], float32: per kind
    (onsets, kick, snare, hi-hat) events per beat, then where in the beat they fall (:data:`PHASE_BINS`
    bins of beat phase, summing to 1, so swing and syncopation show), then log2(tempo / 120), the tempo
    confidence, and whether bars have 3 or 4 beats. All zeros where no beat was found."""
    out = np.zeros(len(RHYTHM_KINDS) * (1 + PHASE_BINS) + 4, np.float32)
    beats = np.asarray(ev.beats, np.float64)
    if len(beats) < 3 or ev.tempo is None:
        return out
    span = (beats[0], beats[-1])
    for k, kind in enumerate(RHYTHM_KINDS):
        t = np.asarray(ev.onsets if kind == "onsets" else ev.drums.get(kind, []), np.float64)
        t = t[(t >= span[0]) & (t < span[1])]
        out[k] = len(t) / (len(beats) - 1)
        if len(t):
            i = np.searchsorted(beats, t, side="right") - 1
            phase = (t - beats[i]) / (beats[i + 1] - beats[i])
            # a hit just before a beat belongs to it: phases are taken around the beat
            hist = np.bincount(np.floor((phase + 0.5 / PHASE_BINS) % 1.0 * PHASE_BINS).astype(np.int64) % PHASE_BINS,
                               minlength=PHASE_BINS)
            a = len(RHYTHM_KINDS) + k * PHASE_BINS
            out[a: a + PHASE_BINS] = hist / hist.sum()
    tail = len(RHYTHM_KINDS) * (1 + PHASE_BINS)
    out[tail] = np.log2(ev.tempo / 120.0)
    out[tail + 1] = ev.tempo_confidence
    out[tail + 2] = float(ev.beats_per_bar == 3)
    out[tail + 3] = float(ev.beats_per_bar == 4)
    return out
