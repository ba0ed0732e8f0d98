"""Notes as data: MIDI files and events, the note feature, the front-end's bands, the decoder, the pieces."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.errors import ParameterError
from soundalike.transcribe.notes import (
    FEATURE_DIM,
    Note,
    midi_bytes,
    note_name,
    notes_from_events,
    piano_roll,
    read_midi,
    write_midi,
)


def test_midi_file_round_trips_times_pitches_and_velocities(tmp_path):
    notes = [Note(0.5, 1.25, 60, 100), Note(0.5, 1.0, 64, 64), Note(1.0, 1.5, 64, 30), Note(2.013, 2.2, 108, 1)]
    path = write_midi(notes, tmp_path / "out.mid", program=40)
    back = read_midi(path)
    assert [(n.pitch, n.velocity) for n in back] == [(60, 100), (64, 64), (64, 30), (108, 1)]
    for a, b in zip(back, notes, strict=True):
        assert a.onset == pytest.approx(b.onset, abs=0.002) and a.offset == pytest.approx(b.offset, abs=0.002)
    import mido

    progs = [m.program for m in mido.MidiFile(str(path)).tracks[0] if m.type == "program_change"]
    assert progs == [40]
    assert midi_bytes(notes).startswith(b"MThd")
    with pytest.raises(ParameterError):
        midi_bytes(notes, program=128)


def test_a_file_that_is_not_midi_is_a_typed_error(tmp_path):
    bad = tmp_path / "x.mid"
    bad.write_bytes(b"RIFF not midi at all")
    with pytest.raises(ParameterError, match="x.mid"):
        read_midi(bad)


def test_notes_from_events_pairs_ons_and_offs_and_skips_drums():
    import mido

    on = lambda t, p, ch=0, v=90: (t, mido.Message("note_on", channel=ch, note=p, velocity=v))  # noqa: E731
    off = lambda t, p, ch=0: (t, mido.Message("note_off", channel=ch, note=p))  # noqa: E731
    events = [on(0.0, 60), on(0.0, 36, ch=9), on(0.5, 60, v=50), off(0.9, 60), off(0.1, 36, ch=9), on(1.0, 67)]
    events.sort(key=lambda e: e[0])
    notes = notes_from_events(events, end=2.0)
    # a repeated note_on ends the sounding note; a note still on at the end ends there; drums are not notes
    assert [(n.onset, n.offset, n.pitch, n.velocity) for n in notes] == [
        (0.0, 0.5, 60, 90), (0.5, 0.9, 60, 50), (1.0, 2.0, 67, 90)]
    assert note_name(60) == "C4" and note_name(69) == "A4" and note_name(21) == "A0"
    roll = piano_roll(notes, fps=10)
    assert roll[60, 0:5].all() and roll[60, 5:9].all() and not roll[60, 10] and roll[67, 10:20].all()


def _tune(shift: int = 0, velocity: int = 80, stretch: float = 1.0) -> list[Note]:
    melody = [60, 62, 64, 65, 67, 65, 64, 62, 60, 67, 72, 71, 69, 67]
    bass = [48, 43, 45, 41]
    notes = [Note(i * 0.4 * stretch, (i + 0.9) * 0.4 * stretch, p + shift, velocity) for i, p in enumerate(melody)]
    notes += [Note(i * 1.6 * stretch, (i + 1) * 1.6 * stretch, p + shift, velocity) for i, p in enumerate(bass)]
    return notes


def test_chroma_feature_ignores_loudness_and_octaves_and_tells_works_apart():
    from soundalike.transcribe.notes import activation_chroma, chroma_feature, chroma_sequence

    a = chroma_feature(chroma_sequence(_tune()))
    assert a.shape == (FEATURE_DIM,) and np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert float(a @ chroma_feature(chroma_sequence(_tune(velocity=30)))) == pytest.approx(1.0, abs=1e-6)
    octave = [Note(n.onset, n.offset, n.pitch + 12 if n.pitch < 60 else n.pitch, n.velocity) for n in _tune()]
    assert float(a @ chroma_feature(chroma_sequence(octave))) == pytest.approx(1.0, abs=1e-6)
    other = [Note(i * 0.3, i * 0.3 + 0.25, p, 80) for i, p in enumerate([69, 68, 66, 64, 63, 61, 59, 57] * 2)]
    assert float(a @ chroma_feature(chroma_sequence(other))) < 0.6
    assert float(a @ chroma_feature(chroma_sequence(_tune(shift=3)))) < 0.6  # another key: other pitch classes
    assert not chroma_feature(np.zeros((0, 12), np.float32)).any()
    # the model's frame activations give the same chroma as the notes they show
    fps = 50.0
    frame = np.zeros((88, 400), np.float32)
    for n in _tune():
        frame[n.pitch - 21, int(n.onset * fps): int(n.offset * fps)] = 0.9
    seq = activation_chroma(frame, fps)
    want = chroma_sequence(_tune())
    m = min(len(seq), len(want))
    assert np.mean(np.sum(seq[:m] * want[:m], axis=1)) > 0.9


def test_logfrequency_bands_read_a_sine_at_its_pitch_and_the_stack_lines_up_harmonics():
    import torch

    from soundalike.transcribe.model import (
        NotesFeatures,
        NotesFrontend,
        band_pitches,
        build_net,
        net_config,
    )

    fe = NotesFrontend()
    feats = NotesFeatures(fe)
    stack = build_net("notes_hcnn", net_config(fe)).stack
    sr = fe.sample_rate
    t = np.arange(sr * 2) / sr
    for pitch in (33, 45, 57, 69, 81, 93):  # low bands come from the long (decimated) STFT, high from the short
        f = 440.0 * 2 ** ((pitch - 69) / 12)
        spec = feats(torch.from_numpy((0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32))[None])
        col = spec[0, :, 60].numpy()
        assert spec.shape[1] == len(band_pitches(fe))
        assert band_pitches(fe)[int(np.argmax(col))] == pytest.approx(pitch), pitch
        # in the stack, the channel of harmonic 2 at the band an octave below holds the pitch's band
        x = stack(spec)
        k = (pitch - 12 - 21) * fe.bins_per_semitone
        assert x[0, fe.harmonics.index(2.0), k, 60] == pytest.approx(float(col.max()), rel=1e-6)
        assert x[0, fe.harmonics.index(1.0), k + 12 * fe.bins_per_semitone, 60] == pytest.approx(float(col.max()))


def test_decoder_turns_activations_into_notes():
    from soundalike.transcribe.decode import NoteDecoder, decode_notes
    from soundalike.transcribe.model import N_PITCHES

    fps = 50.0
    act = np.zeros((4, N_PITCHES, 200), np.float32)
    k = 60 - 21
    act[0, k, 10], act[0, k, 11] = 0.9, 0.6  # an onset peak at frame 10
    act[1, k, 10:40] = 0.8
    act[3, k, 10] = 0.5
    act[0, k, 25] = 0.95  # a re-strike while the frame still sounds: a second note
    act[0, k + 7, 100] = 0.3  # below the onset threshold: nothing
    act[1, k + 7, 100:150] = 0.9
    notes = decode_notes(act, fps=fps, decoder=NoteDecoder(onset_threshold=0.5, frame_threshold=0.4))
    assert [(n.onset, n.offset, n.pitch) for n in notes] == [(0.2, 0.5, 60), (0.5, 0.8, 60)]
    assert notes[0].velocity == 64
    # a stricter threshold for onsets while the key sounds: the swell at frame 25 is no re-strike
    strict = NoteDecoder(onset_threshold=0.5, frame_threshold=0.4, reonset_threshold=0.97)
    assert [(n.onset, n.offset) for n in decode_notes(act, fps=fps, decoder=strict)] == [(0.2, 0.8)]


def test_generated_pieces_are_seeded_and_their_notes_fit_the_keyboard():
    from soundalike.transcribe.pieces import generate_texture, make_piece, pop_piece

    a, b = generate_texture(5), generate_texture(5)
    assert a.notes == b.notes and a.notes != generate_texture(6).notes
    for piece in (a, pop_piece(3), make_piece(9)):
        assert piece.notes and all(21 <= n.pitch <= 108 and 0 <= n.onset < n.offset for n in piece.notes)
        assert all(1 <= n.velocity <= 127 for n in piece.notes)


def test_chroma_sequences_line_up_for_another_arrangement_at_another_tempo():
    from soundalike.transcribe.notes import alignment_score, chroma_sequence

    def song(seed: int, stretch: float = 1.0, drop: float = 0.0, lead_in: float = 0.0) -> list[Note]:
        rng = np.random.default_rng(seed)
        chords = [[0, 4, 7], [5, 9, 0], [7, 11, 2], [9, 0, 4], [2, 5, 9]]
        out = []
        for i in range(48):
            chord = chords[int(rng.integers(0, len(chords)))]
            for p in chord:
                octave = 12 * int(rng.integers(0, 2))
                if np.random.default_rng([seed, i, p]).random() >= drop:
                    t = lead_in + i * 0.5 * stretch
                    out.append(Note(t, t + 0.5 * stretch, 48 + p + octave, 80))
        return out

    a = chroma_sequence(song(1))
    assert a.shape == (96, 12) and np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert alignment_score(a, a) == pytest.approx(1.0, abs=1e-6)
    twin = chroma_sequence(song(1, stretch=1.12, drop=0.25, lead_in=1.5))  # slower, sparser, later
    other = chroma_sequence(song(2))
    assert alignment_score(a, twin) > alignment_score(a, other) + 0.15
    assert alignment_score(a, np.zeros((0, 12), np.float32)) == 0.0
    assert chroma_sequence([]).shape == (0, 12)
