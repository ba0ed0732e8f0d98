"""`index --ray`: the same catalog as the local path, on a local Ray cluster (ray.init(num_cpus=2))."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'soundalike[ray]'")

from soundalike import Catalog  # noqa: E402
from soundalike.tasks import similar  # noqa: E402
from soundalike.testing import write_tracks  # noqa: E402

pytestmark = pytest.mark.slow  # a local Ray cluster: seconds to start, many to run


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _snapshot(cat):
    out = {}
    for t in cat.tracks():
        chunks, song = cat.embeddings(t.id)
        fp = cat.store.execute("SELECT codes FROM fingerprints WHERE track_id = ?", (t.id,)).fetchone()
        out[t.id] = (t.path, chunks, song, cat.track_tags(t.id).track if cat.has_tags else None, fp[0] if fp else None)
    return out


def test_ray_index_gives_the_same_catalog_as_the_local_path(cluster, tmp_path):
    music = tmp_path / "music"
    write_tracks(music, [2, 13, 31, 47, 59], duration=10.0)
    (music / "broken.mp3").write_bytes(b"not audio at all")
    with Catalog.create(tmp_path / "local") as local:
        rep_l = local.add([music])
        a = _snapshot(local)
    with Catalog.create(tmp_path / "ray") as distributed:
        rep_r = distributed.add([music], ray=True, ray_workers=2)
        b = _snapshot(distributed)
        assert similar(distributed, a[1][0], k=1)[0].track.id == 1
    assert rep_l.added == rep_r.added == 5 and len(rep_r.failed) == len(rep_l.failed) == 1
    assert list(a) == list(b)  # same ids, in the same order
    for tid in a:
        pa, ca, sa, ta, fa = a[tid]
        pb, cb, sb, tb, fb = b[tid]
        assert pa == pb
        np.testing.assert_allclose(cb, ca, atol=1e-5)
        np.testing.assert_allclose(sb, sa, atol=1e-5)
        np.testing.assert_allclose(tb, ta, atol=1e-5)
        assert fa == fb  # identical fingerprint codes


def test_ray_index_continues_an_interrupted_run(cluster, tmp_path):
    music = tmp_path / "music"
    paths = write_tracks(music, [5, 6, 7, 8], duration=8.0)
    with Catalog.create(tmp_path / "cat", fingerprint_model=None) as cat:
        cat.add(paths[:2], ray=True)  # as if a run was stopped after two tracks were committed
        first = {t.path: t.id for t in cat.tracks()}
        rep = cat.add([music], ray=True)
        assert rep.added == 2 and rep.unchanged == 2 and len(cat) == 4
        assert {t.path: t.id for t in cat.tracks() if t.path in first} == first  # nothing redone or lost


def test_without_ray_the_flag_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    import builtins

    from soundalike.cli import main

    real = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real(name, *a, **k)

    write_tracks(tmp_path / "music", [1], duration=5.0)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert main(["index", str(tmp_path / "music"), "--catalog", str(tmp_path / "cat"), "--ray", "-q"]) == 2
    assert "pip install 'soundalike[ray]'" in capsys.readouterr().err


def test_sharded_search_is_exactly_the_flat_top_k(cluster, tmp_path):
    from soundalike.index.distributed import ShardedIndex
    from soundalike.index.vectors import VectorIndex

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(1000, 6000, dtype=np.int64)
    q = x[rng.choice(5000, 20)] + 0.1 * rng.standard_normal((20, 64)).astype(np.float32)
    flat_s, flat_i = VectorIndex.build(ids, x, 64).search(q, 10)
    sharded = ShardedIndex(ids, x, 64, n_shards=3, key="test-exact")
    s, i = sharded.search(q, 10)
    np.testing.assert_array_equal(i, flat_i)
    np.testing.assert_allclose(s, flat_s, atol=1e-6)
    assert len(sharded) == 5000 and len(sharded.shards) == 3
    # a catalog opened with shards answers as the local one, and so does the web app
    music = tmp_path / "music"
    paths = write_tracks(music, [3, 4, 5, 6, 7], duration=6.0)
    with Catalog.create(tmp_path / "cat", fingerprint_model=None, tag_heads=None) as cat:
        cat.add([music])
        local = [(m.track.id, round(m.score, 5)) for m in similar(cat, str(paths[2]), k=5)]
    with Catalog.open(tmp_path / "cat", shards=2) as cat:
        assert [(m.track.id, round(m.score, 5)) for m in similar(cat, str(paths[2]), k=5)] == local
    from fastapi.testclient import TestClient

    from soundalike.serve.app import ServeConfig, create_app

    with TestClient(create_app(ServeConfig(catalog=str(tmp_path / "cat"), shards=2))) as client:
        d = client.post("/api/similar", content=paths[2].read_bytes(), params={"k": 5}).json()
        assert [m["id"] for m in d["matches"]] == [t for t, _ in local]


def test_sharded_fingerprints_answer_as_one_index(cluster, tmp_path):
    from soundalike.audio import save
    from soundalike.fingerprint.index import BinaryIndex
    from soundalike.index.distributed import ShardedWindowIndex
    from soundalike.tasks import identify
    from soundalike.testing import synth_track

    rng = np.random.default_rng(1)
    tracks = [(10 + i, rng.integers(0, 256, size=(int(rng.integers(20, 90)), 16), dtype=np.uint8), 0.5)
              for i in range(12)]
    q = tracks[4][1][5:25] ^ (rng.random((20, 16)) < 0.03).astype(np.uint8)
    local = BinaryIndex.build(128, tracks).search_hits(q, 6)
    sharded = ShardedWindowIndex(128, tracks, n_shards=3, key="test-fp")
    got = sharded.search_hits(q, 6)
    assert len(sharded.shards) == 3 and len(sharded) == sum(len(c) for _, c, _ in tracks)
    np.testing.assert_array_equal(got.distances, local.distances)
    np.testing.assert_array_equal(got.tracks[:, 0], local.tracks[:, 0])  # ties further down may differ in order
    np.testing.assert_array_equal(sharded.track_codes(17), tracks[7][1])
    # a catalog opened with shards identifies as the local one
    music = tmp_path / "music"
    write_tracks(music, [3, 4, 5, 6], duration=12.0)
    clip = save(tmp_path / "clip.wav", synth_track(5, duration=12.0)[3 * 22050: 8 * 22050], 22050)
    with Catalog.create(tmp_path / "cat", tag_heads=None) as cat:
        cat.add([music])
        want = identify(cat, clip).match
    with Catalog.open(tmp_path / "cat", shards=2) as cat:
        got_m = identify(cat, clip).match
        assert type(cat.window_index()).__name__ == "ShardedWindowIndex"
    assert want is not None and got_m is not None
    assert got_m.track.id == want.track.id and got_m.offset == pytest.approx(want.offset, abs=1e-6)


def test_killed_ray_index_run_resumes_without_loss_or_duplicates(tmp_path):
    import os
    import subprocess
    import sys

    from soundalike.testing.process import kill_when_indexed

    music = tmp_path / "music"
    write_tracks(music, list(range(100, 124)), duration=20.0)
    cat_dir = tmp_path / "cat"
    cmd = [sys.executable, "-m", "soundalike.cli", "index", str(music), "--catalog", str(cat_dir), "-q", "--ray",
           "--ray-workers", "1"]
    n = kill_when_indexed(cmd, cat_dir)  # the driver and its local Ray cluster, mid-way
    assert 3 <= n < 24, f"the run should be killed mid-way (saw {n} tracks)"
    out = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    with Catalog.open(cat_dir) as cat:
        paths = [t.path for t in cat.tracks()]
        assert len(paths) == len(set(paths)) == 24 and len(cat.vector_index()) == 24
        q = music / "track_110.wav"
        assert similar(cat, q, k=1)[0].track.path == str(q.resolve())


def test_shards_left_by_a_killed_run_are_merged_without_recomputing(cluster, tmp_path):
    import pickle

    from soundalike.data.files import file_sha256
    from soundalike.index.ingest import INGEST_SHARDS

    music = tmp_path / "music"
    paths = write_tracks(music, [201, 202, 203], duration=6.0)
    with Catalog.create(tmp_path / "ref", fingerprint_model=None, tag_heads=None) as ref:
        ref.add([paths[1]])
        chunks, song = ref.embeddings(1)
    from soundalike.inference.embed import TrackEmbedding

    marked = TrackEmbedding(chunks, -song, 6.0, 2.97, 2.97)  # recognisable: the negated song embedding
    with Catalog.create(tmp_path / "cat", fingerprint_model=None, tag_heads=None) as cat:
        shards = cat.root / INGEST_SHARDS
        shards.mkdir()
        (shards / f"{file_sha256(paths[1])}.pkl").write_bytes(pickle.dumps(marked))
        rep = cat.add([music], ray=True)
        assert rep.added == 3 and list(shards.iterdir()) == []  # merged, then deleted
        t = cat.track(str(paths[1]))
        np.testing.assert_array_equal(cat.embeddings(t.id)[1], -song)  # taken from the shard, not recomputed
