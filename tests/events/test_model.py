"""The shipped events model on generated audio whose events are known: click tracks at set tempi, a tempo
change, drum patterns, silence; the model file, the CLI, the task layer and the catalog's rhythm table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soundalike.errors import ParameterError, SoundalikeError
from soundalike.events import detect_events, load_events_model
from soundalike.events.train import f_measure
from soundalike.testing.synth import click_track

SR = 22050


def clicks(bpm: float, seconds: float = 20.0, start: float = 0.5) -> np.ndarray:
    return np.arange(start, seconds - 0.5, 60.0 / bpm)


@pytest.mark.parametrize("bpm", [96.0, 128.0, 150.0])
def test_click_track_tempo_within_2_percent_and_every_click_a_beat_and_an_onset(bpm):
    truth = clicks(bpm)
    ev = detect_events(click_track(truth, sr=SR, duration=20.0), SR)
    assert ev.tempo == pytest.approx(bpm, rel=0.02)
    assert ev.tempo_curve == []  # steady
    assert f_measure(np.asarray(ev.beats), truth, 0.07) > 0.9
    assert f_measure(np.asarray(ev.onsets), truth, 0.05) > 0.95
    assert np.median(np.abs(np.asarray(ev.onsets)[:, None] - truth[None, :]).min(axis=1)) < 0.02


def test_a_tempo_change_gives_a_curve_through_both_tempi():
    first = np.arange(0.5, 12.0, 60.0 / 100.0)
    second = first[-1] + np.cumsum(np.full(22, 60.0 / 130.0))
    truth = np.concatenate([first, second])
    ev = detect_events(click_track(truth, sr=SR), SR, what=("beats",))
    assert f_measure(np.asarray(ev.beats), truth, 0.07) > 0.9
    assert ev.tempo_curve, "a tempo that changes by 30 % needs a curve"
    times = np.array([t for t, _ in ev.tempo_curve])
    bpms = np.array([b for _, b in ev.tempo_curve])
    assert np.median(bpms[times < 10.0]) == pytest.approx(100.0, rel=0.02)
    assert np.median(bpms[times > 14.0]) == pytest.approx(130.0, rel=0.02)
    assert ev.onsets == [] and ev.drums == {}  # only what was asked for


@pytest.mark.parametrize("y", [np.zeros(SR * 10, np.float32), np.full(SR * 5, 1e-6, np.float32),
                               np.zeros(0, np.float32)], ids=["zeros", "dc-hum", "empty"])
def test_silence_gives_no_events(y):
    ev = detect_events(y, SR)
    assert ev.onsets == [] and ev.beats == [] and ev.downbeats == [] and ev.tempo is None
    assert all(v == [] for v in ev.drums.values()) and set(ev.drums) == {"kick", "snare", "hihat"}


def test_steady_noise_has_no_beat():
    from soundalike.testing.synth import noise

    ev = detect_events(noise(sr=SR, duration=12.0, amplitude=0.01, seed=3), SR)
    assert ev.beats == [] and ev.tempo is None and ev.tempo_confidence < 0.3
    assert len(ev.drums["kick"]) + len(ev.drums["snare"]) < 3


@pytest.mark.slow
def test_drum_hits_of_a_rendered_drum_pattern_are_found_per_class():
    """A drums-only generated piece rendered with the default soundfont (a training font: this checks the
    plumbing and the class order; benchmarks/events.py measures unseen fonts and kits)."""
    from soundalike.data.render import default_soundfont
    from soundalike.events.pieces import generate_piece, render_piece

    piece = next(p for s in range(200) if (p := generate_piece(s, seconds=16.0, drums=1.0, melodic=0.0)).style
                 .startswith("rock, steady") and 90 < p.tempo < 150)
    y = render_piece(piece, soundfont=default_soundfont(), sample_rate=16000)
    ev = detect_events(y, 16000)
    for cls in ("kick", "snare", "hihat"):
        assert f_measure(np.asarray(ev.drums[cls]), piece.drums[cls], 0.05) > 0.8, cls
    assert ev.tempo == pytest.approx(piece.tempo, rel=0.02)


def test_model_file_round_trip_and_every_net_trains(tmp_path):
    import torch

    from soundalike.events.model import EVENTS_NETS, OUTPUTS, build_net
    from soundalike.events.model import load_events_model as load_file

    m = load_events_model()
    y = click_track(clicks(120.0, 8.0), sr=16000, duration=8.0)
    saved = m.save(tmp_path / "copy")
    back = load_file(saved.with_suffix(""))
    assert back.fingerprint == m.fingerprint and back.decoder == m.decoder
    np.testing.assert_allclose(back.activations(y), m.activations(y), atol=1e-6)
    for name in EVENTS_NETS:
        net = build_net(name, {})
        x = torch.randn(2, len(m.frontend.n_ffts), m.frontend.n_mels, 120)
        out = net(x)
        assert out.shape == (2, len(OUTPUTS), 120)
        out.sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters() if p.requires_grad)


def test_a_broken_model_file_is_a_typed_error(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "bad.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(SoundalikeError) as e:
        load_events_model(tmp_path / "bad")
    assert str(tmp_path) not in str(e.value)


def test_cli_events_json_and_typed_errors(tmp_path, capsys):
    from soundalike.audio import save
    from soundalike.cli import main

    wav = save(tmp_path / "clicks.wav", click_track(clicks(110.0, 15.0), sr=SR, duration=15.0), SR)
    assert main(["events", str(wav), "--json", "-q"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["tempo"] == pytest.approx(110.0, rel=0.02) and d["beats_per_bar"] in (3, 4)
    assert set(d["drums"]) == {"kick", "snare", "hihat"} and len(d["onsets"]) == len(clicks(110.0, 15.0))
    assert main(["events", str(wav), "--what", "beats", "--offset", "5", "--json", "-q"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["onsets"] == [] and min(d["beats"]) >= 5.0  # times in the file's time
    assert main(["events", str(wav), "--what", "beats,chords"]) != 0
    assert "--what" in capsys.readouterr().err
    assert main(["events", str(tmp_path / "missing.wav")]) != 0
    assert "missing.wav" in capsys.readouterr().err


@pytest.mark.slow
def test_catalog_keeps_tempo_and_filters_by_it(tmp_path):
    from soundalike import Catalog
    from soundalike.audio import save
    from soundalike.tasks.similar import similar

    music = tmp_path / "music"
    music.mkdir()
    tempi = {"slow.wav": 92.0, "mid.wav": 112.0, "fast.wav": 140.0}
    for name, bpm in tempi.items():
        save(music / name, click_track(clicks(bpm, 16.0), sr=SR, duration=16.0), SR)
    with Catalog.create(tmp_path / "cat", fingerprint_model=None, events_model="default") as cat:
        cat.add([music])
        for name, bpm in tempi.items():
            got = cat.track_rhythm(str(music / name))
            assert got is not None and got["tempo"] == pytest.approx(bpm, rel=0.02)
            assert len(got["descriptor"]) == 40 and got["beats_per_bar"] in (3, 4)
        fast = cat.filter_tracks("tempo>120")
        assert [cat.track(int(i)).path.rsplit("/", 1)[-1] for i in fast] == ["fast.wav"]
        hits = similar(cat, str(music / "mid.wav"), k=3, where="tempo<100")
        assert [h.track.path.rsplit("/", 1)[-1] for h in hits] == ["slow.wav"]
    with Catalog.create(tmp_path / "plain", fingerprint_model=None) as plain:
        plain.add([music])
        with pytest.raises(ParameterError, match="--events"):
            plain.filter_tracks("tempo>120")


def test_soundalike_events_is_callable_on_a_file(tmp_path):
    import soundalike
    from soundalike.audio import save

    wav = save(tmp_path / "c.wav", click_track(clicks(120.0, 10.0), sr=SR, duration=10.0), SR)
    ev = soundalike.events(str(wav), what=("beats",), offset=2.0)
    assert ev.tempo == pytest.approx(120.0, rel=0.02) and min(ev.beats) >= 2.0
    assert soundalike.events.detect_events is detect_events  # still the package


@pytest.mark.parametrize("n", [1, 100, 1023, 2049])
def test_very_short_audio_gives_events_not_a_crash(n):
    y = np.zeros(n, np.float32)
    y[0] = 0.5  # one click
    ev = detect_events(y, 16000)
    assert ev.duration == pytest.approx(n / 16000) and ev.beats == [] and ev.tempo is None
    assert all(0.0 <= t <= n / 16000 + 0.01 for t in ev.onsets)
