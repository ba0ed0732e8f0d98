"""Hashing: the classic methods on toy problems with known answers, ranking metrics, the hash-CNN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from soundalike.errors import ParameterError
from soundalike.fingerprint.codes import hamming, pack_codes, unpack_codes
from soundalike.hashing import HASHERS, create_hasher, hamming_ranking
from soundalike.hashing.metrics import cosine_ranking, ranking_scores
from soundalike.tasks import similar


def test_sign_bit_packing_round_trips():
    rng = np.random.default_rng(0)
    for bits in (16, 32, 64, 128):
        x = rng.standard_normal((50, bits))
        codes = pack_codes(x)
        assert codes.shape == (50, bits // 8) and codes.dtype == np.uint8
        np.testing.assert_array_equal(unpack_codes(codes, bits), np.where(x > 0, 1.0, -1.0))
        np.testing.assert_array_equal(pack_codes(unpack_codes(codes, bits)), codes)
    # most significant bit first: only the first coordinate positive -> 0b10000000
    assert pack_codes(np.array([[1.0] + [-1.0] * 7]))[0, 0] == 128


def test_hamming_matches_bit_counts():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((70, 64)), rng.standard_normal((300, 64))
    want = ((a[:, None] > 0) != (b[None] > 0)).sum(axis=2)
    np.testing.assert_array_equal(hamming(pack_codes(a), pack_codes(b), block=16), want)


def test_lsh_bit_disagreement_is_angle_over_pi():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(32), rng.standard_normal(32)
    theta = np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    lsh = create_hasher("lsh", bits=4096, seed=3).fit(np.zeros((2, 32)))  # mean 0: hyperplanes through the origin
    codes = lsh.encode(np.stack([a, b]))
    assert hamming(codes[:1], codes[1:])[0, 0] / 4096 == pytest.approx(theta / np.pi, abs=0.03)


def test_itq_finds_the_rotation_of_a_hypercube():
    """Points near the 256 corners of a randomly rotated, shifted 8-d cube: ITQ must give one code per corner."""
    import itertools

    rng = np.random.default_rng(0)
    corners = np.array(list(itertools.product([-1.0, 1.0], repeat=8)))
    which = np.repeat(np.arange(256), 4)
    rot, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    x = (corners[which] + 0.1 * rng.standard_normal((1024, 8))) @ rot + 3.0
    itq = create_hasher("itq", bits=8).fit(x)
    codes = [bytes(c) for c in itq.encode(x)]
    for k in range(256):
        assert len({codes[i] for i in np.flatnonzero(which == k)}) == 1
    assert len(set(codes)) == 256  # distinct corners get distinct codes
    pca_only = create_hasher("itq", bits=8, iterations=0, restarts=1).fit(x)
    assert itq.quantisation_error(x) < 0.1 * pca_only.quantisation_error(x)


def test_ksh_separates_what_linear_hashes_cannot():
    """Two concentric rings: no hyperplane separates them; the RBF-kernel supervised hash does."""
    rng = np.random.default_rng(5)
    r = np.where(rng.random(600) < 0.5, 1.0, 2.0)
    ang = rng.uniform(0, 2 * np.pi, 600)
    x = np.stack([r * np.cos(ang), r * np.sin(ang)], 1) + 0.1 * rng.standard_normal((600, 2))
    y = (r > 1.5).astype(int)
    scores = {}
    for name in ("lsh", "ksh"):
        h = create_hasher(name, bits=8).fit(x[:400], y[:400])
        c = h.encode(x)
        scores[name] = hamming_ranking(c[400:], c[:400], y[400:], y[:400])["map"]
    assert scores["ksh"] > 0.95
    assert scores["lsh"] < 0.7


def test_hashers_refuse_bad_input():
    with pytest.raises(ParameterError, match="multiple of 8"):
        create_hasher("lsh", bits=12)
    with pytest.raises(ParameterError, match="unknown hashing method"):
        create_hasher("spectral", bits=16)
    with pytest.raises(ParameterError, match="supervised"):
        create_hasher("ksh", bits=8).fit(np.zeros((10, 3)))
    with pytest.raises(ParameterError, match="bits <= feature dimension"):
        create_hasher("itq", bits=16).fit(np.random.default_rng(0).standard_normal((50, 8)))
    with pytest.raises(ParameterError, match="NaN"):
        create_hasher("lsh", bits=8).fit(np.array([[np.nan, 1.0]]))
    with pytest.raises(ParameterError, match="fit"):
        create_hasher("lsh", bits=8).encode(np.zeros((1, 2)))
    assert set(HASHERS) == {"lsh", "itq", "ksh"}


def test_ranking_scores_by_hand():
    # one query (label 0); database labels [0, 1, 0, 1]; distances rank them 2, 1, 0, 3
    d = np.array([[2.0, 1.0, 0.0, 3.0]])
    out = ranking_scores(d, np.array([0]), np.array([0, 1, 0, 1]), k=2)
    # ranked relevance: [1, 0, 1, 0] -> AP = (1/1 + 2/3) / 2
    assert out["map"] == pytest.approx((1 + 2 / 3) / 2)
    assert out["precision@2"] == pytest.approx(0.5)
    # a query whose label the database lacks is skipped
    assert ranking_scores(d, np.array([7]), np.array([0, 1, 0, 1]))["queries"] == 0


def test_hamming_ties_are_broken_without_database_order_bias():
    """All distances tie: MAP must be the chance level whatever order the database is stored in."""
    labels = np.array([0] * 50 + [1] * 50)
    codes = np.zeros((100, 1), dtype=np.uint8)
    sorted_first = hamming_ranking(codes[:1], codes, np.array([0]), labels)["map"]
    assert 0.35 < sorted_first < 0.65  # stored order would have given 1.0


def test_cosine_ranking_perfect_on_separated_clusters():
    rng = np.random.default_rng(6)
    centres = rng.standard_normal((3, 16)) * 5
    lab = np.repeat(np.arange(3), 20)
    x = centres[lab] + 0.1 * rng.standard_normal((60, 16))
    assert cosine_ranking(x[::2], x[1::2], lab[::2], lab[1::2])["map"] == pytest.approx(1.0)


# ------------------------------------------------------------------ the hash-CNN


def test_hash_cnn_reference_layout():
    from soundalike.models.encoders.hash_cnn import FCN5_POOLS, HashCNN

    net = HashCNN(HashCNN.Config(width=0.125, bits=64))
    convs = [m for m in net.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128, 256]
    pools = [m.kernel_size for m in net.backbone.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert [tuple(p) if isinstance(p, tuple) else (p, p) for p in pools] == list(FCN5_POOLS)
    assert isinstance(net.recurrent, torch.nn.LSTM) and net.recurrent.num_layers == 2
    x = -80 * torch.rand(2, 96, 1366)
    maps = net.backbone(net._input(x))
    assert [tuple(m.shape[2:]) for m in maps] == [(48, 350), (24, 87), (12, 21), (4, 4), (1, 1)]  # 96 x 1400 in
    net.eval()
    with torch.no_grad():
        out = net.outputs(x)
    assert out["q"].shape == (2, 64) and out["logits"].shape == (2, 16)
    assert float(out["q"].abs().max()) < 1.0  # tanh: relaxed codes


def test_hash_cnn_variants_and_loss_terms():
    from soundalike.models.encoders.hash_cnn import HashCNN, feature_modes

    torch.manual_seed(0)
    for rnn in ("rnn", "gru", "lstm"):
        for layers in (1, 2):
            net = HashCNN(HashCNN.Config(width=0.0625, rnn=rnn, rnn_layers=layers, bits=16, n_classes=3))
            assert net.recurrent.num_layers == layers
    maps = [torch.randn(4, c, 4, 4) for c in (8, 16, 32, 64, 128)]
    for mode in feature_modes():
        net = HashCNN(HashCNN.Config(width=0.0625, features=mode, bits=16, n_classes=3))
        assert net.head(maps)["q"].shape == (4, 16)
    net = HashCNN(HashCNN.Config(width=0.0625, bits=16, n_classes=3, quant_weight=0.5, balance_weight=2.0))
    out = {"q": torch.tensor([[0.5, -1.0], [0.5, 1.0]]), "logits": torch.zeros(2, 3)}
    terms = net.loss(out, torch.tensor([0, 1]))
    assert float(terms["ce"]) == pytest.approx(np.log(3), rel=1e-5)
    assert float(terms["quant"]) == pytest.approx((0.25 + 0 + 0.25 + 0) / 4)  # (|q| - 1)^2 averaged
    assert float(terms["balance"]) == pytest.approx((0.25 + 0.0) / 2)  # bit means 0.5 and 0
    assert float(terms["loss"]) == pytest.approx(np.log(3) + 0.5 * 0.125 + 2.0 * 0.125, rel=1e-5)
    floaty = HashCNN(HashCNN.Config(width=0.0625, bits=0, n_classes=3, hidden=32))
    assert floaty.head(maps)["h"].shape == (4, 32) and "q" not in floaty.head(maps) and floaty.embed_dim == 32
    with pytest.raises(ParameterError):
        HashCNN(HashCNN.Config(rnn="transformer"))
    with pytest.raises(ParameterError):
        HashCNN(HashCNN.Config(bits=12))
    with pytest.raises(ParameterError):
        HashCNN(HashCNN.Config(features="layer9"))


# ------------------------------------------------------------------ training on generated labelled audio


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Three classes x 6 generated 45 s tracks at 12 kHz, loaded as whole-track mels."""
    from soundalike.hashing.data import load_labelled
    from soundalike.testing import write_labelled_tracks

    folder = tmp_path_factory.mktemp("labelled")
    write_labelled_tracks(folder, classes=3, per_class=6, duration=45.0)
    return load_labelled([folder])


def _tiny(n_classes: int, **changes):
    from soundalike.models.encoders.hash_cnn import HashCNN

    return HashCNN(HashCNN.Config(width=1 / 32, n_classes=n_classes, step_dim=16, hidden=32, bits=16, **changes))


def test_labelled_clips_match_the_inference_front_end(labelled):
    """A clip cut from cached whole-track mels equals log_mel_chunks of the same audio (away from the edges)."""
    from soundalike.audio import load
    from soundalike.features.mel import log_mel_chunks
    from soundalike.hashing.data import clip_starts, cut_clip, split_tracks

    fe = labelled.frontend
    assert labelled.label_names == ("class0", "class1", "class2") and len(labelled) == 18
    y, _ = load(labelled.paths[0], sr=fe.sample_rate)
    want = log_mel_chunks(y, fe).numpy()[0]
    got = cut_clip(labelled.db[0], 0, fe.chunk_frames, top_db=fe.top_db)
    np.testing.assert_allclose(got[:, 2:-2], want[:, 2:-2], atol=0.05)  # float16 storage
    assert clip_starts(2110, 1366, 683) == [0, 683]
    assert clip_starts(1000, 1366, 683) == [0]  # a short track is one padded clip
    short = cut_clip(labelled.db[0][:, :100], 0, 200)
    assert short.shape == (96, 200) and (short[:, 100:] == -80).all()
    train, test = split_tracks(labelled.labels, labelled.groups, test_fraction=0.25, seed=0)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 18
    assert sorted(np.bincount(labelled.labels[test])) == [2, 2, 2]  # stratified: 2 of each class's 6


@pytest.mark.slow
def test_tiny_hash_model_trains_to_better_than_chance_map(labelled):
    from soundalike.hashing.data import split_tracks
    from soundalike.hashing.train import (
        HashTrainConfig,
        extract_maps,
        head_net,
        head_outputs,
        pretrain_backbone,
        train_head,
    )

    torch.manual_seed(0)
    train, test = split_tracks(labelled.labels, labelled.groups, test_fraction=0.25, seed=0)
    cfg = HashTrainConfig(backbone_steps=30, backbone_batch=8, head_steps=150, head_batch=32, threads=1)
    net = _tiny(3)
    hist = pretrain_backbone(net, labelled, train, cfg)
    assert np.mean([h["loss"] for h in hist[-5:]]) < np.mean([h["loss"] for h in hist[:5]])
    tr_maps, tr_track = extract_maps(net, labelled, train, hop=683)
    db_maps, db_track = extract_maps(net, labelled, train, hop=1366)
    q_maps, q_track = extract_maps(net, labelled, test, hop=1366)
    head = head_net(net)
    before = head_outputs(head, q_maps)
    hist = train_head(head, tr_maps, labelled.labels[tr_track], cfg)
    assert hist[-1]["loss"] < hist[0]["loss"]
    db, qu = head_outputs(head, db_maps), head_outputs(head, q_maps)
    res = hamming_ranking(pack_codes(qu["q"]), pack_codes(db["q"]), labelled.labels[q_track], labelled.labels[db_track])
    assert res["map"] > 0.8  # chance: about 1/3
    assert (qu["logits"].argmax(1) == labelled.labels[q_track]).mean() >= 5 / 6
    assert np.abs(qu["q"]).mean() > np.abs(before["q"]).mean()  # the quantisation term pulls q towards +-1
    for a, b in zip(net.backbone.state_dict().values(), head.backbone.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_experiment_tables_on_a_tiny_problem(labelled):
    """The experiment runner fills every table and checks the targets (values are the tiny problem's)."""
    from soundalike.hashing.data import split_tracks
    from soundalike.hashing.experiments import prepare, run_experiments
    from soundalike.hashing.train import HashTrainConfig, pretrain_backbone

    train, test = split_tracks(labelled.labels, labelled.groups, test_fraction=0.25, seed=0)
    cfg = HashTrainConfig(backbone_steps=20, backbone_batch=8, head_steps=60, head_batch=32, threads=1)
    net = _tiny(3)
    pretrain_backbone(net, labelled, train, cfg)
    data = prepare(net, labelled, train, test, cfg)
    res = run_experiments(net, data, cfg, code_lengths=(8, 16), table_bits=16)
    assert set(res["recurrent"]) == {f"{u}-{n}" for u in ("rnn", "gru", "lstm") for n in (1, 2)}
    assert set(res["features"]) == {"concat", "sequence", *(f"layer{k}" for k in range(1, 6))}
    assert set(res["methods"]) == {"ours", "lsh", "itq", "ksh", "lsh_h", "itq_h", "ksh_h"}
    assert set(res["methods"]["ours"]) == {"8", "16"}
    for table in (res["recurrent"], res["features"]):
        assert all(0 < r["map"] <= 1 and 0 <= r["accuracy"] <= 1 for r in table.values())
    assert res["methods"]["ours"]["16"] is res["recurrent"]["lstm-2"]  # the same model, not trained twice
    t = res["targets"]
    assert t["map64_over_float"] == pytest.approx(res["recurrent"]["lstm-2"]["map"] / res["float"]["map"])
    assert set(t["beats_baselines"]) == {"8", "16"} and set(t["beats_posthoc_h"]) == {"8", "16"}
    assert t["beats_baselines_met"] == all(
        res["methods"]["ours"][b]["map"] > res["methods"][m][b]["map"] for b in ("8", "16") for m in ("lsh", "itq", "ksh"))


# ------------------------------------------------------------------ hash codes in the catalog


def _save_tiny_hash_model(path, seed: int = 0):
    from soundalike.hashing.data import HASH_FRONTEND
    from soundalike.hashing.train import hash_model

    torch.manual_seed(seed)
    net = _tiny(3).eval()
    return hash_model(net, name=f"tiny-hash-{seed}", label_names=("a", "b", "c"), frontend=HASH_FRONTEND).save(path)


@pytest.fixture(scope="module")
def hash_catalog(tmp_path_factory):
    from soundalike import Catalog
    from soundalike.testing import write_tracks

    base = tmp_path_factory.mktemp("hashcat")
    folder = base / "music"
    write_tracks(folder, [60, 61, 62, 63, 64], duration=20.0)
    model = _save_tiny_hash_model(base / "tiny-hash")
    cat = Catalog.create(base / "cat", fingerprint_model=None, hash_model=model)
    rep = cat.add([folder])
    assert rep.added == 5 and rep.hashed == 5 and not rep.failed
    yield cat, folder, model
    cat.close()


def test_catalog_hash_search_ranks_by_hamming_distance(hash_catalog):
    cat, folder, _ = hash_catalog
    ids = [t.id for t in cat.tracks()]
    codes = np.stack([cat.hash_code(i) for i in ids])
    assert codes.shape == (5, 2)  # 16 bits per track
    assert cat.info()["hash_codes"]["tracks"] == 5 and cat.info()["hash_codes"]["bits"] == 16
    # a file query: its own track at distance 0, the others in Hamming order
    path = sorted(folder.glob("*.wav"))[2]
    got = similar(cat, path, k=5, hash=True)
    own = [m for m in got if m.track.path == str(path.resolve())]  # an untrained model's codes may tie
    assert own[0].hamming == 0 and own[0].score == 1.0 and got[0].hamming == 0
    assert [m.hamming for m in got] == sorted(m.hamming for m in got)
    # a track-id query leaves the track out and agrees with a brute-force Hamming scan
    q = ids[0]
    got = similar(cat, q, k=4, hash=True)
    d = hamming(codes[:1], codes)[0]
    assert q not in [m.track.id for m in got]
    assert [m.hamming for m in got] == sorted(int(x) for x in d[1:])
    assert all(m.score == pytest.approx(1 - m.hamming / 16) for m in got)
    # the code equals the sign of the mean relaxed code over the track's clips
    from soundalike.audio import load

    y, _ = load(path, sr=cat.hasher.sample_rate)
    np.testing.assert_array_equal(cat.hash_code(cat.track(str(path)).id), pack_codes(cat.hasher.relaxed(y)[None])[0])


def test_hash_codes_follow_tracks_copies_and_removals(tmp_path):
    import shutil

    from soundalike import Catalog
    from soundalike.testing import write_tracks

    folder = tmp_path / "music"
    write_tracks(folder, [70, 71], duration=12.0)
    model = _save_tiny_hash_model(tmp_path / "m")
    cat = Catalog.create(tmp_path / "cat", fingerprint_model=None, hash_model=model)
    try:
        cat.add([folder])
        shutil.copy(folder / "track_070.wav", folder / "copy.wav")
        rep = cat.add([folder])
        assert rep.duplicates == 1 and rep.hashed == 0
        a, b = cat.track(str(folder / "track_070.wav")), cat.track(str(folder / "copy.wav"))
        np.testing.assert_array_equal(cat.hash_code(a.id), cat.hash_code(b.id))
        cat.remove([a.id])
        assert cat.store.execute("SELECT COUNT(*) FROM hash_codes").fetchone()[0] == 2
        assert a.id not in [m.track.id for m in similar(cat, b.id, k=5, hash=True)]
        assert b.id in [m.track.id for m in similar(cat, folder / "copy.wav", k=5, hash=True) if m.hamming == 0]
    finally:
        cat.close()


def test_catalog_gains_hash_codes_and_refuses_another_model(tmp_path):
    from soundalike import Catalog
    from soundalike.errors import CatalogError, CatalogMismatchError, ModelError
    from soundalike.testing import write_tracks

    folder = tmp_path / "music"
    write_tracks(folder, [80, 81, 82], duration=12.0)
    first, second = _save_tiny_hash_model(tmp_path / "h0", 0), _save_tiny_hash_model(tmp_path / "h1", 1)
    cat = Catalog.create(tmp_path / "cat", fingerprint_model=None)
    try:
        cat.add([folder])
        with pytest.raises(CatalogError, match="no hash codes.*--hash-model"):
            similar(cat, 1, hash=True)
        assert cat.enable_hash_codes(first).hashed == 3
        assert cat.enable_hash_codes(first).hashed == 0  # nothing left to do
        before = cat.hash_code(1)
        with pytest.raises(CatalogMismatchError, match="rebuild"):
            cat.enable_hash_codes(second)
        np.testing.assert_array_equal(cat.hash_code(1), before)  # nothing stored was lost
        assert cat.enable_hash_codes(second, rebuild=True).hashed == 3
        assert cat.info()["hash_codes"]["model"] == "tiny-hash-1"
        with pytest.raises(ModelError, match="makes no binary codes"):
            cat.enable_hash_codes("contrastive_cnn-demo")
    finally:
        cat.close()


def test_cli_index_hash_model_and_similar_hash_json(tmp_path, capsys):
    import json

    from soundalike.cli import main
    from soundalike.testing import write_tracks

    folder = tmp_path / "music"
    write_tracks(folder, [100, 101, 102], duration=12.0)
    model = _save_tiny_hash_model(tmp_path / "h")
    cat = str(tmp_path / "cat")
    assert main(["index", str(folder), "--catalog", cat, "--no-fingerprints", "--hash-model", str(model), "--json",
                 "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["hashed"] == 3
    q = str(sorted(folder.glob("*.wav"))[1])
    assert main(["similar", q, "--catalog", cat, "--hash", "-k", "3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["ranking"] == "hamming" and len(d["matches"]) == 3
    assert [m["hamming"] for m in d["matches"] if m["path"] == str(Path(q).resolve())] == [0]
    assert main(["similar", q, "--catalog", cat, "--hash"]) == 0
    assert "bits that differ between 16-bit hash codes" in capsys.readouterr().out
    # a second hash model needs --rebuild-hash, and nothing is lost when it is refused
    other = _save_tiny_hash_model(tmp_path / "h2", 2)
    assert main(["index", str(folder), "--catalog", cat, "--hash-model", str(other), "-q"]) == 2
    assert "rebuild-hash" in capsys.readouterr().err
    assert main(["index", str(folder), "--catalog", cat, "--hash-model", str(other), "--rebuild-hash", "-q",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hashed"] == 3


def test_shipped_hash_model_uses_the_reference_front_end():
    from soundalike import load_hasher
    from soundalike.models import list_pretrained
    from soundalike.testing import synth_track

    assert "hash_cnn-music" in list_pretrained()
    h = load_hasher()  # the default
    fe = h.encoder.frontend
    assert (fe.sample_rate, fe.n_fft, fe.hop_length, fe.n_mels, fe.chunk_frames) == (12000, 512, 256, 96, 1366)
    assert fe.chunk_seconds == pytest.approx(29.12, abs=0.01)
    assert h.bits == 64 and len(h.encoder.labels) == 16 and h.encoder.net.config.rnn == "lstm"
    a = h.code(synth_track(0, sr=12000, duration=40.0))
    b = h.code(synth_track(3, sr=12000, duration=40.0))
    assert a.shape == (8,) and hamming(a[None], b[None])[0, 0] > 8  # different music, different codes
