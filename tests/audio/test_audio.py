from __future__ import annotations

import numpy as np
import pytest

from soundalike.audio import io as aio
from soundalike.audio import load, save
from soundalike.errors import AudioDecodeError, AudioTooLongError, ParameterError
from soundalike.testing import chirp, synth_track, tone

SR = 22050


def _best_lag_corr(a: np.ndarray, b: np.ndarray, max_lag: int = 3000) -> tuple[int, float]:
    n = min(len(a), len(b)) - 2 * max_lag
    ref = a[max_lag : max_lag + n]
    best = (0, -1.0)
    for lag in range(-max_lag, max_lag + 1, 1):
        seg = b[max_lag + lag : max_lag + lag + n]
        c = float(np.dot(ref, seg) / (np.linalg.norm(ref) * np.linalg.norm(seg) + 1e-12))
        if c > best[1]:
            best = (lag, c)
    return best


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3", "m4a", "opus"])
def test_every_format_decodes(tmp_path, ext):
    y = synth_track(5, duration=6.0)
    p = save(tmp_path / f"x.{ext}", y, SR, bitrate=128_000)
    z, sr = load(p, sr=SR)
    assert sr == SR and z.dtype == np.float32
    assert abs(len(z) / SR - 6.0) < 0.1  # encoder padding is small
    lag, corr = _best_lag_corr(y, z, max_lag=2500)
    assert corr > (0.999 if ext in ("wav", "flac") else 0.9), (ext, lag, corr)


def test_lossless_roundtrip_is_exact_to_16_bits(tmp_path):
    y = tone(440.0, duration=1.0)
    z, _ = load(save(tmp_path / "a.flac", y, SR), sr=SR)
    np.testing.assert_allclose(z, y, atol=1.5 / 32768)


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "ogg"])
def test_offset_and_duration_pick_the_right_window(tmp_path, ext):
    y = chirp(100, 5000, duration=8.0)
    p = save(tmp_path / f"c.{ext}", y, SR, bitrate=192_000)
    full, _ = load(p, sr=SR)
    win, _ = load(p, sr=SR, offset=3.0, duration=2.0)
    assert len(win) == 2 * SR
    if ext in ("wav", "flac"):
        np.testing.assert_array_equal(win, full[3 * SR : 5 * SR])
    else:  # the seek lands within a few samples of the same decoded audio
        ref = full[3 * SR - 200 : 5 * SR + 200]
        corr = [float(np.dot(win, ref[lag : lag + len(win)])) / (np.linalg.norm(win) * np.linalg.norm(ref[lag : lag + len(win)]))
                for lag in range(0, 401)]
        best = int(np.argmax(corr)) - 200
        assert max(corr) > 0.99 and abs(best) <= 2, (best, max(corr))


def test_resampling_keeps_pitch(tmp_path):
    y = tone(1000.0, sr=44100, duration=2.0)
    z, sr = load(save(tmp_path / "t.wav", y, 44100), sr=16000)
    assert sr == 16000 and abs(len(z) - 32000) <= 1
    spec = np.abs(np.fft.rfft(z))
    assert abs(np.argmax(spec) * 16000 / len(z) - 1000.0) < 2.0


def test_stereo_is_averaged(tmp_path):
    import soundfile as sf

    left, right = tone(440.0, duration=1.0), np.zeros(SR, np.float32)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), SR)
    z, _ = load(tmp_path / "s.wav", sr=SR)
    np.testing.assert_allclose(z, left / 2, atol=1e-4)


@pytest.mark.parametrize("name", ["weird name with spaces.wav", "ünïcødé-♫.wav", "http:evil.wav", "-rf.wav",
                                  "file:x.wav", "a;rm -rf b.wav"])
def test_hostile_file_names(tmp_path, name):
    p = save(tmp_path / name, tone(330.0, duration=0.5), SR)
    z, _ = load(p, sr=SR)
    assert len(z) == SR // 2


def _assert_bad(path, fragment):
    with pytest.raises(AudioDecodeError) as exc:
        load(path, sr=SR)
    assert str(path) in str(exc.value)
    assert fragment in str(exc.value)


def test_bad_files_raise_audio_decode_error(tmp_path):
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    _assert_bad(empty, "empty")
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio\n" * 50)
    _assert_bad(text, "it is a text file")  # not soundfile's "possibly a pipe?"
    junk = tmp_path / "junk.wav"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    _assert_bad(junk, "no decoder recognises its format")
    _assert_bad(tmp_path / "missing.flac", "does not exist")
    _assert_bad(tmp_path, "directory")


@pytest.mark.parametrize("ext", ["mp3", "flac", "wav"])
def test_truncated_file_is_reported(tmp_path, ext):
    p = save(tmp_path / f"t.{ext}", synth_track(1, duration=20.0), SR, bitrate=128_000)
    data = p.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[: len(data) * 2 // 5])
    _assert_bad(cut, "truncated")


def test_too_long_is_refused_before_decoding(tmp_path):
    p = save(tmp_path / "long.flac", tone(220.0, duration=12.0), SR)
    with pytest.raises(AudioTooLongError, match="--max-duration"):
        load(p, sr=SR, max_duration=5.0)
    z, _ = load(p, sr=SR, max_duration=5.0, duration=4.0)  # a short window of it is fine
    assert len(z) == 4 * SR


def test_fallback_decoder_is_used_when_pyav_fails(tmp_path, monkeypatch):
    p = save(tmp_path / "a.flac", tone(440.0, duration=1.0), SR)

    def broken(*args, **kwargs):
        raise aio._BackendError("simulated failure")

    monkeypatch.setitem(aio.BACKENDS, "pyav", broken)
    out = aio.decode(p, sr=SR)
    assert out.backend == "soundfile" and len(out.samples) == SR


def test_bad_parameters():
    with pytest.raises(ParameterError):
        load("x.wav", sr=SR, offset=-1.0)
    with pytest.raises(ParameterError):
        load("x.wav", sr=SR, duration=0.0)


def test_offset_past_the_end(tmp_path):
    p = save(tmp_path / "a.wav", tone(440.0, duration=1.0), SR)
    with pytest.raises(AudioDecodeError, match="past the end"):
        load(p, sr=SR, offset=5.0)


def test_both_decoders_read_the_files_own_tags(tmp_path):
    import soundfile as sf

    from soundalike.audio.io import decode

    path = tmp_path / "tagged.flac"
    with sf.SoundFile(str(path), "w", 22050, 1, format="FLAC") as f:
        f.title, f.artist = "A Title", "An Artist"
        f.write(np.sin(np.arange(22050) / 5.0).astype(np.float32) * 0.3)
    for backend in ("pyav", "soundfile"):
        tags = decode(path, sr=None, backends=(backend,)).info.tags
        assert (tags.get("title"), tags.get("artist")) == ("A Title", "An Artist"), backend
