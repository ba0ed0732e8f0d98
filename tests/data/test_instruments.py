"""Instrument-family clips rendered from General MIDI programs."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.data.instruments import FLUID_SOUNDFONT, render_instrument_clips
from soundalike.data.render import GM_FAMILIES
from soundalike.errors import ParameterError, RenderError


def _centroid(y: np.ndarray, sr: int) -> float:
    mag = np.abs(np.fft.rfft(y))
    freqs = np.fft.rfftfreq(len(y), 1 / sr)
    return float((mag * freqs).sum() / max(mag.sum(), 1e-12))


def test_clips_carry_their_program_and_family():
    clips = render_instrument_clips(programs=(0, 33, 40, 73), per_program=6, seconds=1.5, sample_rate=16000)
    assert len(clips.waves) + clips.dropped == 24
    assert all(len(w) == 24000 and w.dtype == np.float32 for w in clips.waves)
    np.testing.assert_array_equal(clips.families, clips.programs // 8)  # GM: eight programs per family
    assert [GM_FAMILIES[f] for f in sorted(set(clips.families))] == ["piano", "bass", "strings", "pipe"]
    assert all(float(np.abs(w).max()) == pytest.approx(0.5) for w in clips.waves)  # peak-normalised
    assert 0 < clips.phrases.mean() < 1
    # the labels mean something: basses sit far below flutes
    bass = np.median([_centroid(w, 16000) for w, p in zip(clips.waves, clips.programs, strict=True) if p == 33])
    flute = np.median([_centroid(w, 16000) for w, p in zip(clips.waves, clips.programs, strict=True) if p == 73])
    assert bass < 0.5 * flute


def test_rendering_is_seeded_and_silent_clips_are_dropped():
    a = render_instrument_clips(programs=(0, 24), per_program=3, seconds=1.0, seed=5)
    b = render_instrument_clips(programs=(0, 24), per_program=3, seconds=1.0, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a.waves, b.waves, strict=True))
    none = render_instrument_clips(programs=(0,), per_program=3, seconds=1.0, min_rms_db=10.0)
    assert none.dropped == 3 and not none.waves


def test_bad_requests_are_refused():
    with pytest.raises(ParameterError):
        render_instrument_clips(programs=(128,))
    with pytest.raises(ParameterError):
        render_instrument_clips(per_program=0)
    with pytest.raises(RenderError, match="does not exist"):
        render_instrument_clips(soundfont="/nonexistent/font.sf2", programs=(0,), per_program=1)


@pytest.mark.skipif(not FLUID_SOUNDFONT.is_file(), reason="Debian's fluid-soundfont-gm is not installed")
def test_the_held_out_soundfont_sounds_different():
    kw = {"programs": (0,), "per_program": 2, "seconds": 1.0, "phrase_p": 0.0, "seed": 1}
    tim, fluid = render_instrument_clips(**kw), render_instrument_clips(soundfont=FLUID_SOUNDFONT, **kw)
    assert tim.soundfont != fluid.soundfont
    assert not np.allclose(tim.waves[0], fluid.waves[0], atol=1e-3)  # same notes, other samples
