"""Evaluation metrics against hand-computed values, the MFCC baseline against librosa, and
`soundalike evaluate` end to end (including a tiny train-then-evaluate run)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from soundalike.errors import ParameterError
from soundalike.evaluation import metrics as M
from soundalike.evaluation.run import EvalConfig, evaluate
from soundalike.index.scoring import moment_scores, similar_scores


def test_ranks_recall_mrr():
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.8], [0.1, 0.2, 0.3]])
    assert M.rank_of(scores, np.array([2, 1, 2])).tolist() == [2, 2, 1]  # a tie counts against the truth
    ranks = np.array([1, 2, 5, 1])
    assert M.recall_at_k(ranks, 1) == 0.5
    assert M.recall_at_k(ranks, 2) == 0.75
    assert M.mean_reciprocal_rank(ranks) == pytest.approx((1 + 0.5 + 0.2 + 1) / 4)


def test_precision_ap_ndcg():
    assert M.precision_at_k([1, 0, 1, 1], 3) == pytest.approx(2 / 3)
    assert M.average_precision([1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)
    assert M.average_precision([1, 0, 1, 0], n_relevant=3) == pytest.approx((1 + 2 / 3) / 3)  # one never retrieved
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3)
    assert M.ndcg_at_k([0, 1, 1], 3) == pytest.approx(dcg / idcg)
    assert M.ndcg_at_k([1, 1, 0], 3) == pytest.approx(1.0)
    assert math.isnan(M.average_precision([0, 0]))


def test_label_retrieval_by_hand():
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    good = M.label_retrieval(x, ["a", "a", "b", "b"], k=1)
    assert good["precision@1"] == 1.0 and good["map"] == 1.0 and good["ndcg@1"] == 1.0
    # labels crossed: worked out in the comment below
    # q0(a): a2(b) b2(a) b1(b) -> AP 1/2 ; q1(b): a1(a) b2(a) b1(b) -> AP 1/3 ; q2, q3 mirror them
    bad = M.label_retrieval(x, ["a", "b", "b", "a"], k=1)
    assert bad["precision@1"] == 0.0
    assert bad["map"] == pytest.approx((0.5 + 1 / 3 + 0.5 + 1 / 3) / 4)
    assert M.label_retrieval(x, ["a", "a", "b", "c"], k=2)["queries"] == 2  # singletons are not queries
    assert M.silhouette(x, ["a", "a", "b", "b"]) > 0.8
    assert M.silhouette(x, ["a", "b", "b", "a"]) < 0


def test_linear_probe(rng):
    a = rng.normal(0, 1, (30, 8)) + np.r_[4.0, np.zeros(7)]
    b = rng.normal(0, 1, (30, 8)) - np.r_[4.0, np.zeros(7)]
    x = np.vstack([a, b])
    labels = ["a"] * 30 + ["b"] * 30
    res = M.linear_probe(x, labels, n_folds=5)
    assert res["accuracy"] >= 0.98 and res["majority"] == 0.5 and res["folds"] == 5
    shuffled = M.linear_probe(rng.normal(size=(60, 8)), labels, n_folds=5)
    assert shuffled["accuracy"] < 0.8
    with pytest.raises(ParameterError):
        M.linear_probe(x, ["a"] * 60)


def test_excerpt_scores_by_hand():
    catalog = [np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.6, 0.8]])]
    s = moment_scores([np.array([[1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])], catalog)
    assert s[0].tolist() == pytest.approx([1.0, 0.6])
    assert s[1].tolist() == pytest.approx([1.0, 0.7])
    empty = moment_scores([np.array([[1.0, 0.0]])], [np.zeros((0, 2)), np.array([[0.0, 1.0]])])
    assert empty[0].tolist() == pytest.approx([-1.0, 0.0])  # a track without chunks ranks last


def test_similar_scores_let_a_query_moment_outrank_a_closer_song():
    # track 0's song is nearer the query's, but track 1 holds the query's moment: the mean ranks track 1 first
    tracks = [np.array([[0.0, 1.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])]
    scores, moments = similar_scores(np.array([0.9, 0.6]), np.array([[1.0, 0.0]]), tracks)
    assert moments.tolist() == pytest.approx([0.0, 1.0])
    assert scores.tolist() == pytest.approx([0.25 * 0.9, 0.25 * 0.6 + 0.75])
    # three interleaved grids: a track scores by its best-aligned one
    q = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [1.0, 0.0]])
    _, by_grid = similar_scores(np.zeros(1), q, [np.array([[1.0, 0.0]])], phases=3)
    assert by_grid.tolist() == pytest.approx([1.0])  # grid 0 (chunks 0 and 3) matches exactly
    _, flat = similar_scores(np.zeros(1), q, [np.array([[1.0, 0.0]])])
    assert flat.tolist() == pytest.approx([(1.0 + 0.0 + 0.6 + 1.0) / 4])


def test_mfcc_baseline_matches_librosa():
    librosa = pytest.importorskip("librosa")
    import torch

    from soundalike.evaluation.methods import MFCCMethod
    from soundalike.features.mel import FrontendConfig, MelFrontend
    from soundalike.testing import synth_track

    fe = FrontendConfig()
    y = synth_track(3, duration=5.0)
    ours = MFCCMethod(fe).mfcc(y)
    with torch.inference_mode():
        power = MelFrontend(fe)(y).numpy()
    ref = librosa.feature.mfcc(S=librosa.power_to_db(power, ref=np.max, amin=fe.amin, top_db=fe.top_db), n_mfcc=20)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-2 * max(1.0, np.abs(ref).max())


@pytest.fixture(scope="module")
def labelled_catalog(tmp_path_factory):
    """Ten generated tracks in two labelled groups, indexed with the shipped model."""
    from soundalike.index.catalog import Catalog
    from soundalike.testing import write_tracks

    root = tmp_path_factory.mktemp("evalcat")
    files = write_tracks(root / "audio", list(range(10)), duration=14.0)
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps({"path": f"audio/{f.name}", "label": "odd" if i % 2 else "even"}) + "\n"
                                for i, f in enumerate(files)))
    cat = Catalog.create(root / "catalog")
    cat.add([root / "audio"], manifest=manifest)
    return root


@pytest.mark.slow
def test_evaluate_writes_report_and_plots(labelled_catalog, tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    cfg = EvalConfig(excerpts_per_track=2, seed=1)
    report = evaluate(labelled_catalog / "catalog", tmp_path / "eval", config=cfg)
    names = list(report["methods"])
    from soundalike.index.catalog import Catalog

    assert names[0] == Catalog.open(labelled_catalog / "catalog").encoder.name  # the catalog's own model first
    assert "mfcc-stats" in names and any(n.endswith("-untrained") for n in names)
    for r in report["methods"].values():
        for cond in ("excerpt_clean", "excerpt_noisy"):
            assert r[cond]["queries"] == 20
            assert 0.0 <= r[cond]["recall@1"] <= r[cond]["recall@10"] <= 1.0
        assert 0.0 <= r["label_retrieval"]["map"] <= 1.0
    # generated tracks are far apart: every method finds a clean excerpt's own track
    assert all(r["excerpt_clean"]["recall@1"] >= 0.9 for r in report["methods"].values())
    files = {p.name for p in (tmp_path / "eval").iterdir()}
    assert {"evaluation.json", "evaluation.md", "pca.png", "tsne.png"} <= files
    assert (tmp_path / "eval" / "pca.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "eval" / "evaluation.md").read_text()
    assert "| mfcc-stats |" in md and "noisy R@1" in md
    saved = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert saved["tracks"] == 10 and saved["labels"] == {"even": 5, "odd": 5}


def test_evaluate_needs_labels(labelled_catalog, tmp_path):
    with pytest.raises(ParameterError, match="label-key|label"):
        evaluate(labelled_catalog / "catalog", tmp_path / "x", config=EvalConfig(label_key="genre", plots=False))


@pytest.mark.slow
def test_evaluate_cli_json(labelled_catalog, tmp_path, capsys):
    from soundalike.cli import main

    rc = main(["evaluate", "--catalog", str(labelled_catalog / "catalog"), "--out", str(tmp_path / "e"),
               "--no-plots", "--excerpts", "1", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tracks"] == 10 and out["plots"] == {}
    assert set(out["methods"]["mfcc-stats"]) >= {"excerpt_clean", "excerpt_noisy", "label_retrieval", "linear_probe"}


@pytest.mark.slow
def test_tiny_training_beats_the_untrained_encoder(tmp_path):
    """Train a small encoder briefly on generated tracks; on other generated tracks its noisy
    excerpts find their track better than the same network with random weights."""
    from soundalike.index.catalog import Catalog
    from soundalike.testing import write_tracks
    from soundalike.train import load_config, train

    write_tracks(tmp_path / "train", list(range(16)), duration=12.0)
    held = write_tracks(tmp_path / "held", list(range(100, 110)), duration=12.0)
    (tmp_path / "m.jsonl").write_text("".join(
        json.dumps({"path": f"held/{f.name}", "label": "odd" if i % 2 else "even"}) + "\n" for i, f in enumerate(held)))
    cfg = load_config(None, data=[str(tmp_path / "train")], out=str(tmp_path / "run"), encoder="contrastive_cnn_small",
                      steps=100, batch_size=16, lr=3e-3, warmup_steps=5, valid_fraction=0.0, valid_every=1000,
                      checkpoint_every=1000, threads=1, jobs=1,
                      augment={"views": 1, "view_seconds": 12, "noise_p": 0.9, "noise_snr_db": [-5, 15], "near_p": 0.7})
    model, _ = train(cfg)
    cat = Catalog.create(tmp_path / "cat", model=model)
    cat.add([tmp_path / "held"], manifest=tmp_path / "m.jsonl")
    report = evaluate(tmp_path / "cat", tmp_path / "eval",
                      config=EvalConfig(plots=False, noise_snr_db=0.0, excerpts_per_track=3, seed=0))
    trained = report["methods"]["contrastive_cnn_small"]["excerpt_noisy"]
    untrained = report["methods"]["contrastive_cnn_small-untrained"]["excerpt_noisy"]
    assert trained["mrr"] > untrained["mrr"] + 0.1
    assert trained["recall@1"] > untrained["recall@1"]


def test_roc_and_pr_auc_by_hand_and_against_scikit_learn():
    from sklearn.metrics import average_precision_score, roc_auc_score

    from soundalike.evaluation.metrics import per_tag_auc, pr_auc, roc_auc

    y = np.array([1, 0, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.4, 0.4, 0.1])
    # pairs (pos, neg): 0.9 beats all 3; 0.4 beats 0.1, ties 0.4 (half), loses to 0.8 -> (3 + 1.5) / 6
    assert roc_auc(y, s) == pytest.approx(4.5 / 6)
    # ranked 0.9(+) 0.8(-) then the 0.4 tie: precision at the positives 1/1 and 2/3 (stable order keeps + first)
    assert pr_auc(y, s) == pytest.approx((1 + 2 / 3) / 2)
    assert np.isnan(roc_auc(np.ones(3), np.arange(3)))
    rng = np.random.default_rng(0)
    y = rng.random((200, 4)) < 0.3
    s = y * rng.random((200, 4)) + rng.random((200, 4))
    for j in range(4):
        assert roc_auc(y[:, j], s[:, j]) == pytest.approx(roc_auc_score(y[:, j], s[:, j]))
        assert pr_auc(y[:, j], s[:, j]) == pytest.approx(average_precision_score(y[:, j], s[:, j]))
    out = per_tag_auc(y, s, ["a", "b", "c", "d"])
    assert out["tags_scored"] == 4 and out["mean_roc_auc"] == pytest.approx(
        np.mean([roc_auc_score(y[:, j], s[:, j]) for j in range(4)]))
