"""Generated sound that is in no catalog, and the evidence identify weighs against it."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.fingerprint.evaluate import fit_calibration
from soundalike.fingerprint.fingerprinter import Calibration, steadiness
from soundalike.testing.ood import OOD_KINDS, chord_song, ood_clip


@pytest.mark.parametrize("kind", OOD_KINDS)
def test_every_kind_is_deterministic_audible_and_of_its_length(kind):
    a, b = ood_clip(kind, 3, duration=4.0), ood_clip(kind, 3, duration=4.0)
    assert a.dtype == np.float32 and len(a) == 4 * 22050 and np.array_equal(a, b)
    assert np.abs(a).max() <= 1.0
    if kind == "hiss":
        assert 1e-4 < np.sqrt(np.mean(a**2)) < 0.02  # faint
    else:
        assert np.abs(a).max() > 0.05
    assert not np.array_equal(a, ood_clip(kind, 4, duration=4.0))


def test_kinds_sound_like_what_they_are_called():
    sr = 22050
    tone = ood_clip("tone", 0)
    spec = np.abs(np.fft.rfft(tone))
    assert spec.max() > 50 * np.median(spec)  # one line
    sweep = ood_clip("sweep", 0)
    first, last = (np.argmax(np.abs(np.fft.rfft(sweep[i : i + sr // 2]))) for i in (0, len(sweep) - sr // 2))
    assert first != last  # the pitch moves
    song_a, song_b = chord_song(1, duration=10.0), chord_song(2, duration=10.0)
    assert len(song_a) == 10 * sr and not np.allclose(song_a, song_b)
    with pytest.raises(ValueError):
        ood_clip("jingle", 0)


def test_steadiness_of_a_tone_is_high_and_of_changing_codes_low():
    rng = np.random.default_rng(0)
    times = np.arange(50) * 0.1
    one = rng.integers(0, 256, 16, dtype=np.uint8)
    assert steadiness(np.tile(one, (50, 1)), times, bits=128) == pytest.approx(1.0)
    assert steadiness(rng.integers(0, 256, (50, 16), dtype=np.uint8), times, bits=128) < 0.1
    assert steadiness(np.tile(one, (5, 1)), times[:5], bits=128) == 0.0  # nothing 1 s apart: no evidence


def test_calibration_weighs_four_kinds_of_evidence_and_old_ones_load():
    rng = np.random.default_rng(1)
    # right matches: high score, unsteady queries; wrong ones: as high a score, but steady (tones)
    pos = np.column_stack([rng.uniform(0.5, 0.9, 300), rng.uniform(0.3, 0.6, 300), rng.uniform(0.0, 0.5, 300),
                           rng.uniform(0.1, 0.5, 300)])
    neg = np.column_stack([rng.uniform(0.5, 0.9, 300), rng.uniform(0.3, 0.6, 300), rng.uniform(0.0, 0.5, 300),
                           rng.uniform(0.8, 1.0, 300)])
    cal = fit_calibration(pos, neg, max_false_match_rate=0.01)
    assert cal.e < 0  # steadier queries are likelier wrong
    assert np.mean([cal.confidence(*x) >= cal.threshold for x in neg]) <= 0.01
    assert np.mean([cal.confidence(*x) >= cal.threshold for x in pos]) > 0.95
    old = Calibration.from_dict({"a": 30.0, "b": 1.0, "c": -13.0, "threshold": 0.76})
    assert old.d == 0.0 and old.e == 0.0
    assert old.confidence(0.5, 0.1) == old.confidence(0.5, 0.1, 0.9, 0.9)  # only score and margin count
    again = Calibration.from_dict(cal.to_dict())
    assert again == cal
    from soundalike.errors import ParameterError

    with pytest.raises(ParameterError):
        fit_calibration(pos[:, :3], neg[:, :3])


def test_a_steadiness_limit_fades_confidence_to_zero():
    cal = Calibration(30.0, 1.0, -13.0, 0.76, max_steadiness=0.8)
    base = cal.confidence(0.9, 0.5)
    assert base > 0.99
    assert cal.confidence(0.9, 0.5, 0.0, 0.8) == pytest.approx(base)
    assert cal.confidence(0.9, 0.5, 0.0, 0.9) == pytest.approx(base * 0.5)
    assert cal.confidence(0.9, 0.5, 0.0, 1.0) == 0.0
    assert Calibration.from_dict(cal.to_dict()).max_steadiness == 0.8
