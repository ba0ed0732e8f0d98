"""Sampled drum kits in Hydrogen's format: names to General MIDI notes, both XML layouts, and drums rendered
with the samples exactly at the piece's hit times."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.events.kits import cached_kit, gm_note_for, load_kit, render_drums

SR = 16000


@pytest.mark.parametrize("name,note", [
    ("Kick", 36), ("BassDrum", 36), ("Kick (Tama Superstar 22 inch)", 36), ("VariBreaks Kick 2", 36),
    ("Snare Rock", 38), ("Pearl Snare Rimshot", 38), ("Hand Clap", 39), ("Pearl Side Stick", 37),
    ("Closed HH", 42), ("Hi-Hat Closed (Paiste)", 42), ("Sabian Hat Pedal", 44), ("Pedal HH", 44),
    ("Open HH", 46), ("Hi Hat Opened", 46), ("Sabian Hat Semi-Open", 46), ("VariBreaks Hat 1 Op", 46),
    ("Tom Low", 43), ("Floor Tom", 43), ("Tom Mid", 47), ("Tom Hi", 50), ("Ride Bell", 53), ("Paiste Ride", 51),
    ("Crash Left", 49), ("China (Paiste Alpha 18 inch)", 49), ("Cowbell", 56),
    ("Djembe1 Slap", None), ("Zap 1", None), ("FX", None),
])
def test_instrument_names_map_to_general_midi_drum_notes(name, note):
    assert gm_note_for(name) == note


def _kit(folder, layered: bool):
    import soundfile as sf

    folder.mkdir()
    t = np.arange(int(0.2 * SR)) / SR
    for f, freq in (("k_soft.wav", 60.0), ("k_hard.wav", 70.0), ("sn.wav", 200.0), ("hh.flac", 5000.0)):
        lead = np.zeros(int(0.01 * SR))  # 10 ms of silence before the hit: trimmed away
        sf.write(folder / f, np.concatenate([lead, np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.03)]), SR)
    if layered:
        body = ("<instrument><id>0</id><name>Kick</name>"
                "<layer><filename>k_soft.wav</filename><min>0</min><max>0.5</max><gain>1</gain></layer>"
                "<layer><filename>k_hard.wav</filename><min>0.5</min><max>1</max><gain>1</gain></layer></instrument>"
                "<instrument><id>1</id><name>Snare</name><layer><filename>sn.wav</filename></layer></instrument>"
                "<instrument><id>2</id><name>Closed HH</name><layer><filename>hh.flac</filename></layer></instrument>"
                "<instrument><id>3</id><name>Zap</name><layer><filename>sn.wav</filename></layer></instrument>")
    else:
        body = ("<instrument><id>0</id><filename>k_hard.wav</filename><name>Kick</name></instrument>"
                "<instrument><id>1</id><filename>sn.wav</filename><name>Snare</name></instrument>"
                "<instrument><id>2</id><filename>hh.flac</filename><name>Closed HH</name></instrument>"
                "<instrument><id>3</id><filename>gone.wav</filename><name>Tom Low</name></instrument>")
    (folder / "drumkit.xml").write_text('<?xml version="1.0"?><drumkit_info xmlns="http://www.hydrogen-music.org/'
                                        f'drumkit"><name>test kit</name><instrumentList>{body}</instrumentList>'
                                        "</drumkit_info>")
    return folder


@pytest.mark.parametrize("layered", [True, False], ids=["layers", "one-file"])
def test_a_kit_plays_each_hit_at_its_time_and_leaves_the_rest_to_the_soundfont(tmp_path, layered):
    import mido

    kit = load_kit(_kit(tmp_path / "kit", layered))
    assert kit.name == "test kit" and set(kit.notes) == {36, 38, 42}  # no zap, no tom without its file
    assert kit.has(35) == 36 and kit.has(40) == 38 and kit.has(45) is None
    hits = [(0.5, 36, 30), (1.0, 38, 100), (1.5, 42, 100), (2.0, 36, 120), (2.5, 45, 100)]
    events = [(0.0, mido.Message("program_change", channel=0, program=1))]
    for t, note, vel in hits:
        events += [(t, mido.Message("note_on", channel=9, note=note, velocity=vel)),
                   (t + 0.08, mido.Message("note_off", channel=9, note=note, velocity=0))]
    y, rest = render_drums(events, kit, sample_rate=SR, n=3 * SR, rng=np.random.default_rng(0))
    # the tom (no sample) and the program change stay for the soundfont
    assert [(t, m.type, getattr(m, "note", None)) for t, m in rest] == [
        (0.0, "program_change", None), (2.5, "note_on", 45), (2.58, "note_off", 45)]
    env = np.abs(y)
    for t, note, _ in hits[:4]:
        i = int(t * SR)
        assert env[i - 80: i - 2].max() < 1e-3 < env[i: i + 80].max(), (t, note)  # starts at the hit, not 10 ms late
    # velocity layers: the soft kick is the 60 Hz sample, the hard one 70 Hz
    spec = lambda a: np.argmax(np.abs(np.fft.rfft(y[int(a * SR): int(a * SR) + 1600], 16000)))  # noqa: E731
    assert spec(0.5) == (60 if layered else 70) and spec(2.0) == 70
    assert y[int(2.0 * SR):].max() > 2 * y[int(0.5 * SR): int(0.7 * SR)].max()  # louder at velocity 120 than 30


def test_render_piece_with_a_kit_keeps_every_labelled_hit_audible(tmp_path):
    from soundalike.data.render import default_soundfont
    from soundalike.events.pieces import generate_piece, render_piece

    kit = cached_kit(str(_kit(tmp_path / "kit", True)))
    piece = next(p for s in range(50) if len((p := generate_piece(s, seconds=8.0, drums=1.0, melodic=1.0)).drums["kick"]))
    y = render_piece(piece, soundfont=default_soundfont(), sample_rate=SR, kit=kit, seed=3)
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0 and len(y) >= int(piece.seconds * SR)
    rise = [np.abs(y[int(t * SR): int(t * SR) + 160]).max() / (np.abs(y[int(t * SR) - 240: int(t * SR) - 80]).max() + 1e-6)
            for t in piece.drums["kick"] if t > 0.05]
    assert np.median(rise) > 1.5  # the kit's kick sounds at the labelled kick times
