"""The persistent hashed window index: probing, exactness where it probes, atomic saves, the catalog's use."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from soundalike import Catalog
from soundalike.audio import save
from soundalike.errors import ParameterError
from soundalike.fingerprint import hamming
from soundalike.fingerprint.index import (
    BinaryIndex,
    HashedIndex,
    choose_key_bits,
    key_width,
    load_folder,
    save_folder,
)
from soundalike.tasks import identify
from soundalike.testing import synth_track, write_tracks

SR = 22050


def _tracks(rng, n_tracks=40, n=(30, 200)):
    codes = [rng.integers(0, 256, size=(int(rng.integers(*n)), 16), dtype=np.uint8) for _ in range(n_tracks)]
    return list(range(100, 100 + n_tracks)), codes


def _build(ids, codes, **kw):
    return HashedIndex.build(128, ids, [len(c) for c in codes], [0.5] * len(ids), lambda: iter(codes), **kw)


def _noisy(rng, codes, p):
    flips = rng.random((len(codes), 128)) < p
    return np.packbits(np.unpackbits(codes, axis=1) ^ flips, axis=1)


def test_key_bits_are_balanced_and_independent():
    rng = np.random.default_rng(0)
    x = rng.random((4000, 32)) < 0.5
    x[:, 0] = True  # constant: useless as a key bit
    x[:, 5] = x[:, 4]  # a copy of bit 4: says nothing new
    key = choose_key_bits(np.packbits(x, axis=1), 8)
    assert 0 not in key and not {4, 5} <= set(key.tolist()) and len(set(key.tolist())) == 8
    assert key_width(10, 128) == 4 and key_width(48_000_000, 128) == 21 and key_width(10**12, 128) == 30


def test_every_window_is_found_where_it_was_put():
    rng = np.random.default_rng(1)
    ids, codes = _tracks(rng)
    index = _build(ids, codes)
    assert len(index) == sum(len(c) for c in codes)
    for i in (0, 7, 39):
        np.testing.assert_array_equal(index.track_codes(ids[i]), codes[i])
    assert index.track_codes(5).shape == (0, 16)
    hits = index.search_hits(codes[7][[0, 12, 29]], 3)
    assert hits.tracks[:, 0].tolist() == [107] * 3 and hits.times[:, 0].tolist() == [0.0, 6.0, 14.5]
    assert hits.distances[:, 0].tolist() == [0, 0, 0]
    # every hit's distance is its code's true distance to the query
    d = np.array([[hamming(codes[7][[0, 12, 29]][r], hits.codes[r, j])[0, 0] for j in range(3)] for r in range(3)])
    np.testing.assert_array_equal(np.where(hits.tracks >= 0, hits.distances, -1), np.where(hits.tracks >= 0, d, -1))


def test_probes_flip_the_least_sure_key_bits_first():
    rng = np.random.default_rng(2)
    ids, codes = _tracks(rng, n_tracks=10)
    index = _build(ids, codes, width=6)
    q = codes[0][:1]
    margins = np.full((1, 128), 5.0, np.float32)
    margins[0, index.key_bits[3]] = 0.1  # the 4th key bit is the least sure
    margins[0, index.key_bits[1]] = 0.2
    keys = index.probe_keys(q, margins, 4)[0]
    own = int(index.probe_keys(q, None, 1)[0, 0])
    w = index.width
    assert keys[0] == own
    assert keys[1] == own ^ (1 << (w - 1 - 3)) and keys[2] == own ^ (1 << (w - 1 - 1))
    assert keys[3] == own ^ (1 << (w - 1 - 3)) ^ (1 << (w - 1 - 1))


def test_noisy_windows_find_their_source_among_many():
    rng = np.random.default_rng(3)
    ids, codes = _tracks(rng, n_tracks=400, n=(200, 400))  # ~120k windows
    index = _build(ids, codes)
    exact = BinaryIndex.build(128, [(t, c, 0.5) for t, c in zip(ids, codes, strict=True)])
    q = _noisy(rng, codes[123][50:90], 0.12)
    h, e = index.search_hits(q, 5), exact.search_hits(q, 5)
    assert (e.tracks[:, 0] == 223).all()
    # without margins probes flip key bits in a fixed order; most windows still land on their own
    assert (h.tracks[:, 0] == 223).mean() >= 0.6
    # where it found the source, it is the exact answer: the same window at the same distance
    found = h.tracks[:, 0] == 223
    np.testing.assert_array_equal(h.times[found, 0], e.times[found, 0])
    np.testing.assert_array_equal(h.distances[found, 0], e.distances[found, 0])
    with pytest.raises(ParameterError):
        HashedIndex.build(128, ids[:2], [5, 5], [0.5, 0.5], lambda: iter([codes[0][:3]]))


def test_saving_is_atomic_and_loading_checks(tmp_path):
    rng = np.random.default_rng(4)
    ids, codes = _tracks(rng, n_tracks=5)
    first = save_folder(lambda f: _build(ids, codes, folder=f), tmp_path, "fp", {"stamp": 1})
    assert load_folder(tmp_path, "fp").meta["stamp"] == 1 and isinstance(load_folder(tmp_path, "fp").codes, np.memmap)

    def broken(folder):
        _build(ids[:2], codes[:2], folder=folder)
        raise OSError("disk full")

    with pytest.raises(OSError):
        save_folder(broken, tmp_path, "fp", {"stamp": 2})
    again = load_folder(tmp_path, "fp")  # the previous index, whole
    assert again.meta["stamp"] == 1 and len(again) == len(first)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [first.meta["folder"]]
    second = save_folder(lambda f: _build(ids[:3], codes[:3], folder=f), tmp_path, "fp", {"stamp": 3})
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [second.meta["folder"]]  # the old one is gone
    (tmp_path / second.meta["folder"] / "codes.npy").write_bytes(b"damaged")
    assert load_folder(tmp_path, "fp") is None  # damaged: the catalog rebuilds it
    (tmp_path / "fp.json").write_text(json.dumps({**second.meta, "folder": "../elsewhere"}))
    assert load_folder(tmp_path, "fp") is None  # only a folder it made, beside the pointer
    (tmp_path / "fp.json").write_text("{not json")
    assert load_folder(tmp_path, "fp") is None


def test_catalog_keeps_a_hashed_index_current(tmp_path):
    folder = tmp_path / "music"
    write_tracks(folder, [40, 41, 42], duration=20.0)
    cat = Catalog.create(tmp_path / "cat")
    try:
        cat.add([folder])
        cat.fingerprints.use_index("hashed")
        clip = save(tmp_path / "clip.wav", synth_track(41, duration=20.0)[6 * SR: 11 * SR], SR)
        m = identify(cat, clip).match
        assert m is not None and m.track.path.endswith("track_041.wav") and m.offset == pytest.approx(6.0, abs=0.25)
        index = cat.window_index()
        assert index.kind == "hashed" and len(index) == 3 * 39
        pointer = json.loads((cat.root / "fingerprints.hash.json").read_text())
        assert (cat.root / pointer["folder"] / "codes.npy").is_file()
        # a change elsewhere (a listen) keeps it; a new track rebuilds it, and is found
        gen = cat.generation
        cat.add_listens([("ann", m.track.id, 1.0e9, 1)])
        assert cat.generation > gen
        reopened = Catalog.open(cat.root)
        reopened.fingerprints.use_index("hashed")
        assert reopened.window_index().meta["folder"] == pointer["folder"]
        assert json.loads((cat.root / "fingerprints.hash.json").read_text())["generation"] == reopened.generation
        reopened.close()
        write_tracks(folder, [43], duration=20.0)
        cat.add([folder])
        clip2 = save(tmp_path / "clip2.wav", synth_track(43, duration=20.0)[2 * SR: 7 * SR], SR)
        m2 = identify(cat, clip2).match
        assert m2 is not None and m2.track.path.endswith("track_043.wav")
        assert json.loads((cat.root / "fingerprints.hash.json").read_text())["folder"] != pointer["folder"]
        assert len(cat.window_index()) == 4 * 39
        # the index lost: rebuilt from SQLite, the same answer
        (cat.root / "fingerprints.hash.json").unlink()
        fresh = Catalog.open(cat.root)
        fresh.fingerprints.use_index("hashed")
        m3 = identify(fresh, clip).match
        assert m3 is not None and m3.track.id == m.track.id and m3.offset == pytest.approx(m.offset, abs=0.05)
        fresh.close()
        with pytest.raises(ParameterError, match="unknown fingerprint index"):
            cat.fingerprints.use_index("fast")
        assert cat.info()["fingerprints"]["index"] == "hashed" and cat.info()["fingerprints"]["hashed_index_bytes"] > 0
        cat.fingerprints.use_index("auto")
        assert cat.info()["fingerprints"]["index"] == "exact"  # 156 windows: auto scans them all
    finally:
        cat.close()
    # the CLI: --index hashed, JSON out, the index rebuilt after a change with nothing lost
    (tmp_path / "cat" / "fingerprints.hash.json").unlink()
    out = subprocess.run([sys.executable, "-m", "soundalike", "identify", str(clip), "--catalog", str(tmp_path / "cat"),
                          "--index", "hashed", "--json"], capture_output=True, text=True, check=True)
    d = json.loads(out.stdout)
    assert d["matched"] and d["match"]["path"].endswith("track_041.wav") and abs(d["match"]["offset"] - 6.0) < 0.25
    assert (tmp_path / "cat" / "fingerprints.hash.json").is_file()


def test_hits_nearest_keeps_k_distinct_windows_nearest_first():
    from soundalike.fingerprint.index import Hits

    codes = np.arange(6, dtype=np.uint8).reshape(1, 6, 1)
    # the same window (track 3 at 1.0 s) found twice, an empty slot, and three others
    hits = Hits(np.array([[5, 2, 9, 2, 1, 7]], np.int32), np.array([[4, 3, 5, 3, -1, 6]]),
                np.array([[0.5, 1.0, 2.0, 1.0, 0.0, 0.25]]), codes)
    near = hits.nearest(3, 0.25, bits=64)
    assert near.distances.tolist() == [[2, 5, 7]]
    assert near.tracks.tolist() == [[3, 4, 6]]
    assert near.times.tolist() == [[1.0, 0.5, 0.25]]
    assert near.codes[0, :, 0].tolist() == [1, 0, 5]
    padded = hits.nearest(6, 0.25, bits=64)  # fewer distinct windows than asked: padded as search_hits pads
    assert padded.tracks.tolist() == [[3, 4, 6, 5, -1, -1]]
    assert padded.distances[0, 4:].tolist() == [64, 64]
