"""The restoration's parts that do not depend on how well the shipped model is trained: the generated
noises, clipping detection and the projection, the mask's parametrisation, multichannel reading and
writing."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.errors import ParameterError

SR = 44100


def test_every_noise_is_unit_rms_finite_and_reproducible():
    from soundalike.restore.noises import NOISES, TRAIN_NOISES, UNSEEN_NOISES, make_noise

    assert set(TRAIN_NOISES) == {"white", "pink", "brown", "hum", "crackle", "hiss", "room", "crowd"}
    assert not set(TRAIN_NOISES) & set(UNSEEN_NOISES)
    for name in NOISES:
        a = make_noise(name, SR, SR, np.random.default_rng(3))
        b = make_noise(name, SR, SR, np.random.default_rng(3))
        assert a.dtype == np.float32 and np.all(np.isfinite(a)), name
        assert abs(float(np.sqrt(np.mean(a.astype(np.float64) ** 2))) - 1.0) < 1e-3, name
        assert np.array_equal(a, b), name
    with pytest.raises(ParameterError, match="unknown noise"):
        make_noise("thunder", 10, SR, np.random.default_rng(0))


def _band_db(x, lo, hi, sr=SR):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return 10 * np.log10(spec[(f >= lo) & (f < hi)].sum() / spec.sum())


def test_the_noises_sound_like_their_names():
    from soundalike.restore.noises import make_noise

    rng = np.random.default_rng(1)
    hum = make_noise("hum", 4 * SR, SR, rng)
    spec = np.abs(np.fft.rfft(hum)) ** 2
    f = np.fft.rfftfreq(len(hum), 1 / SR)
    band = (f > 45) & (f < 65)
    f0 = float(f[band][np.argmax(spec[band])])  # 50 or 60 Hz, +-0.5 %
    assert min(abs(f0 - 50), abs(f0 - 60)) < 0.6
    near = sum(spec[np.abs(f - k * f0) < 1 + 0.002 * k * f0].sum() for k in range(1, 31))
    assert near / spec.sum() > 0.95  # energy sits on the mains harmonics
    crackle = make_noise("crackle", 4 * SR, SR, rng).astype(np.float64)
    kurtosis = np.mean(crackle**4) / np.mean(crackle**2) ** 2
    assert kurtosis > 10  # impulsive (Gaussian noise: 3)
    assert _band_db(make_noise("brown", 4 * SR, SR, rng), 0, 500) > -3  # low
    assert _band_db(make_noise("blue", 4 * SR, SR, rng), 5000, SR / 2) > -1.5  # high
    hiss = make_noise("hiss", 4 * SR, SR, rng)
    assert _band_db(hiss, 4000, SR / 2) > _band_db(make_noise("white", 4 * SR, SR, rng), 4000, SR / 2)


def test_clipping_is_found_in_runs_and_only_there():
    from soundalike.restore.model import clipped_samples, project_clipped
    from soundalike.restore.noises import hard_clip

    t = np.arange(SR) / SR
    y = (0.8 * np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    assert clipped_samples(y) is None  # a clean sine has no flat runs at its extremes
    x = hard_clip(y, 0.4)
    clip = clipped_samples(x)
    assert clip is not None
    level = 0.4 * float(np.max(np.abs(y)))
    assert clip.high == pytest.approx(level, rel=1e-6) and clip.low == pytest.approx(-level, rel=1e-6)
    truly = np.abs(y) > level + 1e-6
    found = clip.top | clip.bottom
    assert (found & truly).sum() / truly.sum() > 0.99 and (found & ~truly).sum() <= 2 * 2 * 220
    # the projection pushes clipped samples out, never in, and leaves the rest alone
    est = np.zeros_like(x)
    out = project_clipped(est, clip)
    assert np.all(out[clip.top] == clip.high) and np.all(out[clip.bottom] == clip.low)
    assert np.all(out[~found] == 0)
    assert clipped_samples(np.zeros(100, np.float32)) is None


def test_an_all_zero_network_output_passes_audio_through_exactly():
    import torch

    from soundalike.restore.model import RestoreFrontend, apply_mask, istft, stft

    fe = RestoreFrontend()
    y = torch.from_numpy(np.random.default_rng(0).standard_normal((2, SR)).astype(np.float32) * 0.1)
    spec = stft(y, fe)
    raw = torch.zeros(2, 2, *spec.shape[1:])
    for phase in ("complex", "noisy"):
        back = istft(apply_mask(spec, raw, max_gain=2.0, phase=phase), fe, SR)
        assert torch.max(torch.abs(back - y)) < 1e-5
    big = torch.full_like(raw, 50.0)
    assert torch.max(apply_mask(spec, big, max_gain=2.0).abs() / spec.abs().clamp_min(1e-9)) <= 2.0 + 1e-4
    half = istft(apply_mask(spec, torch.full_like(raw, -50.0), max_gain=2.0, strength=0.5), fe, SR)
    assert torch.max(torch.abs(half - 0.5 * y)) < 1e-4  # strength 0.5 of a mask of zero: half the input


def test_the_noise_floor_channel_is_a_running_minimum():
    import torch

    from soundalike.restore.nets import MaskUNet

    net = MaskUNet(MaskUNet.Config(floor_frames=171))
    x = torch.randn(1, 1, 3, 400)
    low = torch.nn.functional.pad(-x, (85, 85), value=-1e4)
    for pool in net.floor_pools:
        low = pool(low)
    want = torch.stack([x[..., max(0, i - 85): i + 86].amin(-1) for i in range(400)], -1)
    assert torch.allclose(-low, want)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus"])
def test_several_channels_are_written_and_read_back_in_blocks(tmp_path, suffix):
    from soundalike.audio.io import AudioWriter, decode, info

    sr = 48000
    t = np.arange(2 * sr) / sr
    y = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)
    path = tmp_path / f"x{suffix}"
    with AudioWriter(path, sr, channels=2) as w:
        for a in range(0, y.shape[1], 12345):  # blocks that are not codec frames
            w.write(y[:, a: a + 12345])
    assert not list(tmp_path.glob(".*.part"))
    got = decode(path, sr=None, mono=False)
    assert got.samples.shape[0] == 2 and got.sr == sr and info(path).channels == 2
    assert abs(got.samples.shape[1] - y.shape[1]) <= 2048  # codec padding at most
    n = min(got.samples.shape[1], y.shape[1])
    for c in range(2):
        assert np.corrcoef(got.samples[c, 4000: n - 4000], y[c, 4000: n - 4000])[0, 1] > 0.99


def test_a_failed_write_leaves_no_file(tmp_path):
    from soundalike.audio.io import AudioWriter

    path = tmp_path / "x.flac"
    with pytest.raises(RuntimeError), AudioWriter(path, SR, channels=1) as w:
        w.write(np.zeros(SR, np.float32))
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ParameterError, match="cannot write"):
        AudioWriter(tmp_path / "x.xyz", SR)
    with pytest.raises(ParameterError, match="2 channels"), AudioWriter(tmp_path / "y.wav", SR, channels=2) as w:
        w.write(np.zeros((3, 10), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_degrade_makes_what_it_says():
    from soundalike.restore.train import degrade, si_sdr

    t = np.arange(2 * SR) / SR
    clean = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    seen = {"clean": 0, "noisy": 0, "clipped": 0}
    for seed in range(60):
        y, d = degrade(clean, SR, np.random.default_rng(seed))
        if not d.noises and d.clip is None:
            assert np.array_equal(y, clean)
            seen["clean"] += 1
        if d.noises and d.clip is None:
            assert abs(si_sdr(y, clean) - d.snr_db) < 0.5 and -5 <= d.snr_db <= 20
            seen["noisy"] += 1
        if d.clip == "hard":
            from soundalike.restore.model import clipped_samples

            if not d.noises:  # (noise first can leave too few samples over a high clipping level to count)
                assert float(np.max(np.abs(y))) == pytest.approx(d.clip_level * 0.5, rel=1e-5)
                assert clipped_samples(y) is not None
            seen["clipped"] += 1
    assert all(v > 0 for v in seen.values()), seen
