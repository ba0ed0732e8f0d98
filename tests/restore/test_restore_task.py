"""``soundalike restore`` and ``soundalike.restore``: formats, rates and channels kept, long files in windows,
the input never written, bad input refused; and what the shipped model does to generated tones in generated
noise, to clean input and to clipped peaks."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from soundalike.errors import AudioDecodeError, ParameterError

SR = 44100


def tones(seconds=4.0, sr=SR, freqs=(220.0, 330.0, 440.0, 660.0)):
    """A chord of four harmonic tones whose level breathes slowly (not a stationary noise)."""
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * f * t + k) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t + k)) for k, f in enumerate(freqs))
    return (0.2 * y / len(freqs) * 2).astype(np.float32)


def si_sdr(est, ref):
    from soundalike.restore.train import si_sdr as f

    return f(est, ref)


def band_power(x, freqs, sr=SR, width=6.0):
    """Power at ``freqs`` (+-width Hz) and everywhere else, from one FFT."""
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    on = np.zeros(len(f), bool)
    for fr in freqs:
        on |= np.abs(f - fr) < width
    return spec[on].sum(), spec[~on].sum()


def test_tones_in_white_noise_keep_the_tones_and_lose_the_noise():
    import soundalike
    from soundalike.restore.noises import add_at_snr, make_noise

    clean = tones()
    noisy = add_at_snr(clean, make_noise("white", len(clean), SR, np.random.default_rng(0)), 5.0)
    out = soundalike.restore(noisy, SR)
    assert out.shape == noisy.shape and out.dtype == np.float32
    tone_in, rest_in = band_power(noisy, (220, 330, 440, 660))
    tone_out, rest_out = band_power(out, (220, 330, 440, 660))
    assert 10 * np.log10(rest_in / rest_out) >= 10.0  # the noise between the tones is down 10 dB (measured: 12)
    assert abs(10 * np.log10(tone_out / tone_in)) <= 1.5  # the tones are kept
    assert si_sdr(out, clean) - si_sdr(noisy, clean) >= 6.0


def test_vinyl_crackle_is_taken_out():
    from soundalike.restore import restore_waveform
    from soundalike.restore.noises import add_at_snr, make_noise

    clean = tones()
    noisy = add_at_snr(clean, make_noise("crackle", len(clean), SR, np.random.default_rng(0)), 0.0)
    out = restore_waveform(noisy, SR)
    _, rest_in = band_power(noisy, (220, 330, 440, 660))
    _, rest_out = band_power(out, (220, 330, 440, 660))
    assert 10 * np.log10(rest_in / rest_out) >= 12.0  # measured: 20 dB
    assert si_sdr(out, clean) - si_sdr(noisy, clean) >= 12.0


def test_clean_input_passes_nearly_unchanged():
    from soundalike.restore import restore_waveform

    clean = tones()
    out = restore_waveform(clean, SR)
    assert si_sdr(out, clean) >= 20.0
    assert abs(10 * np.log10(np.mean(out.astype(np.float64) ** 2) / np.mean(clean.astype(np.float64) ** 2))) <= 0.5


def test_declip_refills_only_the_clipped_samples():
    from soundalike.restore import restoration_model, restore_waveform
    from soundalike.restore.model import clipped_samples
    from soundalike.restore.noises import hard_clip
    from soundalike.restore.train import sdr

    clean = tones()
    x = hard_clip(clean, 0.4)
    clip = clipped_samples(x, restoration_model().settings)
    out = restore_waveform(x, SR, denoise=False, declip=True)
    free = ~(clip.top | clip.bottom)
    assert np.array_equal(out[free], x[free])  # every unclipped sample as it was
    assert np.all(out[clip.top] >= clip.high) and np.all(out[clip.bottom] <= clip.low)
    assert sdr(out, clean) > sdr(x, clean) + 0.1  # measured: +0.32 dB (weak: see the model card)


def test_the_waveform_api_keeps_shape_rate_and_takes_a_strength():
    from soundalike.restore import restore_waveform
    from soundalike.restore.noises import add_at_snr, make_noise

    sr = 16000
    clean = tones(3.0, sr)
    noisy = add_at_snr(clean, make_noise("pink", len(clean), sr, np.random.default_rng(1)), 5.0)
    stereo = np.stack([noisy, 0.5 * noisy])
    out = restore_waveform(stereo, sr)
    assert out.shape == stereo.shape
    assert np.allclose(out[1], 0.5 * out[0], atol=1e-4)  # one mask for both channels
    assert np.array_equal(restore_waveform(noisy, sr, strength=0.0), noisy)
    full, half = restore_waveform(noisy, sr), restore_waveform(noisy, sr, strength=0.5)
    assert np.allclose(half, 0.5 * (noisy + full), atol=1e-4)
    assert np.array_equal(restore_waveform(np.zeros(sr, np.float32), sr), np.zeros(sr, np.float32))
    for kwargs, words in [({"denoise": False, "declip": False}, "nothing to do"), ({"strength": 1.5}, "between 0 and 1")]:
        with pytest.raises(ParameterError, match=words):
            restore_waveform(noisy, sr, **kwargs)
    with pytest.raises(ParameterError, match="NaN"):
        restore_waveform(np.full(100, np.nan, np.float32), sr)
    with pytest.raises(ParameterError, match="channels, samples"):
        restore_waveform(np.zeros((1, 2, 3), np.float32), sr)


@pytest.mark.parametrize("suffix,sr,channels,subtype", [(".wav", 48000, 2, "PCM_24"), (".flac", 22050, 1, "PCM_16"),
                                                        (".mp3", 44100, 2, None), (".ogg", 32000, 1, None)])
def test_files_keep_their_format_rate_and_channels(tmp_path, suffix, sr, channels, subtype):
    import soundfile as sf

    from soundalike.audio.io import decode, info, save
    from soundalike.tasks.restore import restore_file

    y = np.stack([tones(5.0, sr)] * channels) * np.array([[1.0], [0.7]][:channels], np.float32)
    src = tmp_path / f"in{suffix}"
    save(src, y, sr, subtype=subtype)
    before = src.read_bytes()
    dst = tmp_path / f"out{suffix}"
    report = restore_file(src, dst)
    assert src.read_bytes() == before
    a, b = info(src), info(dst)
    assert (b.sample_rate, b.channels, b.codec) == (a.sample_rate, a.channels, a.codec)
    if subtype:
        assert sf.info(str(dst)).subtype == subtype
    got, want = decode(dst, sr=None, mono=False).samples, decode(src, sr=None, mono=False).samples
    assert abs(got.shape[1] - want.shape[1]) <= 2048
    assert report.channels == channels and report.sample_rate == sr and report.format == suffix[1:]
    n = min(got.shape[1], want.shape[1])
    assert np.corrcoef(got[0, 5000: n - 5000], want[0, 5000: n - 5000])[0, 1] > 0.95  # clean in: nearly the same


def test_a_long_file_is_restored_window_by_window_like_a_whole_pass(tmp_path, monkeypatch):
    from soundalike.audio.io import decode, save
    from soundalike.restore import restore_waveform
    from soundalike.restore.noises import add_at_snr, make_noise
    from soundalike.tasks import restore as task

    clean = tones(25.0)
    noisy = add_at_snr(clean, make_noise("hiss", len(clean), SR, np.random.default_rng(4)), 5.0)
    src = tmp_path / "long.wav"
    save(src, np.stack([noisy, noisy]), SR, subtype="FLOAT")
    monkeypatch.setattr(task, "WINDOW_SECONDS", 6.0)
    steps = []
    task.restore_file(src, tmp_path / "out.wav", progress=steps.append)
    assert len(steps) >= 4 and sum(steps) == pytest.approx(25.0, abs=0.01)
    got = decode(tmp_path / "out.wav", sr=None, mono=False).samples[0]
    whole = restore_waveform(noisy, SR)
    assert got.shape == whole.shape
    diff = 10 * np.log10(np.sum(whole.astype(np.float64) ** 2) / np.sum((got - whole).astype(np.float64) ** 2))
    assert diff > 25.0  # windows (each at its own level) and one pass agree to 25 dB or better (measured: 29.6)


def test_the_cli_refuses_to_write_over_its_input_and_bad_outputs(tmp_path, capsys):
    from soundalike.audio.io import save
    from soundalike.cli import main

    src = save(tmp_path / "take.wav", tones(2.0), SR)
    before = src.read_bytes()
    for out, words in [(str(src), "is the input file"), (str(tmp_path / "." / "take.wav"), "is the input file"),
                       (str(tmp_path / "x.txt"), "cannot write"), (str(tmp_path), "cannot write")]:
        assert main(["restore", str(src), "-o", out]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and words in err, err
    os.symlink(src, tmp_path / "link.wav")
    assert main(["restore", str(src), "-o", str(tmp_path / "link.wav")]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert src.read_bytes() == before
    assert main(["restore", str(src), "-o", str(tmp_path / "clean.flac"), "--json", "--declip"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["format"] == "flac" and d["declip"] and not d["denoise"] and d["sample_rate"] == SR
    with pytest.raises(SystemExit):
        main(["restore", str(src), "-o", str(tmp_path / "y.wav"), "--strength", "2"])
    assert "between 0" in capsys.readouterr().err


def test_bad_input_gets_typed_errors_and_leaves_no_output(tmp_path):
    from soundalike.audio.io import save
    from soundalike.errors import SilentAudioError
    from soundalike.tasks.restore import restore_file

    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    silent = save(tmp_path / "silent.wav", np.zeros(2 * SR, np.float32), SR)
    for path, kind in [(text, AudioDecodeError), (empty, AudioDecodeError), (silent, SilentAudioError),
                       (tmp_path / "missing.wav", AudioDecodeError)]:
        with pytest.raises(kind):
            restore_file(path, tmp_path / "out.wav")
        assert not (tmp_path / "out.wav").exists() and not list(tmp_path.glob(".*.part"))
