"""Each augmentation does what it says, measured on generated audio."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.augment import AugmentConfig, augment_chunk, augment_waveform
from soundalike.augment import spec as S
from soundalike.augment import waveform as W
from soundalike.errors import ConfigError, ParameterError
from soundalike.testing import tone

SR = 22050


def rms(x):
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))


def peak_hz(x, sr=SR):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * sr / len(x))


def band_power(x, lo, hi, sr=SR):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(spec[(f >= lo) & (f < hi)].sum())


def test_gain_scales_amplitude():
    y = tone(440, duration=1.0)
    assert rms(W.gain(y, -6.0)) / rms(y) == pytest.approx(10 ** (-6 / 20), rel=1e-5)
    assert rms(W.gain(y, 12.0)) / rms(y) == pytest.approx(10 ** (12 / 20), rel=1e-5)


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
@pytest.mark.parametrize("color", ["white", "pink"])
def test_noise_hits_the_snr(snr, color, rng):
    y = tone(440, duration=4.0)
    out = W.add_noise(y, snr, rng, color)
    noise = out - y
    assert 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2)) == pytest.approx(snr, abs=0.05)


def test_noise_colors_have_their_slopes(rng):
    white = W.colored_noise(SR * 8, rng, "white")
    pink = W.colored_noise(SR * 8, rng, "pink")
    brown = W.colored_noise(SR * 8, rng, "brown")
    # white: equal power per Hz -> an octave band holds twice the power of the one below
    assert band_power(white, 2000, 4000) / band_power(white, 1000, 2000) == pytest.approx(2.0, rel=0.1)
    # pink: equal power per octave
    assert band_power(pink, 2000, 4000) / band_power(pink, 1000, 2000) == pytest.approx(1.0, rel=0.1)
    # brown (1/f^2): half the power of the octave below
    assert band_power(brown, 2000, 4000) / band_power(brown, 1000, 2000) == pytest.approx(0.5, rel=0.1)
    with pytest.raises(ParameterError):
        W.colored_noise(10, rng, "blue")


def test_eq_boosts_and_filters():
    low, mid, high = tone(200, duration=2.0), tone(1000, duration=2.0), tone(4000, duration=2.0)
    boost = {"bands": [(1000.0, 6.0, 1.0)]}
    assert 20 * np.log10(rms(W.apply_eq(mid, SR, **boost)) / rms(mid)) == pytest.approx(6.0, abs=0.1)
    lp = {"bands": [], "lowpass": 1000.0}
    assert 20 * np.log10(rms(W.apply_eq(high, SR, **lp)) / rms(high)) == pytest.approx(-24.0, abs=0.5)  # 2 octaves
    assert 20 * np.log10(rms(W.apply_eq(low, SR, **lp)) / rms(low)) == pytest.approx(0.0, abs=0.1)
    hp = {"bands": [], "highpass": 800.0}
    assert 20 * np.log10(rms(W.apply_eq(low, SR, **hp)) / rms(low)) == pytest.approx(-24.0, abs=0.5)


def test_random_eq_changes_the_spectrum_not_the_length(rng):
    y = W.colored_noise(SR * 2, rng)
    out = W.random_eq(y, SR, rng, max_db=12.0, filter_p=0.0)
    assert len(out) == len(y)
    bands = [(lo, lo * 2) for lo in (125, 250, 500, 1000, 2000, 4000)]
    change = [10 * np.log10(band_power(out, a, b) / band_power(y, a, b)) for a, b in bands]
    assert max(abs(c) for c in change) > 1.0 and max(abs(c) for c in change) < 3 * 12 + 1


def test_codec_round_trip_is_aligned_and_lossy_by_bitrate(rng):
    click = np.zeros(SR * 3, np.float32)
    click[SR] = 0.9
    out = W.codec(click, SR, bitrate_kbps=128)
    assert len(out) == len(click) and abs(int(np.argmax(np.abs(out))) - SR) <= 2

    y = (W.colored_noise(SR * 3, rng, "pink") * 0.1).astype(np.float32) + tone(660, duration=3.0, amplitude=0.2)

    def snr(kbps):
        z = W.codec(y, SR, bitrate_kbps=kbps)
        return 10 * np.log10(np.sum(y.astype(np.float64) ** 2) / np.sum((z - y).astype(np.float64) ** 2))

    s32, s192 = snr(32), snr(192)
    assert s192 > s32 + 3 and s32 > 0


@pytest.mark.parametrize("semitones", [-2.0, -0.5, 1.0, 2.0])
def test_pitch_shift_moves_the_frequency_keeps_the_length(semitones):
    y = tone(440, duration=3.0)
    out = W.pitch_shift(y, SR, semitones)
    assert len(out) == len(y)
    assert peak_hz(out[SR // 2 : -SR // 2]) == pytest.approx(440 * 2 ** (semitones / 12), rel=0.006)
    assert rms(out[SR // 2 : -SR // 2]) == pytest.approx(rms(y), rel=0.15)


@pytest.mark.parametrize("rate", [0.92, 1.08])
def test_time_stretch_changes_tempo_not_pitch(rate):
    y = tone(440, duration=3.0)
    out = W.time_stretch(y, rate)
    assert len(out) == round(len(y) / rate)
    assert peak_hz(out[SR // 2 : -SR // 2]) == pytest.approx(440, rel=0.006)
    # a burst at 1.0 s lands at 1 / rate s
    burst = np.zeros(SR * 3, np.float32)
    burst[SR : SR + 2048] = tone(1000, duration=2048 / SR)
    env = np.abs(W.time_stretch(burst, rate))
    centre = np.sum(np.arange(len(env)) * env) / np.sum(env)
    assert centre / SR == pytest.approx((1.0 + 1024 / SR) / rate, abs=0.03)


@pytest.mark.parametrize("factor", [0.97, 1.03])
def test_speed_change_moves_pitch_and_tempo_together(factor):
    y = tone(440, duration=3.0)
    out = W.speed_change(y, SR, factor)
    assert len(out) == round(len(y) / factor)
    assert peak_hz(out[SR // 2 : -SR // 2]) == pytest.approx(440 * factor, rel=0.004)
    burst = np.zeros(SR * 3, np.float32)
    burst[SR : SR + 2048] = tone(1000, duration=2048 / SR)
    env = np.abs(W.speed_change(burst, SR, factor))
    centre = np.sum(np.arange(len(env)) * env) / np.sum(env)
    assert centre / SR == pytest.approx((1.0 + 1024 / SR) / factor, abs=0.01)
    with pytest.raises(ParameterError):
        W.speed_change(y, SR, 0.0)


def test_reverb_keeps_level_and_adds_a_decaying_tail(rng):
    ir = W.impulse_response(SR, rng, rt60=0.5)
    e = ir.astype(np.float64) ** 2
    early = e[int(0.02 * SR) : int(0.07 * SR)].mean()
    late = e[int(0.45 * SR) : int(0.5 * SR)].mean()
    assert 10 * np.log10(early / late) == pytest.approx(60 * 0.43 / 0.5, abs=6)  # exponential decay to -60 dB at rt60
    y = np.zeros(SR * 2, np.float32)
    y[: SR // 2] = tone(500, duration=0.5)
    out = W.reverb(y, SR, rng, rt60=0.8, wet=0.5)
    assert rms(out) == pytest.approx(rms(y), rel=1e-3)
    assert rms(out[int(0.6 * SR) : int(0.9 * SR)]) > 10 * rms(y[int(0.6 * SR) : int(0.9 * SR)]) + 1e-4


def test_frame_power_and_power_mixing():
    y = tone(440, duration=2.0, amplitude=0.5)
    pw = S.frame_power(y, 512, 80, 2048)
    assert np.allclose(pw[5:-5], 0.125, rtol=0.02)  # A^2 / 2
    sig = np.full((4, 10), 2.0, np.float32)
    unit = np.ones((4, 10), np.float32)
    mixed = S.mix_noise_power(sig, 1.0, unit, 10.0)
    assert np.allclose(mixed - sig, 0.1)
    with pytest.raises(ParameterError):
        S.mix_noise_power(sig, 1.0, unit[:, :5], 10.0)


def test_masks_cover_at_most_their_width(rng):
    x = np.zeros((128, 129), np.float32)
    t = S.time_mask(x, rng, 16, n_masks=1, fill=-80.0)
    cols = np.flatnonzero((t == -80.0).all(axis=0))
    assert len(cols) <= 16 and (len(cols) == 0 or np.all(np.diff(cols) == 1))
    assert (t[:, [c for c in range(129) if c not in set(cols)]] == 0).all()
    f = S.freq_mask(x, rng, 10, n_masks=1, fill=-80.0)
    rows = np.flatnonzero((f == -80.0).all(axis=1))
    assert len(rows) <= 10
    hits = sum(int((S.time_mask(x, np.random.default_rng(s), 16, fill=-1.0) < 0).any()) for s in range(50))
    assert hits > 40  # width 0 is possible but rare


def test_power_domain_noise_matches_waveform_noise(rng):
    """Mixing noise into the mel power at a waveform SNR ~ computing the mel of the noisy waveform."""
    import torch

    from soundalike.augment.chain import NoiseBank
    from soundalike.features.mel import FrontendConfig, MelFrontend

    fe = FrontendConfig()
    mel = MelFrontend(fe)
    y = (tone(220, duration=4.0, amplitude=0.3) + tone(1760, duration=4.0, amplitude=0.05)).astype(np.float32)
    with torch.inference_mode():
        clean = mel(y).numpy()
        noisy = mel(W.add_noise(y, 5.0, rng, "white")).numpy()
    bank = NoiseBank(fe, seconds=8.0)
    F = fe.chunk_frames
    cfg = AugmentConfig(noise_p=1.0, noise_snr_db=(5.0, 5.0), noise_colors=("white",), time_mask_p=0, freq_mask_p=0)
    db = 10 * np.log10(np.maximum(clean[:, 20 : 20 + F], fe.amin))
    power = float(np.mean(S.frame_power(y, fe.hop_length, clean.shape[1], fe.n_fft)[20 : 20 + F]))
    ours = augment_chunk(db, power, cfg, rng, bank=bank, top_db=fe.top_db, amin=fe.amin)
    ref = 10 * np.log10(np.maximum(noisy[:, 20 : 20 + F], fe.amin))
    ref = np.maximum(ref - ref.max(), -fe.top_db)
    # same noise floor on average in the bands the noise dominates (above 4 kHz)
    hi = slice(90, 128)
    assert abs(float(ours[hi].mean() - ref[hi].mean())) < 1.5
    clean_ref = np.maximum(db - db.max(), -fe.top_db)
    assert float(ours[hi].mean() - clean_ref[hi].mean()) > 10  # and it really added noise


def test_waveform_chain_is_seeded_and_records_what_it_did():
    y = tone(330, duration=6.0)
    cfg = AugmentConfig(pitch_p=1, stretch_p=1, eq_p=1, reverb_p=1, view_noise_p=1, codec_p=1)
    a, pa = augment_waveform(y, SR, cfg, np.random.default_rng(5))
    b, pb = augment_waveform(y, SR, cfg, np.random.default_rng(5))
    assert pa == pb and np.array_equal(a, b)
    assert {"pitch_semitones", "eq", "reverb", "gain_db", "noise", "codec_kbps"} <= set(pa)
    assert len(a) == round(len(y) / pa["rate"])
    assert abs(pa["pitch_semitones"]) <= 2 and 0.92 <= pa["rate"] <= 1.08 and 32 <= pa["codec_kbps"] <= 192
    off = AugmentConfig(pitch_p=0, stretch_p=0, eq_p=0, reverb_p=0, view_noise_p=0, codec_p=0, gain_db=0)
    same, p = augment_waveform(y, SR, off, np.random.default_rng(5))
    assert np.array_equal(same, y) and p == {"rate": 1.0}


def test_augment_config_is_checked():
    with pytest.raises(ConfigError, match="probability"):
        AugmentConfig(noise_p=1.5)
    with pytest.raises(ConfigError, match="unknown augment"):
        AugmentConfig.from_dict({"nosie_p": 0.5})
    with pytest.raises(ConfigError):
        AugmentConfig(codec_kbps=(192, 32))
    with pytest.raises(ConfigError):
        AugmentConfig(noise_colors=("brown",))
