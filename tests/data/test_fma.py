"""The FMA loader, on a tiny fixture written in FMA's format (three-row header, XYZ/XYZABC.mp3 layout)."""

from __future__ import annotations

import csv

import pytest

from soundalike.audio import save
from soundalike.data.fma import read_fma, write_fma_manifest
from soundalike.errors import DatasetError
from soundalike.testing import synth_track

HEADER = [
    ["", "album", "album", "artist", "set", "set", "track", "track", "track"],
    ["", "comments", "title", "name", "split", "subset", "genre_top", "genres", "title"],
    ["track_id", "", "", "", "", "", "", "", ""],
]
ROWS = [  # id, album comments, album title, artist, split, subset, genre_top, genres, title
    ["2", "0", "AWOL - A Way Of Life", "AWOL", "training", "small", "Hip-Hop", "[21]", "Food"],
    ["5", "0", "Niris, live", "Nicky Cook", "test", "small", "Rock", "[12]", "This World"],
    ["140", "1", "Constant Hitmaker", "Alec K. Redfearn", "validation", "medium", "Folk", "[17]", "Queen Of The Wires"],
    ["141", "0", "", "Alec K. Redfearn", "training", "large", "", "[17, 25]", "Ohio"],  # no top genre
    ["148", "2", "Nostalgic", "Blue Dot", "training", "small", "Rock", "[12]", "Untitled"],  # no audio
]


def _fixture(tmp_path):
    meta = tmp_path / "fma_metadata"
    meta.mkdir()
    with open(meta / "tracks.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(HEADER + ROWS)
    root = tmp_path / "fma_medium"
    for tid in (2, 5, 140, 141):
        (root / f"{tid:06d}"[:3]).mkdir(parents=True, exist_ok=True)
        save(root / f"{tid:06d}"[:3] / f"{tid:06d}.mp3", synth_track(tid, duration=3.0), 22050, bitrate=64000)
    return meta, root


def test_fma_tracks_csv_and_audio_layout(tmp_path):
    meta, root = _fixture(tmp_path)
    fma = read_fma(meta, root)
    assert [(t.track_id, t.genre_top, t.split, t.subset) for t in fma.tracks] == [
        (2, "Hip-Hop", "training", "small"), (5, "Rock", "test", "small"), (140, "Folk", "validation", "medium")]
    assert fma.tracks[0].path == str((root / "000" / "000002.mp3").resolve())
    assert fma.no_genre == 1 and fma.missing_audio == 1 and fma.genres == ["Folk", "Hip-Hop", "Rock"]
    small = read_fma(meta / "tracks.csv", root, subset="small")  # the file itself works too
    assert [t.track_id for t in small.tracks] == [2, 5]


def test_fma_manifest_feeds_the_label_readers(tmp_path):
    from soundalike.data.files import read_manifest

    meta, root = _fixture(tmp_path)
    manifest = write_fma_manifest(read_fma(meta, root), tmp_path / "fma" / "manifest.jsonl")
    rows = read_manifest(manifest)
    assert rows[str((root / "000" / "000005.mp3").resolve())]["label"] == "Rock"
    assert {r["split"] for r in rows.values()} == {"training", "test", "validation"}


def test_fma_errors_say_what_is_wrong(tmp_path):
    meta, root = _fixture(tmp_path)
    with pytest.raises(DatasetError, match="no FMA tracks.csv"):
        read_fma(tmp_path / "nowhere", root)
    with pytest.raises(DatasetError, match="does not exist"):
        read_fma(meta, tmp_path / "no-audio")
    bad = tmp_path / "bad.csv"
    bad.write_text("track_id,genre\n1,Rock\n")
    with pytest.raises(DatasetError, match="three-row header"):
        read_fma(bad, root)
    with pytest.raises(DatasetError, match="no FMA track"):
        read_fma(meta, tmp_path)  # a folder without the XYZ/XYZABC.mp3 files


def test_cli_datasets_fma(tmp_path, capsys):
    import json

    from soundalike.cli import main

    meta, root = _fixture(tmp_path)
    assert main(["datasets", "fma", str(tmp_path / "out"), "--fma-root", str(root), "--metadata", str(meta),
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["tracks"] == 3 and d["genres"] == ["Folk", "Hip-Hop", "Rock"]
    assert (tmp_path / "out" / "manifest.jsonl").read_text().count("\n") == 3
    assert main(["datasets", "fma", str(tmp_path / "out2")]) == 2
    assert "--fma-root" in capsys.readouterr().err


def test_fma_genre_head_trains_from_the_cli_and_tags_files(tmp_path, capsys):
    import json

    import numpy as np

    from soundalike.cli import main
    from soundalike.tagging.tagger import load_tagger

    meta, root = _fixture(tmp_path)
    head = tmp_path / "genre-head"
    assert main(["train-head", "--dataset", "fma", "--fma-root", str(root), "--metadata", str(meta), "--out",
                 str(head), "--head", "tag_mlp", "--steps", "60", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    # the training and validation tracks (2: Hip-Hop, 140: Folk), one 3 s chunk each; test track 5 is left out
    assert d["rows"] == 2 and d["groups"] == 2 and d["tags"] == 2 and d["multi_label"] is False
    assert d["train_accuracy"] == 1.0
    tagger = load_tagger([str(head)])
    assert tagger.tags == ("genre/Folk", "genre/Hip-Hop")
    res = tagger.tag_file(root / "000" / "000002.mp3")
    assert res.top(1)[0][0] == "genre/Hip-Hop" and np.isclose(res.track.sum(), 1.0, atol=1e-5)
    assert main(["train-head", "--dataset", "fma", "--out", str(head)]) == 2
    assert "--fma-root" in capsys.readouterr().err
