"""Excerpt identification: codes, voting, the binary index in the catalog, calibration, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from soundalike import Catalog
from soundalike.audio import save
from soundalike.augment import waveform as W
from soundalike.errors import AudioTooShortError, CatalogError, ModelError, ParameterError
from soundalike.fingerprint import hamming, load_fingerprinter, pack_codes, vote
from soundalike.fingerprint.evaluate import fit_calibration, take_groups
from soundalike.fingerprint.index import BinaryIndex
from soundalike.fingerprint.match import Candidate, refine
from soundalike.tasks import identify
from soundalike.testing import synth_track, write_tracks

SR = 22050


def test_pack_codes_and_hamming():
    e = np.array([[1.0, -2.0, 0.5, -0.1, 3.0, 0.0, -1.0, 2.0] * 2])  # 16 dims -> 2 bytes
    c = pack_codes(e)
    assert c.dtype == np.uint8 and c.shape == (1, 2)
    assert c[0, 0] == 0b10101001  # positive -> 1, MSB first; 0.0 counts as not positive
    flipped = pack_codes(-e)
    assert hamming(c, flipped)[0, 0] == 14  # every non-zero coordinate changes sign
    assert hamming(c, c)[0, 0] == 0
    with pytest.raises(ParameterError):
        pack_codes(np.zeros((2, 12)))


def _random_index(rng, n_tracks=4, n_windows=60, bits=128):
    codes = [rng.integers(0, 256, size=(n_windows, bits // 8), dtype=np.uint8) for _ in range(n_tracks)]
    return codes, BinaryIndex.build(bits, [(10 + i, c, 0.5) for i, c in enumerate(codes)])


def test_vote_recovers_track_and_offset_from_noisy_codes():
    rng = np.random.default_rng(0)
    codes, index = _random_index(rng)
    q = codes[2][20:30].copy()  # windows 20..29 of track 12: the query starts at 10.0 s
    flips = rng.random(q.shape[0] * 128).reshape(q.shape[0], 128) < 0.15  # 15% of bits wrong
    bits = np.unpackbits(q, axis=1) ^ flips
    q = np.packbits(bits, axis=1)
    cands = vote(index.search_hits(q, 5), np.arange(10) * 0.5, bits=128, bin_seconds=0.5)
    assert cands[0].track_id == 12
    assert cands[0].offset == pytest.approx(10.0, abs=1e-6)
    assert cands[0].windows == 10
    assert 0.55 < cands[0].score < 0.85  # ~ 1 - 2 * 0.15 per window
    assert all(c.score < 0.2 for c in cands[1:])


def test_refine_settles_the_offset_between_catalog_windows():
    rng = np.random.default_rng(1)
    codes, index = _random_index(rng, n_tracks=1)
    # query windows every 0.1 s starting 7.3 s into the track: those at 0.2, 0.7, ... s sit on catalog windows
    t = np.arange(40) * 0.1
    q = np.zeros((40, 16), np.uint8)
    for i, ti in enumerate(t):
        j = (7.3 + ti) / 0.5
        q[i] = codes[0][int(round(j))] if abs(j - round(j)) < 1e-6 else rng.integers(0, 256, 16)
    off, sim = refine(Candidate(10, 7.0, 0.5, 10), q, t, index.track_codes(10), bits=128, hop_seconds=0.5)
    assert off == pytest.approx(7.3, abs=0.021)
    assert sim == pytest.approx(1.0)


def test_binary_index_rows_and_track_codes():
    rng = np.random.default_rng(2)
    codes, index = _random_index(rng, n_tracks=3, n_windows=7)
    assert len(index) == 21
    np.testing.assert_array_equal(index.track_codes(11), codes[1])
    assert index.track_codes(99).shape == (0, 16)
    index.add(5, codes[0][:2], 0.5)
    np.testing.assert_array_equal(index.track_codes(5), codes[0][:2])
    assert index.times[-1] == pytest.approx(0.5)
    with pytest.raises(ParameterError):
        index.add(6, np.zeros((2, 8), np.uint8), 0.5)


def test_exact_hits_name_track_time_and_code():
    rng = np.random.default_rng(4)
    codes, index = _random_index(rng, n_tracks=2, n_windows=5)
    hits = index.search_hits(codes[1][[3, 0]], 2)
    assert hits.tracks[:, 0].tolist() == [11, 11] and hits.times[:, 0].tolist() == [1.5, 0.0]
    assert hits.distances[:, 0].tolist() == [0, 0]
    np.testing.assert_array_equal(hits.codes[:, 0], codes[1][[3, 0]])
    assert hits.distances[0, 1] == hamming(codes[1][3], hits.codes[0, 1])[0, 0] > 0
    np.testing.assert_array_equal(index.track_rows(11), np.arange(5, 10))


def test_take_groups_keeps_groups_whole():
    groups = [0, 1, 0, 2, 1, 3]
    assert take_groups(groups, [1, 0, 2, 3], 3) == [1, 4, 0, 2]  # group 1, then group 0: 4 >= 3 tracks
    assert take_groups(groups, [3, 2], 1) == [5]


def test_calibration_threshold_allows_at_most_one_percent():
    rng = np.random.default_rng(3)
    pos = np.column_stack([rng.uniform(0.4, 0.9, 300), rng.uniform(0.2, 0.6, 300)])
    neg = np.column_stack([rng.uniform(0.05, 0.45, 400), rng.uniform(0.0, 0.15, 400)])
    cal = fit_calibration(pos, neg, max_false_match_rate=0.01)
    conf_neg = np.array([cal.confidence(*x) for x in neg])
    conf_pos = np.array([cal.confidence(*x) for x in pos])
    assert np.mean(conf_neg >= cal.threshold) <= 0.01
    assert cal.false_match_rate == pytest.approx(np.mean(conf_neg >= cal.threshold))
    assert np.mean(conf_pos >= cal.threshold) > 0.9  # the classes barely overlap
    assert cal.a > 0  # a higher score means a likelier match
    with pytest.raises(ParameterError):
        fit_calibration(pos[:3], neg)


# ------------------------------------------------------------------ catalog level
@pytest.fixture(scope="module")
def fp_catalog(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fp_tracks")
    write_tracks(folder, [20, 21, 22, 23, 24], duration=30.0)
    cat = Catalog.create(tmp_path_factory.mktemp("fpcat") / "catalog")
    rep = cat.add([folder])
    assert rep.added == 5 and not rep.failed
    yield cat, folder
    cat.close()


@pytest.mark.parametrize("offset,degrade", [(7.3, None), (18.0, "noise"), (3.1, "mp3")])
def test_identify_finds_track_and_offset(fp_catalog, tmp_path, offset, degrade):
    cat, folder = fp_catalog
    y = synth_track(22, duration=30.0)[int(offset * SR) : int((offset + 5.0) * SR)]
    rng = np.random.default_rng(0)
    if degrade == "noise":
        y = W.add_noise(y, 10.0, rng, "pink")
    elif degrade == "mp3":
        y = W.codec(y, SR, bitrate_kbps=48)
    clip = save(tmp_path / "clip.wav", y, SR)
    res = identify(cat, clip)
    assert res.match is not None, res.to_dict()
    assert res.match.track.path == str((folder / "track_022.wav").resolve())
    assert res.match.offset == pytest.approx(offset, abs=0.25)
    assert res.match.confidence >= res.threshold
    assert res.duration == pytest.approx(5.0, abs=0.01)


def test_unrelated_audio_is_no_match(fp_catalog, tmp_path):
    cat, _ = fp_catalog
    for seed in (90, 91, 92):
        clip = save(tmp_path / f"other{seed}.wav", synth_track(seed, duration=6.0), SR)
        res = identify(cat, clip)
        assert res.match is None, res.to_dict()
        assert res.to_dict()["matched"] is False


def test_generated_sound_in_no_catalog_is_no_match(fp_catalog):
    """Test tones, sweeps, held chords, generated chord songs, drum loops, speech-like noise and hiss
    (soundalike.testing.ood, seeds the calibration never saw) are never claimed as a catalog track."""
    from soundalike.tasks.identify import identify_waveform
    from soundalike.testing.ood import OOD_KINDS, ood_clip

    cat, _ = fp_catalog
    claimed = []
    for kind in OOD_KINDS:
        for seed in range(6):
            res = identify_waveform(cat, ood_clip(kind, seed), SR, query=f"{kind}-{seed}")
            if res.match is not None:
                claimed.append((kind, seed, res.match.confidence))
            for c in res.candidates:
                assert 0.0 <= c.evidence["steadiness"] <= 1.0
    assert claimed == []
    tone = identify_waveform(cat, ood_clip("tone", 0), SR)
    if tone.candidates:  # a tone is steady: whatever it resembles, it says little about where
        assert tone.candidates[0].evidence["steadiness"] > 0.9 and tone.candidates[0].confidence < 0.1


def test_query_windows_every_tenth_of_a_second_with_margins():
    fp = load_fingerprinter()
    y = synth_track(5, duration=5.0)
    codes, times, margins = fp.query_windows(y, SR)
    assert len(codes) == len(times) == len(margins) == 41 and times[1] == pytest.approx(0.1)
    assert margins.shape == (41, 128) and (margins >= 0).all() and np.isfinite(margins).all()
    assert margins.std() > 0  # some bits are surer than others
    np.testing.assert_array_equal(fp.query_codes(y, SR)[0], codes)


def test_identify_errors(fp_catalog, tmp_path):
    cat, _ = fp_catalog
    short = save(tmp_path / "short.wav", synth_track(22, duration=0.3), SR)
    with pytest.raises(AudioTooShortError, match="at least 0.5 s"):
        identify(cat, short)
    with pytest.raises(ModelError, match="not a fingerprint model"):
        load_fingerprinter("contrastive_cnn-music")


def test_fingerprints_are_stored_compactly_and_survive_reopen(fp_catalog):
    cat, folder = fp_catalog
    info = cat.info()["fingerprints"]
    assert info["bits"] == 128 and info["tracks"] == 5
    # windows every 0.5 s: 30 s tracks give 59 windows each, 16 bytes apiece
    assert info["windows"] == 5 * 59 and info["code_bytes"] == 16 * info["windows"]
    assert info["bytes_per_hour"] == pytest.approx(16 * 7200, rel=0.02)
    again = Catalog.open(cat.root)
    try:
        fp = again.fingerprinter
        tid = again.track(str(folder / "track_021.wav")).id
        stored = again.window_index().track_codes(tid)
        np.testing.assert_array_equal(stored, fp.track_codes(synth_track(21, duration=30.0), SR))
    finally:
        again.close()


def test_incremental_add_and_remove(tmp_path):
    folder = tmp_path / "music"
    a, b, c = write_tracks(folder, [30, 31, 32], duration=20.0)
    c.rename(tmp_path / c.name)  # not in the catalog yet
    cat = Catalog.create(tmp_path / "cat")
    try:
        cat.add([folder])
        clip = save(tmp_path / "clip.wav", synth_track(32, duration=20.0)[5 * SR : 10 * SR], SR)
        assert identify(cat, clip).match is None
        (tmp_path / c.name).rename(folder / c.name)
        rep = cat.add([folder])
        assert rep.added == 1 and rep.unchanged == 2
        m = identify(cat, clip).match
        assert m is not None and m.track.path == str((folder / c.name).resolve())
        assert m.offset == pytest.approx(5.0, abs=0.25)
        cat.remove([m.track.id])
        assert identify(cat, clip).match is None
        n = cat.store.execute("SELECT COUNT(*) FROM fingerprints").fetchone()[0]
        assert n == 2  # the removed track's codes went with it
    finally:
        cat.close()


def test_catalog_without_fingerprints_can_add_them(tmp_path):
    folder = tmp_path / "music"
    write_tracks(folder, [40, 41], duration=15.0)
    cat = Catalog.create(tmp_path / "cat", fingerprint_model=None)
    try:
        cat.add([folder])
        clip = save(tmp_path / "clip.wav", synth_track(41, duration=15.0)[4 * SR : 9 * SR], SR)
        with pytest.raises(CatalogError, match="no fingerprints"):
            identify(cat, clip)
        rep = cat.enable_fingerprints()
        assert rep.fingerprinted == 2
        m = identify(cat, clip).match
        assert m is not None and m.track.path.endswith("track_041.wav")
        assert cat.enable_fingerprints().fingerprinted == 0  # nothing left to do
    finally:
        cat.close()


@pytest.mark.slow
def test_cli_identify_json(fp_catalog, tmp_path):
    cat, folder = fp_catalog
    clip = save(tmp_path / "clip.wav", synth_track(23, duration=30.0)[11 * SR : 16 * SR], SR)
    r = subprocess.run([sys.executable, "-m", "soundalike", "identify", str(clip), "--catalog", str(cat.root),
                        "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["matched"] and d["match"]["path"].endswith("track_023.wav")
    assert d["match"]["offset"] == pytest.approx(11.0, abs=0.25)
    other = save(tmp_path / "other.wav", synth_track(99, duration=5.0), SR)
    r = subprocess.run([sys.executable, "-m", "soundalike", "identify", str(other), "--catalog", str(cat.root),
                        "--fail-on-no-match"], capture_output=True, text=True)
    assert r.returncode == 1 and "no match" in r.stdout
