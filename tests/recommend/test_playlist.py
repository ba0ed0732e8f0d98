"""Instant mixes: each track once, the cap held, steps shorter than a random order's, from a track, a file or a
user; the M3U8 file a standard parser reads, with paths relative to its folder; the CLI."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from soundalike import Catalog
from soundalike.errors import ParameterError, TrackNotFoundError
from soundalike.recommend.listens import import_listens
from soundalike.recommend.playlist import order_tracks, path_cost, step_costs, write_m3u8
from soundalike.tasks.playlist import playlist
from soundalike.testing import write_labelled_tracks


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mix")
    write_labelled_tracks(tmp / "music", classes=4, per_class=6, sr=22050, duration=4.0)
    with Catalog.create(tmp / "cat", fingerprint_model=None, tag_heads=None) as cat:
        cat.add([tmp / "music"], manifest=tmp / "music" / "manifest.jsonl")
        names = {t.path.rsplit("/", 1)[1]: t.id for t in cat.tracks()}
        rows = ["user,track,timestamp,plays"] + [f"ana,{names[f'class2_{i:02d}.wav']},{1_767_225_600 + i},2"
                                                 for i in range(4)]
        (tmp / "listens.csv").write_text("\n".join(rows) + "\n")
        import_listens(cat, tmp / "listens.csv")
    return tmp, names


@pytest.fixture()
def cat(built):
    tmp, names = built
    with Catalog.open(tmp / "cat") as c:
        yield c, names, tmp


def _random_mean_step(cost, rng, trials=300):
    n = len(cost)
    return float(np.mean([path_cost(cost, list(rng.permutation(n))) / (n - 1) for _ in range(trials)]))


def test_a_mix_from_a_track_opens_with_it_has_no_repeats_keeps_the_cap_and_takes_small_steps(cat):
    c, names, _ = cat
    seed = names["class1_00.wav"]
    mix = playlist(c, seed, n=12, max_per=4, per="label")
    ids = [t.id for t in mix.tracks]
    assert len(ids) == 12 and len(set(ids)) == 12 and ids[0] == seed
    assert max(Counter(t.labels["label"] for t in mix.tracks).values()) <= 4
    assert Counter(t.labels["label"] for t in mix.tracks)["class1"] == 4  # its own class first, up to the cap
    _, songs = c.song_matrix()
    vecs = np.stack([c.embeddings(i)[1] for i in ids])
    cost = step_costs(vecs)
    assert mix.mean_step == pytest.approx(path_cost(cost, list(range(12))) / 11, abs=1e-6)
    assert mix.mean_step < 0.8 * _random_mean_step(cost, np.random.default_rng(0))
    # without a cap the nearest tracks are the seed's class
    free = playlist(c, seed, n=6)
    assert {t.labels["label"] for t in free.tracks} == {"class1"}


def test_a_mix_from_a_file_or_a_users_taste(cat):
    c, names, tmp = cat
    from_file = playlist(c, str(tmp / "music" / "class3_02.wav"), n=5)
    assert from_file.tracks[0].id == names["class3_02.wav"]  # a catalog file is its own track
    outside = tmp / "outside.wav"
    shutil.copy(tmp / "music" / "class3_02.wav", outside)  # not a catalog path: embedded as a file
    near = playlist(c, str(outside), n=5)
    assert near.tracks[0].id == names["class3_02.wav"] and near.seed == "outside.wav"
    taste = playlist(c, user="ana", n=6)
    assert Counter(t.labels["label"] for t in taste.tracks).most_common(1)[0][0] == "class2"
    with pytest.raises(ParameterError, match="one of them"):
        playlist(c, names["class0_00.wav"], user="ana")
    with pytest.raises(ParameterError, match="no listens"):
        playlist(c, user="nobody")
    with pytest.raises(TrackNotFoundError):
        playlist(c, "99999")
    with pytest.raises(TrackNotFoundError, match="neither an audio file"):
        playlist(c, "no-such-file.mp3")
    with pytest.raises(ParameterError, match="per must be"):
        playlist(c, names["class0_00.wav"], max_per=2, per="mood")


def test_the_order_is_a_short_path():
    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(0, 10, 12))
    pts = rng.permutation(12)
    cost = np.abs(x[pts][:, None] - x[pts][None, :])
    start = int(np.argmin(x[pts]))
    order = order_tracks(cost, start=start)
    assert sorted(order) == list(range(12)) and order[0] == start
    assert list(x[pts][order]) == sorted(x)  # from one end of a line: straight along it
    # 2-opt undoes a crossing that nearest-neighbour leaves: four corners of a square
    sq = np.array([[0, 0], [1, 0.1], [0, 1], [1, 1.2]], float)
    cost = np.linalg.norm(sq[:, None] - sq[None], axis=-1)
    assert path_cost(cost, order_tracks(cost, 0)) <= min(path_cost(cost, [0, *p]) for p in
                                                        ([1, 2, 3], [1, 3, 2], [2, 1, 3], [2, 3, 1], [3, 1, 2], [3, 2, 1])) + 1e-9


def test_tempo_joins_the_step_cost_and_half_time_is_near():
    songs = np.eye(3)
    plain = step_costs(songs)
    tempo = step_costs(songs, np.array([120.0, 60.0, 90.0]), tempo_weight=1.0)
    assert tempo[0, 1] == pytest.approx(plain[0, 1])  # 60 is half of 120: no extra cost
    assert tempo[0, 2] == pytest.approx(plain[0, 2] + abs(np.log2(90 / 120)))
    assert step_costs(songs, np.array([120.0, np.nan, 90.0]))[0, 1] == pytest.approx(plain[0, 1])


def test_the_m3u8_reads_in_a_standard_parser_with_relative_paths(cat, tmp_path):
    m3u8 = pytest.importorskip("m3u8")
    c, names, tmp = cat
    mix = playlist(c, names["class0_03.wav"], n=6)
    out = write_m3u8(mix, tmp / "lists" / "mix.m3u8")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("#EXTM3U\n")
    parsed = m3u8.loads(text)
    assert len(parsed.segments) == 6
    for seg, t in zip(parsed.segments, mix.tracks, strict=True):
        assert not os.path.isabs(seg.uri) and seg.uri.startswith("../music/")
        assert (out.parent / seg.uri).resolve() == Path(t.path).resolve()
        assert seg.duration == pytest.approx(np.ceil(t.duration)) and seg.title == t.display_name
    with pytest.raises(ParameterError, match="m3u8"):
        write_m3u8(mix, tmp_path / "mix.txt")


def test_the_cli_prints_writes_and_refuses(cat, tmp_path, capsys):
    from soundalike.cli import main

    c, names, tmp = cat
    root = str(tmp / "cat")
    c.close()
    assert main(["playlist", str(names["class2_01.wav"]), "-n", "8", "--max-per", "3", "--per", "label",
                 "--catalog", root, "-o", str(tmp_path / "mix.m3u8"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n"] == 8 and d["tracks"][0]["id"] == names["class2_01.wav"] and d["m3u8"].endswith("mix.m3u8")
    assert d["tracks"][0]["step"] is None and all(t["step"] >= 0 for t in d["tracks"][1:])
    assert (tmp_path / "mix.m3u8").read_text().count("#EXTINF:") == 8
    assert main(["playlist", "--catalog", root]) == 2
    assert "one of them" in capsys.readouterr().err
    assert main(["playlist", "1", "-n", "1", "--catalog", root]) == 2
    assert "at least 2" in capsys.readouterr().err
