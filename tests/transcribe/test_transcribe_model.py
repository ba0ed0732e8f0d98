"""The shipped transcription model on generated audio of known notes (single tones, chords, a scale,
silence); its file, the CLI, the task layer, the catalog's note features and ``similar --by notes``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soundalike.errors import ParameterError, SoundalikeError
from soundalike.testing.synth import harmonic_notes
from soundalike.transcribe import load_transcription_model, transcribe_waveform
from soundalike.transcribe.notes import Note
from soundalike.transcribe.train import note_f1

SR = 22050
SCALE = [(0.5 + 0.5 * i, 0.9 + 0.5 * i, p) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])]


def _ref(notes: list[tuple[float, float, int]]) -> list[Note]:
    return [Note(a, b, p) for a, b, p in notes]


def test_a_scale_is_transcribed_note_for_note():
    got = transcribe_waveform(harmonic_notes(SCALE, sr=SR), SR).notes
    assert [n.pitch for n in got] == [p for _, _, p in SCALE]
    for n, (on, off, _) in zip(got, SCALE, strict=True):
        assert abs(n.onset - on) < 0.05 and abs(n.offset - off) < 0.1


@pytest.mark.parametrize("pitch", [36, 48, 57, 69, 84, 96])
def test_single_tones_across_the_keyboard(pitch):
    got = transcribe_waveform(harmonic_notes([(0.3, 1.3, pitch)], sr=SR, duration=2.0), SR).notes
    assert [n.pitch for n in got] == [pitch] and abs(got[0].onset - 0.3) < 0.05


def test_chords_give_every_note_and_no_other():
    chords = [(0.5, 1.5, p) for p in (48, 55, 64)] + [(2.0, 3.0, p) for p in (50, 57, 65, 69)] + \
             [(3.5, 4.5, p) for p in (43, 59, 62, 67)]
    got = transcribe_waveform(harmonic_notes(chords, sr=SR), SR).notes
    prec, rec, f1 = note_f1(got, _ref(chords))
    assert rec == 1.0 and prec >= 0.85, [(n.onset, n.pitch) for n in got]


def test_velocity_follows_loudness_within_a_piece():
    loud = harmonic_notes([(0.5, 1.0, 60), (1.5, 2.0, 64)], sr=SR, amplitude=0.3)
    soft = harmonic_notes([(2.5, 3.0, 62), (3.5, 4.0, 65)], sr=SR, amplitude=0.03, duration=4.5)
    y = np.zeros(len(soft), np.float32)
    y[: len(loud)] += loud
    y += soft
    got = {n.pitch: n.velocity for n in transcribe_waveform(y, SR).notes}
    assert set(got) >= {60, 62, 64, 65}
    assert min(got[60], got[64]) > max(got[62], got[65])


@pytest.mark.parametrize("y", [np.zeros(SR * 5, np.float32), np.full(SR * 3, 1e-6, np.float32),
                               np.zeros(0, np.float32)], ids=["zeros", "dc", "empty"])
def test_silence_gives_no_notes(y):
    res = transcribe_waveform(y, SR)
    assert res.notes == [] and res.duration == pytest.approx(len(y) / SR)


def test_noise_gives_few_notes_and_bad_waveforms_are_typed_errors():
    from soundalike.testing.synth import noise

    assert len(transcribe_waveform(noise(sr=SR, duration=6.0, amplitude=0.05, seed=1), SR).notes) <= 3
    with pytest.raises(ParameterError, match="NaN"):
        transcribe_waveform(np.full(1000, np.nan, np.float32), SR)
    with pytest.raises(ParameterError, match="shape"):
        transcribe_waveform(np.zeros((2, 2, 2), np.float32), SR)


@pytest.mark.parametrize("n", [1, 100, 1023, 4097])
def test_very_short_audio_gives_notes_not_a_crash(n):
    y = harmonic_notes([(0.0, 0.5, 69)], sr=16000, duration=1.0)[:n]
    res = transcribe_waveform(y, 16000)
    assert all(0.0 <= x.onset <= n / 16000 for x in res.notes)


def test_model_file_round_trip_onnx_matches_torch_and_the_net_trains(tmp_path):
    import torch

    from soundalike.transcribe.model import HEADS, N_PITCHES, build_net
    from soundalike.transcribe.model import load_transcription_model as load_file

    m = load_transcription_model()
    y = harmonic_notes(SCALE, sr=16000)
    back = load_file(m.save(tmp_path / "copy").with_suffix(""))
    assert back.fingerprint == m.fingerprint and back.decoder == m.decoder
    eager = load_file(tmp_path / "copy")
    eager.runtime = "torch"
    np.testing.assert_allclose(back.activations(y), eager.activations(y), atol=1e-5)
    net = build_net("notes_hcnn", {})
    x = torch.randn(2, m.net.config.spectrogram_bands, 50)
    out = net(x)
    assert out.shape == (2, len(HEADS), N_PITCHES, 50)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_a_broken_model_file_is_a_typed_error(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "bad.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(SoundalikeError) as e:
        load_transcription_model(tmp_path / "bad")
    assert str(tmp_path) not in str(e.value)


def test_cli_transcribe_writes_midi_and_json(tmp_path, capsys):
    from soundalike.audio import save
    from soundalike.cli import main
    from soundalike.transcribe.notes import read_midi

    wav = save(tmp_path / "scale.wav", harmonic_notes(SCALE, sr=SR), SR)
    out = tmp_path / "scale.mid"
    assert main(["transcribe", str(wav), "-o", str(out), "--json", "-q"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [n["pitch"] for n in d["notes"]] == [p for _, _, p in SCALE] and d["midi"] == str(out)
    midi = read_midi(out)
    assert [n.pitch for n in midi] == [p for _, _, p in SCALE]
    assert [round(n.onset, 2) for n in midi] == [round(x["onset"], 2) for x in d["notes"]]
    assert main(["transcribe", str(wav), "--offset", "2.45", "--json", "-q"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [n["pitch"] for n in d["notes"]] == [67, 69, 71, 72] and d["notes"][0]["onset"] >= 2.45
    assert main(["transcribe", str(wav)]) == 0
    assert "C4 ( 60)" in capsys.readouterr().out
    assert main(["transcribe", str(tmp_path / "missing.wav")]) != 0
    assert "missing.wav" in capsys.readouterr().err
    before = wav.read_bytes()
    assert main(["transcribe", str(wav), "-o", str(wav)]) == 2  # never writes MIDI over the audio
    assert "is the input file" in capsys.readouterr().err and wav.read_bytes() == before


def test_a_long_file_streams_in_windows_and_keeps_notes_across_their_edges(tmp_path, monkeypatch):
    from soundalike.audio import save
    from soundalike.tasks import transcribe as task

    notes = [(0.5 + 0.7 * i, 1.0 + 0.7 * i, 55 + (i * 5) % 24) for i in range(40)]
    wav = save(tmp_path / "long.wav", harmonic_notes(notes, sr=SR), SR)
    whole = task.transcribe(wav)
    monkeypatch.setattr(task, "WINDOW_SECONDS", 8.0)  # 29 s of audio in four windows
    done: list[float] = []
    parts = task.transcribe(wav, progress=done.append)
    assert [(n.pitch, round(n.onset, 2)) for n in parts.notes] == [(n.pitch, round(n.onset, 2)) for n in whole.notes]
    assert note_f1(parts.notes, _ref(notes))[2] > 0.8
    assert parts.chroma.shape == whole.chroma.shape  # the windows' chroma frames follow each other
    sounding = whole.chroma.any(axis=1)
    assert np.mean(np.sum(parts.chroma[sounding] * whole.chroma[sounding], axis=1)) > 0.98
    assert sum(done) == pytest.approx(len(harmonic_notes(notes, sr=SR)) / SR, abs=0.05)


def test_soundalike_transcribe_is_callable_on_a_file(tmp_path):
    import soundalike
    from soundalike.audio import save

    wav = save(tmp_path / "s.wav", harmonic_notes(SCALE, sr=SR), SR)
    res = soundalike.transcribe(str(wav), duration=2.0)
    assert [n.pitch for n in res.notes] == [60, 62, 64]
    assert soundalike.transcribe.transcribe_waveform is transcribe_waveform  # still the package


def _arrangement(notes: list[tuple[float, float, int]], *, brightness: int, seed: int) -> np.ndarray:
    return harmonic_notes(notes, sr=SR, harmonics=brightness, seed=seed)


@pytest.mark.slow
def test_catalog_keeps_note_features_and_finds_the_other_arrangement(tmp_path):
    from soundalike import Catalog
    from soundalike.audio import save
    from soundalike.tasks.similar import similar

    rng = np.random.default_rng(0)
    music = tmp_path / "music"
    music.mkdir()
    works = {}
    for w in range(4):  # four tunes in one key, each in a bright and a dull arrangement, a little apart in tempo
        pitches = rng.choice([60, 62, 64, 65, 67, 69, 71, 72], size=24)
        works[w] = [(0.3 + 0.35 * i, 0.6 + 0.35 * i, int(p)) for i, p in enumerate(pitches)]
        works[w] += [(0.3 + 1.4 * i, 1.6 + 1.4 * i, int(rng.choice([48, 53, 55]))) for i in range(6)]
        save(music / f"w{w}-bright.wav", _arrangement(works[w], brightness=10, seed=w), SR)
        stretched = [(a * 1.1, b * 1.1, p - 12 if p >= 60 and i % 2 else p) for i, (a, b, p) in enumerate(works[w])]
        save(music / f"w{w}-dull.wav", _arrangement(stretched, brightness=2, seed=w + 10), SR)
    with Catalog.create(tmp_path / "cat", fingerprint_model=None, notes_model="default", tag_heads=None) as cat:
        cat.add([music])
        assert cat.info()["notes"]["tracks"] == 8
        for w in range(4):
            for kind, other in (("bright", "dull"), ("dull", "bright")):
                tid = cat.track(str(music / f"w{w}-{kind}.wav")).id
                top = similar(cat, tid, k=1, by="notes")
                assert top[0].track.path.endswith(f"w{w}-{other}.wav"), (w, kind)
        top = similar(cat, str(music / "w2-bright.wav"), k=2, by="notes")  # a file query: itself, then its twin
        assert {t.track.path.rsplit("/", 1)[-1] for t in top} == {"w2-bright.wav", "w2-dull.wav"}
    with Catalog.create(tmp_path / "plain", fingerprint_model=None, tag_heads=None) as plain:
        plain.add([music])
        with pytest.raises(ParameterError, match="--notes"):
            similar(plain, 1, by="notes")
        with pytest.raises(ParameterError, match="sound, hash, notes"):
            similar(plain, 1, by="lyrics")
