"""The events decoders and the generated training material, on activations and pieces whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.events.decode import (
    decode_events,
    downbeats_from,
    pick_peaks,
    tempo_from_beats,
    viterbi_beats,
)
from soundalike.events.model import OUTPUTS, DecoderSettings
from soundalike.events.pieces import DRUM_CLASSES, generate_piece, merge_close
from soundalike.events.train import f_measure, match_events, targets_for

FPS = 100.0


def pulses(times: np.ndarray, n: int, *, width: float = 0.015, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    t = np.arange(n) / FPS
    act = np.zeros(n)
    for x in times:
        act = np.maximum(act, np.exp(-0.5 * ((t - x) / width) ** 2))
    act = act * 0.9 + noise * np.random.default_rng(seed).random(n)
    return np.clip(act, 0, 1)


def test_pick_peaks_finds_each_peak_between_frames():
    truth = np.array([0.503, 1.2, 1.222, 2.5017, 3.999])  # 1.222 is within 30 ms of 1.2: one event
    act = pulses(truth, 500, width=0.01)
    found = pick_peaks(act, fps=FPS, threshold=0.5, combine=0.03)
    assert len(found) == 4
    assert np.max(np.abs(found[[0, 2, 3]] - truth[[0, 3, 4]])) < 0.006
    assert 1.195 < found[1] < 1.227
    assert len(pick_peaks(np.zeros(500), fps=FPS, threshold=0.5)) == 0
    assert len(pick_peaks(act * 0.4, fps=FPS, threshold=0.5)) == 0  # below the threshold


@pytest.mark.parametrize("bpm", [72.0, 128.0, 174.0])
def test_viterbi_beats_follow_a_steady_pulse_within_tolerance(bpm):
    period = 60.0 / bpm
    truth = np.arange(0.31, 30.0, period)
    act = pulses(truth, 3000, noise=0.15, seed=int(bpm))
    beats = viterbi_beats(act, fps=FPS) / FPS
    assert f_measure(beats, truth, 0.07) > 0.97
    tempo, curve = tempo_from_beats(beats)
    assert tempo == pytest.approx(bpm, rel=0.02)
    assert curve == []  # steady: no curve


def test_viterbi_beats_follow_a_tempo_change_and_report_the_curve():
    first = np.arange(0.2, 15.0, 60.0 / 100.0)
    second = first[-1] + np.cumsum(np.full(40, 60.0 / 130.0))
    truth = np.concatenate([first, second[second < 30.0]])
    beats = viterbi_beats(pulses(truth, 3000, noise=0.1), fps=FPS) / FPS
    assert f_measure(beats, truth, 0.07) > 0.95
    _, curve = tempo_from_beats(beats)
    early = [b for t, b in curve if t < 12.0]
    late = [b for t, b in curve if t > 18.0]
    assert np.median(early) == pytest.approx(100.0, rel=0.02)
    assert np.median(late) == pytest.approx(130.0, rel=0.02)


def test_downbeats_pick_the_strongest_phase_and_metre():
    beats = np.arange(0.5, 20.0, 0.5)
    down = pulses(beats[1::3], 2000)  # every third beat from the second
    found, per_bar = downbeats_from(beats, down, FPS)
    assert per_bar == 3
    assert np.allclose(found, beats[1::3])


def test_decode_events_of_flat_activations_gives_no_events():
    act = np.full((len(OUTPUTS), 1000), 0.01)
    ev = decode_events(act, outputs=OUTPUTS, fps=FPS, settings=DecoderSettings())
    assert ev.onsets == [] and ev.beats == [] and ev.tempo is None
    assert all(v == [] for v in ev.drums.values())
    assert ev.duration == pytest.approx(10.0)


def test_match_events_pairs_one_to_one():
    assert match_events(np.array([1.0, 1.01, 2.0]), np.array([1.0, 2.04]), 0.05) == 2
    assert f_measure(np.array([]), np.array([])) == 1.0
    assert f_measure(np.array([1.0]), np.array([3.0])) == 0.0


def test_generated_pieces_are_seeded_and_their_labels_agree():
    a, b = generate_piece(123), generate_piece(123)
    assert np.array_equal(a.onsets, b.onsets) and np.array_equal(a.beats, b.beats)
    assert not np.array_equal(generate_piece(124).onsets, a.onsets)
    for seed in range(12):
        p = generate_piece(seed, seconds=10.0)
        assert np.all(np.diff(p.beats) > 0)
        assert set(np.round(p.downbeats, 6)) <= set(np.round(p.beats, 6))
        assert 50.0 < p.tempo < 230.0
        for cls, times in p.drums.items():  # every drum hit is an onset (after merging close ones)
            assert cls in DRUM_CLASSES
            for t in times:
                assert np.min(np.abs(p.onsets - t)) < 0.03
        assert np.all(np.diff(p.onsets) >= 0.03)


def test_targets_mark_event_frames_and_their_neighbours():
    p = generate_piece(5, seconds=6.0)
    tg = targets_for(p, 700, FPS)
    f = int(round(p.beats[2] * FPS))
    i = OUTPUTS.index("beat")
    assert tg[i, f] == 1.0 and tg[i, f - 1] >= 0.5 and tg[i, f + 1] >= 0.5
    assert tg[i].max() == 1.0 and (tg[i] == 1.0).sum() == np.sum(p.beats * FPS < 699.5)


def test_merge_close():
    assert merge_close(np.array([0.5, 0.0, 0.02, 0.05])).tolist() == [0.0, 0.05, 0.5]


def test_rendered_kicks_put_low_energy_where_the_labels_say():
    from soundalike.data.render import default_soundfont
    from soundalike.events.pieces import render_piece

    p = next(p for p in (generate_piece(s, seconds=8.0) for s in range(40))
             if len(p.drums["kick"]) > 6 and "drums only" in p.style)
    y = render_piece(p, soundfont=default_soundfont(), sample_rate=16000)
    spec = np.abs(np.fft.rfft(y[: len(y) // 160 * 160].reshape(-1, 160) * np.hanning(160), axis=1))
    low = spec[:, 1:3].sum(axis=1)  # 100-200 Hz per 10 ms
    at = [low[int(t * 100): int(t * 100) + 4].max() for t in p.drums["kick"] if t * 100 + 4 < len(low)]
    before = [low[max(0, int(t * 100) - 3)] for t in p.drums["kick"] if t * 100 + 4 < len(low)]
    assert np.median(np.asarray(at) / (np.asarray(before) + 1e-6)) > 3.0


def test_a_piece_labels_one_hit_per_class_at_a_time():
    """The four-on-the-floor pattern plays a closed and an open hi-hat together: one hi-hat hit, not two
    (two would cap any detector's recall at one half)."""
    piece = next(p for s in range(300) if (p := generate_piece(s, seconds=12.0, drums=1.0)).style
                 .startswith("four_on_floor"))
    both = [t for t, m in piece.events if m.type == "note_on" and m.channel == 9 and m.note in (42, 46)]
    assert len(both) > len(piece.drums["hihat"])  # notes did coincide
    for cls, times in piece.drums.items():
        assert np.all(np.diff(times) >= 0.03), cls
        assert len(piece.drum_velocities[cls]) == len(times)
