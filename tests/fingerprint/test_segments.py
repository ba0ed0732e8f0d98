"""Catalog tracks inside a long recording: generated mixes whose every segment is known."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from soundalike.fingerprint.match import Candidate
from soundalike.fingerprint.segments import Segment, SegmentConfig, chain, gaps
from soundalike.testing import synth_track
from soundalike.testing.mixes import TrueSegment, make_mix, score_segments

SR = 22050


def _cand(track, offset, conf=0.99):
    return Candidate(track, offset, 0.9, 40, confidence=conf)


def test_chain_joins_consistent_windows_and_bridges_a_short_gap():
    cfg = SegmentConfig(window=5.0, hop=1.0, max_gap=3.0)
    matches = [(float(t), _cand(7, 10.0 + t)) for t in range(0, 10)]  # track 7, offset advancing with time
    matches += [(10.0, None), (11.0, None)]  # talk-over: two windows without a match
    matches += [(float(t), _cand(7, 10.0 + t)) for t in range(12, 20)]
    matches += [(float(t), _cand(3, 50.0 + t)) for t in range(20, 30)]  # the next track
    matches += [(30.0, _cand(9, 5.0))]  # one stray window: no segment
    segs = chain(matches, 40.0, cfg)
    assert [s.track_id for s in segs] == [7, 3]
    a, b = segs
    assert a.start == 0.0 and a.offset == pytest.approx(10.0) and a.windows == 18
    assert a.end == pytest.approx(b.start)  # neighbours meet
    assert 21.0 <= b.start <= 23.5  # windows from 20 s are centred at 22.5 s: the change lies about there
    assert b.offset == pytest.approx(50.0 + b.start, abs=1e-6)
    assert gaps(segs, 40.0) == [(round(b.end, 3), 40.0)]


def test_a_repeat_in_the_music_does_not_split_a_segment_and_a_long_gap_does():
    cfg = SegmentConfig(max_gap=6.0)
    # windows 3-4 match the same passage 60 s later in the track (a loop): one segment, the majority offset
    matches = [(float(t), _cand(1, t + (60.0 if t in (3, 4) else 20.0))) for t in range(12)]
    matches += [(float(t), None) for t in range(12, 30)]
    matches += [(float(t), _cand(1, t + 100.0)) for t in range(30, 36)]  # the track again, 18 s later
    segs = chain(matches, 41.0, cfg)
    assert len(segs) == 2 and segs[0].windows == 12
    assert segs[0].offset == pytest.approx(20.0 + segs[0].start)
    assert segs[1].offset == pytest.approx(100.0 + segs[1].start)


def test_neighbours_of_one_track_merge_and_a_twin_file_does_not_break_a_run():
    from soundalike.fingerprint.segments import merge_neighbours

    cfg = SegmentConfig(max_gap=10.0)
    merged = merge_neighbours([Segment(4, 0.0, 20.0, 5.0, 1.0, 10), Segment(4, 27.0, 40.0, 33.0, 0.5, 10),
                               Segment(2, 40.0, 60.0, 0.0, 1.0, 5), Segment(4, 75.0, 90.0, 0.0, 1.0, 5)], cfg)
    assert [(m.track_id, m.start, m.end) for m in merged] == [(4, 0.0, 40.0), (2, 40.0, 60.0), (4, 75.0, 90.0)]
    assert merged[0].offset == 5.0 and merged[0].confidence == pytest.approx(0.75) and merged[0].windows == 20
    # a window whose best track is another file with the same audio (listed in `also`) keeps the run going
    twin = _cand(8, 99.0)
    twin.also = {7: 16.0}
    matches = [(float(t), _cand(7, 10.0 + t)) for t in range(6)] + [(6.0, twin)]
    matches += [(float(t), _cand(7, 10.0 + t)) for t in range(7, 12)]
    segs = chain(matches, 17.0, SegmentConfig())
    assert [s.track_id for s in segs] == [7] and segs[0].windows == 12


def test_score_segments_counts_right_wrong_and_missed():
    truth = [TrueSegment(0, 0.0, 30.0, 5.0), TrueSegment(1, 30.0, 60.0, 0.0)]
    got = score_segments([(0, 0.5, 29.0), (2, 30.0, 60.0)], truth)
    assert got["precision"] == 0.5 and got["recall"] == 0.5 and got["max_boundary_error"] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def mix_catalog(tmp_path_factory):
    from soundalike import Catalog

    root = tmp_path_factory.mktemp("mixcat")
    tracks = [synth_track(300 + i, sr=SR, duration=60.0) for i in range(6)]
    (root / "music").mkdir()
    for i, y in enumerate(tracks):
        sf.write(root / "music" / f"t{i}.wav", y, SR)
    cat = Catalog.create(root / "catalog", tag_heads=None)
    cat.add(root / "music")
    ids = {t.path: t.id for t in cat.tracks()}
    order = [ids[str((root / "music" / f"t{i}.wav").resolve())] for i in range(6)]
    yield cat, tracks, order, root
    cat.close()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_every_track_of_a_mix_is_found_with_its_boundaries(mix_catalog, seed):
    cat, tracks, ids, root = mix_catalog
    # 160 s: crossfades, tempo nudged up to 2 %, pink noise at 20 dB, talk over the music, 12 s of music in
    # no catalog; longer than one 120 s decode window, so a segment spans two of them
    mix, truth = make_mix(tracks, SR, order=[0, 3, -1, 5, 1, 2], seconds=[30, 25, 0, 35, 28, 30], seed=seed,
                          fillers=[synth_track(999 + seed, sr=SR, duration=40.0)])
    path = root / f"mix{seed}.wav"
    sf.write(path, mix, SR)
    res = cat.identify_segments(path)
    found = [(ids.index(s.track_id), s.start, s.end) for s in res.segments]
    score = score_segments(found, truth)
    assert score["precision"] >= 0.95 and score["recall"] >= 0.95, (found, truth)
    assert score["max_boundary_error"] <= 2.0, (found, truth)
    for s, t in zip(res.segments, truth, strict=True):
        assert s.offset == pytest.approx(t.offset + (s.start - t.start), abs=1.5)  # where in the track
    filler = next(t for t in zip(truth, truth[1:], strict=False) if t[1].start - t[0].end > 5)  # the stretch of other music
    assert any(a <= filler[0].end + 2 and b >= filler[1].start - 2 for a, b in res.gaps)
    d = res.to_dict()
    assert [s["id"] for s in d["segments"]] == [s.track_id for s in res.segments]
    assert d["duration"] == pytest.approx(len(mix) / SR, abs=0.05)


@pytest.mark.slow
def test_cli_identify_segments_json_and_an_unrelated_recording(mix_catalog, tmp_path, capsys):
    from soundalike.cli import main

    cat, tracks, ids, root = mix_catalog
    mix, truth = make_mix(tracks, SR, order=[2, 4], seconds=[20, 20], seed=5, talk=0)
    sf.write(tmp_path / "two.wav", mix, SR)
    assert main(["identify", str(tmp_path / "two.wav"), "--segments", "--catalog", str(cat.root), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [s["id"] for s in d["segments"]] == [ids[2], ids[4]]
    assert abs(d["segments"][0]["end"] - truth[0].end) <= 2.0
    other = synth_track(4242, sr=SR, duration=40.0)  # in no catalog: no segment, one gap, exit 1 when asked
    sf.write(tmp_path / "other.wav", other, SR)
    code = main(["identify", str(tmp_path / "other.wav"), "--segments", "--catalog", str(cat.root), "--json",
                 "--fail-on-no-match"])
    d = json.loads(capsys.readouterr().out)
    assert code == 1 and d["segments"] == [] and d["gaps"] == [{"start": 0.0, "end": pytest.approx(40.0, abs=0.05)}]


def test_segment_config_is_checked():
    from soundalike.errors import ParameterError

    with pytest.raises(ParameterError):
        SegmentConfig(window=2.0, hop=3.0)
    assert Segment(1, 0.0, 1.0, 2.0, 0.5, 3).to_dict()["offset"] == 2.0
    assert np.isclose(SegmentConfig().window, 5.0)
