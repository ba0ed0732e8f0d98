"""Listening-history import: validation, duplicates, all-or-nothing, the CLI."""

from __future__ import annotations

import json

import pytest

from soundalike import Catalog
from soundalike.errors import ListenImportError
from soundalike.recommend.listens import import_listens
from soundalike.testing import write_tracks


@pytest.fixture()
def cat(tmp_path):
    write_tracks(tmp_path / "music", [1, 2, 3], duration=4.0)
    c = Catalog.create(tmp_path / "cat", fingerprint_model=None, tag_heads=None)
    c.add([tmp_path / "music"])
    yield c
    c.close()


def _csv(path, rows):
    path.write_text("\n".join(rows) + "\n")
    return path


def test_import_by_id_and_relative_path_with_times_and_plays(cat, tmp_path):
    f = _csv(tmp_path / "listens.csv", [
        "user,track,timestamp,plays",
        "ana,music/track_001.wav,2026-03-01T12:00:00Z,3",
        "ana,2,2026-03-01T12:05:00,",  # no zone: UTC; no plays: 1
        "ben,3,1767225600,2",
        "ben,3,1767225600,2",  # repeated in the file
    ])
    rep = import_listens(cat, f)
    assert (rep.rows, rep.imported, rep.duplicates, rep.invalid, rep.users) == (4, 3, 1, 0, 2)
    ids = {t.path.rsplit("/", 1)[1]: t.id for t in cat.tracks()}
    assert cat.listens("ana") == [("ana", ids["track_001.wav"], 1772366400.0, 3),
                                  ("ana", 2, 1772366700.0, 1)]
    assert cat.listens("ben") == [("ben", 3, 1767225600.0, 2)]
    again = import_listens(cat, f)  # everything is already there
    assert again.imported == 0 and again.duplicates == 4 and len(cat.listens()) == 3
    cat.remove([3])  # a removed track takes its listens with it
    assert [r[1] for r in cat.listens()] == [ids["track_001.wav"], 2]


def test_bad_rows_stop_the_import_and_nothing_is_half_imported(cat, tmp_path):
    f = _csv(tmp_path / "bad.csv", [
        "user,track,timestamp,plays",
        "ana,1,2026-03-01T12:00:00Z,1",
        "ana,99,2026-03-01T12:00:00Z,1",  # unknown id
        "ben,music/nope.wav,2026-03-01T12:00:00Z,1",  # unknown file
        "cy,2,yesterday,1",  # bad timestamp
        "dee,2,2026-03-01,0",  # bad plays
        ",2,2026-03-01,1",  # no user
    ])
    with pytest.raises(ListenImportError, match=r"5 of 6 rows .* nothing was: line 3: unknown track '99'") as err:
        import_listens(cat, f)
    assert [n for n, _ in err.value.problems] == [3, 4, 5, 6, 7]
    assert "timestamp 'yesterday'" in err.value.problems[2][1] and "positive" in err.value.problems[3][1]
    assert cat.listens() == []  # nothing imported
    rep = import_listens(cat, f, skip_invalid=True)
    assert rep.imported == 1 and rep.invalid == 5 and cat.listens() == [("ana", 1, 1772366400.0, 1)]
    with pytest.raises(ListenImportError, match="missing: timestamp"):
        import_listens(cat, _csv(tmp_path / "nohdr.csv", ["user,track", "ana,1"]))


def test_cli_listens_import(cat, tmp_path, capsys):
    from soundalike.cli import main

    root = str(cat.root)
    good = _csv(tmp_path / "ok.csv", ["user,track,timestamp", "ana,1,1767225600", "ana,2,1767225700"])
    assert main(["listens", "import", str(good), "--catalog", root, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["imported"] == 2 and d["users"] == 1 and d["problems"] == []
    bad = _csv(tmp_path / "bad.csv", ["user,track,timestamp", "ana,42,1767225600"])
    assert main(["listens", "import", str(bad), "--catalog", root]) == 2
    assert "unknown track '42'" in capsys.readouterr().err
    assert main(["listens", "import", str(tmp_path / "none.csv"), "--catalog", root]) == 2


def test_recommend_leaves_out_heard_tracks_caps_groups_explains_and_repeats(tmp_path, capsys):
    import numpy as np

    from soundalike.cli import main
    from soundalike.recommend.rank import recommend
    from soundalike.testing import write_labelled_tracks

    write_labelled_tracks(tmp_path / "music", classes=3, per_class=4, sr=22050, duration=8.0)
    with Catalog.create(tmp_path / "cat", fingerprint_model=None, tag_heads=None) as cat:
        cat.add([tmp_path / "music"], manifest=tmp_path / "music" / "manifest.jsonl")
        by_name = {t.path.rsplit("/", 1)[1]: t for t in cat.tracks()}
        heard = [by_name["class1_00.wav"].id, by_name["class1_01.wav"].id]
        _csv(tmp_path / "l.csv", ["user,track,timestamp,plays", f"ana,{heard[0]},1,5", f"ana,{heard[1]},2,1"])
        import_listens(cat, tmp_path / "l.csv")
        recs = recommend(cat, user="ana", k=5)
        assert heard[0] not in [r.track.id for r in recs] and heard[1] not in [r.track.id for r in recs]
        assert recs[0].track.labels["label"] == recs[1].track.labels["label"] == "class1"  # same taste first
        assert recs[0].because in heard and "you played" in recs[0].reason
        assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
        capped = recommend(cat, user="ana", k=5, max_per=1, per="label")
        labels = [r.track.labels["label"] for r in capped]
        assert len(labels) == 3 and len(set(labels)) == 3  # one per label: only three labels exist
        again = recommend(cat, user="ana", k=5)
        assert [(r.track.id, r.score) for r in again] == [(r.track.id, r.score) for r in recs]
        seeded = recommend(cat, seed_track=heard[0], k=3)
        assert heard[0] not in [r.track.id for r in seeded] and seeded[0].because == heard[0]
        profile_sim = np.array([r.score for r in recommend(cat, user="ana", k=10, exclude_heard=False)])
        assert profile_sim[0] == pytest.approx(max(profile_sim))
        root = str(cat.root)
    assert main(["recommend", "--user", "ana", "-k", "3", "--catalog", root, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in d["recommendations"]] == [r.track.id for r in recs[:3]]
    assert main(["recommend", "--user", "nobody", "--catalog", root]) == 2
    assert "no listens" in capsys.readouterr().err
    # a user who has played every track: nothing new, and the CLI says so (and how to keep played tracks)
    _csv(tmp_path / "all.csv", ["user,track,timestamp,plays", *(f"omni,{t.id},{i},1" for i, t in
                                                                 enumerate(by_name.values()))])
    assert main(["listens", "import", str(tmp_path / "all.csv"), "--catalog", root]) == 0
    capsys.readouterr()
    assert main(["recommend", "--user", "omni", "--catalog", root]) == 0
    out = capsys.readouterr().out
    assert "nothing new: every track is already played (--include-heard keeps played tracks)" in out
    assert main(["recommend", "--user", "omni", "-k", "2", "--include-heard", "--catalog", root]) == 0
    assert "nothing new" not in capsys.readouterr().out
