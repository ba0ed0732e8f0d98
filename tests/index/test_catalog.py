from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from soundalike import Catalog, create_encoder, load_encoder
from soundalike.audio import save
from soundalike.errors import CatalogError, CatalogMismatchError, TrackNotFoundError
from soundalike.tasks import similar
from soundalike.testing import synth_track, write_tracks
from soundalike.testing.process import kill_when_indexed


@pytest.fixture(scope="module")
def catalog(synth_folder, tmp_path_factory):
    root = tmp_path_factory.mktemp("cat") / "catalog"
    cat = Catalog.create(root)
    report = cat.add([synth_folder])
    assert report.added == 8 and not report.failed
    yield cat
    cat.close()


def test_excerpt_of_a_track_ranks_it_first(catalog, synth_folder):
    for path in sorted(synth_folder.glob("*.wav")):
        matches = similar(catalog, path, k=3, offset=12.0, duration=10.0)  # a different 10 s of it
        assert matches[0].track.path == str(path.resolve()), [m.track.path for m in matches]
        assert matches[0].score > matches[1].score


def test_noisy_excerpt_is_found_by_its_moments_and_a_whole_file_scores_one(catalog, synth_folder, tmp_path):
    from soundalike.audio import load
    from soundalike.augment.waveform import add_noise, codec
    from soundalike.index.scoring import SONG_WEIGHT

    rng = np.random.default_rng(5)
    srcs = sorted(synth_folder.glob("*.wav"))
    for n, src in enumerate(srcs[:4]):
        y, sr = load(src, sr=22050, offset=4.0 + 5 * n, duration=6.0)
        q = save(tmp_path / f"noisy{n}.wav", codec(add_noise(y, 10.0, rng), sr, bitrate_kbps=64), sr)
        got = similar(catalog, q, k=3)
        assert got[0].track.path == str(src.resolve()), [m.track.path for m in got]
        for m in got:  # the score is the stated mix of the two parts, and they are in range
            assert m.score == pytest.approx(SONG_WEIGHT * m.song_score + (1 - SONG_WEIGHT) * m.moment_score)
            assert -1.0 <= m.moment_score <= 1.0 and -1.0 <= m.song_score <= 1.0
        assert got[0].moment_score > got[1].moment_score
        assert set(got[0].to_dict()) >= {"song_score", "moment_score", "score"}
    whole = similar(catalog, srcs[2], k=2)  # a file in the catalog: its own track, score 1
    assert whole[0].track.path == str(srcs[2].resolve())
    assert whole[0].score == pytest.approx(1.0, abs=1e-4) and whole[0].moment_score == pytest.approx(1.0, abs=1e-4)
    by_id = similar(catalog, whole[0].track.id, k=2)  # a track id: song cosines alone, no moment parts
    assert by_id[0].moment_score is None and "moment_score" not in by_id[0].to_dict()


def test_mp3_excerpt_query(catalog, synth_folder, tmp_path):
    from soundalike.audio import load

    src = sorted(synth_folder.glob("*.wav"))[3]
    y, sr = load(src, sr=22050, offset=5.0, duration=10.0)
    q = save(tmp_path / "query.mp3", y, sr, bitrate=96_000)
    assert similar(catalog, q, k=1)[0].track.path == str(src.resolve())


def test_query_by_track_id_excludes_itself(catalog):
    t = catalog.tracks()[0]
    matches = similar(catalog, t.id, k=5)
    assert len(matches) == 5 and t.id not in [m.track.id for m in matches]
    assert all(matches[i].score >= matches[i + 1].score for i in range(4))
    same = similar(catalog, str(t.id), k=5)
    assert [m.track.id for m in same] == [m.track.id for m in matches]
    with pytest.raises(TrackNotFoundError):
        similar(catalog, 99999)


def test_stored_song_embedding_is_the_renormalised_chunk_mean(catalog):
    chunks, song = catalog.embeddings(catalog.tracks()[0].id)
    assert chunks.shape == (10, 128)  # 30 s / 2.97 s
    m = chunks.mean(axis=0)
    np.testing.assert_allclose(song, m / np.linalg.norm(m), atol=1e-6)


def test_info(catalog):
    info = catalog.info()
    assert info["tracks"] == 8 and abs(info["hours"] - 8 * 30 / 3600) < 1e-3
    assert info["model_fingerprint"] == load_encoder().fingerprint


def test_incremental_reindex_add_change_prune(tmp_path):
    music = tmp_path / "music"
    write_tracks(music, [10, 11, 12], duration=8.0)
    cat = Catalog.create(tmp_path / "cat")
    assert cat.add(music).added == 3
    rep = cat.add(music)
    assert (rep.added, rep.updated, rep.unchanged) == (0, 0, 3)
    ids = {t.path: t.id for t in cat.tracks()}
    # change one file, add one, copy one (same content), delete one
    save(music / "track_010.wav", synth_track(99, duration=8.0), 22050)
    write_tracks(music, [13], duration=8.0)
    shutil.copy(music / "track_011.wav", music / "copy_of_11.wav")
    (music / "track_012.wav").unlink()
    rep = cat.add(music, prune=True)
    assert (rep.added, rep.updated, rep.duplicates, rep.pruned) == (1, 1, 1, 1)
    paths = {t.path: t.id for t in cat.tracks()}
    assert len(paths) == 4 and len(cat) == 4
    assert paths[str((music / "track_010.wav").resolve())] == ids[str((music / "track_010.wav").resolve())]
    np.testing.assert_array_equal(cat.embeddings(paths[str((music / "copy_of_11.wav").resolve())])[1],
                                  cat.embeddings(paths[str((music / "track_011.wav").resolve())])[1])
    # the index follows the database
    assert similar(cat, music / "track_013.wav", k=1)[0].track.path.endswith("track_013.wav")
    cat.close()


def test_bad_files_are_reported_and_the_rest_indexed(tmp_path):
    music = tmp_path / "music"
    write_tracks(music, [20, 21], duration=6.0)
    (music / "empty.mp3").write_bytes(b"")
    (music / "text.ogg").write_text("not audio at all\n" * 20)
    (music / "notes.txt").write_text("ignored: not an audio extension")
    cat = Catalog.create(tmp_path / "cat")
    rep = cat.add(music)
    assert rep.added == 2
    assert sorted(Path(p).name for p, _ in rep.failed) == ["empty.mp3", "text.ogg"]
    assert len(cat.failures()) == 2 and cat.info()["failed_files"] == 2
    cat.close()


def test_catalog_refuses_another_model(tmp_path, synth_folder):
    cat = Catalog.create(tmp_path / "cat")
    cat.close()
    other = create_encoder("contrastive_cnn_small")
    other.save(tmp_path / "other")
    with pytest.raises(CatalogMismatchError, match="re-index"):
        Catalog.open(tmp_path / "cat", model=str(tmp_path / "other.safetensors"))
    with pytest.raises(CatalogError, match="no catalog"):
        Catalog.open(tmp_path / "nowhere")
    with pytest.raises(CatalogError, match="already exists"):
        Catalog.create(tmp_path / "cat")


def test_labels_from_manifest(tmp_path):
    music = tmp_path / "m"
    write_tracks(music, [30, 31], duration=5.0)
    man = music / "manifest.jsonl"
    man.write_text("\n".join(json.dumps({"path": f"track_{s:03d}.wav", "collection": f"c{s}"}) for s in (30, 31)))
    cat = Catalog.create(tmp_path / "cat")
    cat.add(music, manifest=man)
    assert sorted(t.labels["collection"] for t in cat.tracks()) == ["c30", "c31"]
    assert cat.info()["labels"]["collection"] == {"c30": 1, "c31": 1}
    cat.close()


@pytest.mark.slow
def test_killed_index_run_resumes_without_loss_or_duplicates(tmp_path):
    music = tmp_path / "music"
    write_tracks(music, list(range(40, 64)), duration=20.0)
    cat_dir = tmp_path / "cat"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "soundalike.cli", "index", str(music), "--catalog", str(cat_dir), "-q",
           "--threads", "1"]
    n = kill_when_indexed(cmd, cat_dir, timeout=120)
    assert 3 <= n < 24, f"the run should be killed mid-way (saw {n} tracks)"
    out = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["tracks"] == 24 and report["added"] + report["unchanged"] == 24 and report["unchanged"] >= 3
    with Catalog.open(cat_dir) as cat:
        paths = [t.path for t in cat.tracks()]
        assert len(paths) == len(set(paths)) == 24
        assert len(cat.vector_index()) == 24
        q = music / "track_050.wav"
        assert similar(cat, q, k=1)[0].track.path == str(q.resolve())


@pytest.mark.parametrize("version, dropped", [
    (1, ("fingerprints", "hash_codes", "track_tags", "listens", "track_rhythm", "track_notes")),
    (2, ("hash_codes", "track_tags", "listens", "track_rhythm", "track_notes")),
    (3, ("track_tags", "listens", "track_rhythm", "track_notes")),
    (4, ("listens", "track_rhythm", "track_notes")), (5, ("track_rhythm", "track_notes")), (6, ("track_notes",))])
def test_older_catalog_schemas_are_upgraded_in_place(tmp_path, version, dropped):
    """Every older schema (1: no fingerprints, 2: no hash codes, 3: no tags, 4: no listens, 5: no tempo and
    rhythm, 6: no note features) opens as the current one and can then gain what it lacked; its tracks are
    kept."""
    import sqlite3

    from soundalike.hashing.data import HASH_FRONTEND
    from soundalike.hashing.train import hash_model
    from soundalike.index.catalog import SCHEMA_VERSION
    from soundalike.models.encoders.hash_cnn import HashCNN

    folder = tmp_path / "music"
    write_tracks(folder, [50], duration=12.0)
    cat = Catalog.create(tmp_path / "cat", fingerprint_model=None, tag_heads=None)
    cat.add([folder])
    cat.close()
    old = sqlite3.connect(tmp_path / "cat" / "catalog.sqlite")  # make it what an older soundalike wrote
    for table in dropped:
        old.execute(f"DROP TABLE {table}")
    old.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    old.commit()
    old.close()
    tiny = HashCNN(HashCNN.Config(width=1 / 32, n_classes=2, step_dim=16, hidden=32, bits=16)).eval()
    model = hash_model(tiny, name="tiny", label_names=("a", "b"), frontend=HASH_FRONTEND).save(tmp_path / "h")
    cat = Catalog.open(tmp_path / "cat")
    try:
        assert SCHEMA_VERSION == 7 and cat.info()["schema_version"] == 7 and len(cat) == 1
        if "fingerprints" in dropped:
            assert cat.enable_fingerprints().fingerprinted == 1
        if "hash_codes" in dropped:
            assert cat.enable_hash_codes(model).hashed == 1
        assert cat.enable_tags().tagged == 1 and len(cat.tag_names) == 66
        assert cat.add_listens([("ana", cat.tracks()[0].id, 1.0, 2)]) == 1 and cat.users() == [("ana", 1, 2)]
        assert cat.enable_events().rhythm == 1 and cat.track_rhythm(cat.tracks()[0].id) is not None
        assert cat.enable_notes().notes == 1 and cat.notes.feature(cat.tracks()[0].id) is not None
    finally:
        cat.close()


def test_catalog_of_a_superseded_model_keeps_working_and_says_how_to_reindex(tmp_path, synth_folder, monkeypatch):
    from soundalike.models import factory

    cat = Catalog.create(tmp_path / "old", model="contrastive_cnn-demo")
    cat.add([str(synth_folder / "track_000.wav")])
    cat.close()
    with Catalog.open(tmp_path / "old") as c:  # the default has not replaced it: nothing to say
        assert c.model_notice is None
    monkeypatch.setattr(factory, "SUPERSEDED_MODELS", ("contrastive_cnn-demo",))
    with Catalog.open(tmp_path / "old") as c:
        assert c.encoder.name == "contrastive_cnn-demo" and len(c.tracks()) == 1  # still its own model
        assert "soundalike index" in c.model_notice and factory.DEFAULT_MODEL in c.model_notice
    # with the new default named explicitly, it refuses and says how to re-index
    with pytest.raises(CatalogMismatchError, match="re-index"):
        Catalog.open(tmp_path / "old", model="default")
