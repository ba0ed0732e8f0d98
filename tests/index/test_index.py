"""Vector index choice (flat, HNSW, IVF-PQ with exact re-ranking), stored in the catalog."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike import Catalog
from soundalike.errors import ParameterError
from soundalike.index.vectors import FLAT_MAX, IndexSpec, VectorIndex, choose_index, resolve_spec
from soundalike.tasks import similar
from soundalike.testing import write_tracks


def _structured(n, dim=128, seed=0):
    """Unit vectors in 50 clusters plus noise: closer to real embeddings than uniform random ones."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, dim))
    x = centres[rng.integers(0, 50, n)] + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_choice_by_size_and_memory():
    assert choose_index(1000).kind == "flat" and choose_index(FLAT_MAX).kind == "flat"
    assert choose_index(FLAT_MAX + 1).kind == "hnsw"
    assert choose_index(1_000_000, memory_mb=200).kind == "ivfpq"  # 1M x 128 floats alone are 488 MB
    assert choose_index(100_000, memory_mb=1000).kind == "flat"
    assert resolve_spec("auto", 10, 128).kind == "flat" and resolve_spec({"kind": "hnsw", "m": 16}, 10, 128).m == 16
    with pytest.raises(ParameterError, match="unknown index type"):
        IndexSpec(kind="annoy")


@pytest.mark.parametrize("kind, min_recall", [("flat", 1.0), ("hnsw", 0.99), ("ivfpq", 0.97)])
def test_each_index_finds_the_exact_top_10(kind, min_recall):
    x = _structured(6000)
    ids = np.arange(100, 6100, dtype=np.int64)
    rng = np.random.default_rng(1)
    q = x[rng.choice(len(x), 50, replace=False)] + 0.05 * rng.standard_normal((50, 128)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)  # queries near the catalog, as real queries are
    exact = np.argsort(-(q @ x.T), axis=1)[:, :10] + 100
    vi = VectorIndex.build(ids, x, 128, IndexSpec(kind=kind))
    scores, got = vi.search(q, 10, rerank=lambda r: x[r - 100])
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, exact, strict=True)])
    assert recall >= min_recall, recall
    # the scores are the true cosines of the ids returned (IVF-PQ re-ranks with the stored vectors)
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", q, x[got - 100]), atol=1e-4)


def test_catalog_stores_the_index_choice_and_rebuilds_on_change(tmp_path):
    music = tmp_path / "music"
    paths = write_tracks(music, list(range(1, 9)), duration=8.0)
    with pytest.raises(ParameterError, match="unknown index type"):
        Catalog.create(tmp_path / "bad", index="annoy", fingerprint_model=None, tag_heads=None)
    assert not (tmp_path / "bad").exists()
    with Catalog.create(tmp_path / "cat", index="hnsw", fingerprint_model=None, tag_heads=None) as cat:
        cat.add([music])
        assert cat.info()["vector_index"]["kind"] == "hnsw" and cat.index_request == {"kind": "hnsw"}
        flat = [m.track.id for m in similar(cat, str(paths[3]), k=8)]
    with Catalog.open(tmp_path / "cat") as cat:  # reopened: the saved HNSW index is reused, same answers
        assert cat.vector_index().spec.kind == "hnsw"
        assert [m.track.id for m in similar(cat, str(paths[3]), k=8)] == flat
        assert cat.set_index("ivfpq").kind == "flat"  # 8 tracks cannot train IVF-PQ codes: built exact
        assert cat.info()["vector_index"]["asked"] == "ivfpq"
        got = similar(cat, str(paths[3]), k=3)
        assert got[0].track.path == str(paths[3].resolve()) and got[0].score == pytest.approx(1.0, abs=1e-4)
        some = np.array([t.id for t in cat.tracks()][:3])
        np.testing.assert_array_equal(cat.song_vectors(some), np.stack([cat.embeddings(i)[1] for i in some]))
        assert cat.set_index("auto").kind == "flat"
        assert [m.track.id for m in similar(cat, str(paths[3]), k=8)] == flat


def test_index_report_times_every_stage(tmp_path):
    from soundalike.index.catalog import Catalog
    from soundalike.testing import write_tracks

    folder = tmp_path / "music"
    write_tracks(folder, [1, 2], duration=8.0)
    with Catalog.create(tmp_path / "cat") as cat:
        rep = cat.add(folder)
    st = rep.stage_seconds
    for stage in ("scan", "decode", "frontend", "encoder", "fingerprints", "writes", "sides", "vector_index"):
        assert stage in st and st[stage] >= 0.0
    assert st["encoder"] > 0 and st["fingerprints"] > 0 and st["writes"] > 0
    main_thread = sum(v for k, v in st.items())  # decode is the wait for the decoder: all on one clock
    assert main_thread <= rep.wall_seconds * 1.05
    assert rep.to_dict()["stage_seconds"].keys() == st.keys()
