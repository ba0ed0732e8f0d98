from __future__ import annotations

import numpy as np
import pytest

from soundalike.errors import ParameterError
from soundalike.features import FrontendConfig, log_mel, log_mel_chunks, mel_filterbank, n_chunks
from soundalike.testing import chirp, noise


def _librosa_db(y, cfg):
    librosa = pytest.importorskip("librosa")
    S = librosa.feature.melspectrogram(y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                       n_mels=cfg.n_mels)
    return librosa.power_to_db(S, ref=np.max, top_db=cfg.top_db)


def test_mel_matrix_matches_librosa():
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(sr=22050, n_fft=2048, n_mels=128, fmin=0.0, fmax=11025.0)
    np.testing.assert_allclose(ours, librosa.filters.mel(sr=22050, n_fft=2048, n_mels=128), atol=1e-7)


def test_log_mel_agrees_with_librosa_on_real_music(rendered):
    from soundalike.audio import load

    cfg = FrontendConfig()
    for path in sorted((rendered / "audio").rglob("*.flac"))[:3]:
        y, _ = load(path, sr=cfg.sample_rate, duration=15.0)
        ours = log_mel(y, cfg).numpy()
        ref = _librosa_db(y, cfg)
        assert ours.shape == ref.shape
        assert np.abs(ours - ref).max() < 0.1, path


def test_log_mel_agrees_with_librosa_on_generated_signals():
    cfg = FrontendConfig()
    y = chirp(60, 9000, duration=4.0) + noise(duration=4.0, amplitude=0.05)
    assert np.abs(log_mel(y, cfg).numpy() - _librosa_db(y, cfg)).max() < 0.1


def test_batched_equals_one_by_one():
    cfg = FrontendConfig()
    a, b = chirp(100, 2000, duration=3.0), noise(duration=3.0, seed=4)
    batch = log_mel(np.stack([a, b]), cfg).numpy()
    np.testing.assert_allclose(batch[0], log_mel(a, cfg).numpy(), atol=1e-4)
    np.testing.assert_allclose(batch[1], log_mel(b, cfg).numpy(), atol=1e-4)


def test_chunks_are_128_by_129_each_referenced_to_its_own_max():
    cfg = FrontendConfig()
    y = chirp(100, 4000, duration=10.0)
    y[: len(y) // 2] *= 0.01  # a quiet first half: each chunk still peaks at 0 dB
    ch = log_mel_chunks(y, cfg).numpy()
    frames = 1 + len(y) // cfg.hop_length
    assert ch.shape == (n_chunks(frames, chunk_frames=129, hop_frames=129), 128, 129)
    assert ch.shape[0] == 3
    np.testing.assert_allclose(ch.max(axis=(1, 2)), 0.0, atol=1e-5)
    assert ch.min() >= -80.0
    overlapping = log_mel_chunks(y, cfg, hop_frames=43).numpy()
    assert overlapping.shape[0] == 1 + (frames - 129) // 43
    np.testing.assert_allclose(overlapping[3], ch[1], atol=1e-4)  # frame 129 = 3 hops of 43


def test_short_clip_gives_one_padded_chunk():
    ch = log_mel_chunks(chirp(200, 400, duration=1.0), FrontendConfig()).numpy()
    assert ch.shape == (1, 128, 129)
    assert (ch[0, :, -20:] == -80.0).all()  # the padding is silence, at the floor


def test_chunk_duration_is_about_three_seconds():
    assert abs(FrontendConfig().chunk_seconds - 2.97) < 0.01


def test_bad_config_is_refused():
    with pytest.raises(ParameterError):
        FrontendConfig(fmax=30000.0)
    with pytest.raises(ParameterError):
        FrontendConfig.from_dict({"n_mels": 64, "bogus": 1})
