"""The hybrid recommender: ALS for co-listening that sound alone misses, audio for tracks nobody played,
a blend tuned on held-out listens, stored and refitted with the listens, metrics, simulation, CLI and API."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from soundalike import Catalog
from soundalike.recommend.hybrid import MODEL_FILE, HybridConfig, fit_hybrid, model_for
from soundalike.recommend.listens import import_listens
from soundalike.recommend.metrics import ranking_metrics, top_k
from soundalike.recommend.rank import recommend, recommend_ranking
from soundalike.recommend.simulate import SimConfig, simulate
from soundalike.testing import write_labelled_tracks

# Two listener communities that each pair two classes which do not sound alike: A plays class0 + class1,
# B plays class2 + class3. Nobody has played class1_05 (a cold track). The probe user played class0 only.
COLD = "class1_05.wav"


def _listens(names: dict[str, int], seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    rows = ["user,track,timestamp,plays"]
    pools = {"a": [f"class{c}_{i:02d}.wav" for c in (0, 1) for i in range(6)],
             "b": [f"class{c}_{i:02d}.wav" for c in (2, 3) for i in range(6)]}
    for community, pool in pools.items():
        pool = [p for p in pool if p != COLD]
        for u in range(25):
            for n, track in enumerate(rng.choice(pool, 7, replace=False)):
                rows.append(f"{community}{u:02d},{names[track]},{1_767_225_600 + int(rng.integers(0, 10**7))},"
                            f"{1 + n % 3}")
    for i in range(4):
        rows.append(f"probe,{names[f'class0_{i:02d}.wav']},{1_767_225_600 + i},3")
    return rows


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rec")
    write_labelled_tracks(tmp / "music", classes=4, per_class=6, sr=22050, duration=4.0)
    with Catalog.create(tmp / "cat", fingerprint_model=None, tag_heads=None) as cat:
        cat.add([tmp / "music"], manifest=tmp / "music" / "manifest.jsonl")
        names = {t.path.rsplit("/", 1)[1]: t.id for t in cat.tracks()}
        (tmp / "listens.csv").write_text("\n".join(_listens(names)) + "\n")
        import_listens(cat, tmp / "listens.csv")
    return tmp, names


@pytest.fixture()
def cat(built, tmp_path):
    tmp, names = built
    shutil.copytree(tmp / "cat", tmp_path / "cat")
    with Catalog.open(tmp_path / "cat") as c:
        yield c, names


def _cls(rec) -> str:
    return rec.track.labels["label"]


def test_als_finds_what_co_listeners_play_and_audio_ranks_the_cold_track(cat):
    c, names = cat
    audio = recommend(c, user="probe", k=8, method="audio")
    assert [_cls(r) for r in audio[:2]] == ["class0", "class0"]  # sound alone: more of the same class
    assert "class3" in {_cls(r) for r in audio[:7]}  # ...and it cannot tell which other class goes with it
    als = recommend_ranking(c, user="probe", k=24, method="als").recommendations
    assert {_cls(r) for r in als[:7]} == {"class0", "class1"}  # co-listening: community A's warm tracks
    assert _cls(als[0]) == "class1"
    assert [r.track.id for r in als].index(names[COLD]) > 6  # ALS alone knows nothing of the cold track
    top = als[0]
    assert top.source == "listeners" and top.reason.startswith("listeners of ") and top.because in {
        names[f"class0_{i:02d}.wav"] for i in range(4)}
    n = int(top.reason.split("(")[-1].split()[0])  # "(N listeners)": users who played both, counted by hand
    played = {}
    for u, t, _, _ in c.listens():
        played.setdefault(u, set()).add(t)
    assert n == sum(1 for s in played.values() if top.track.id in s and top.because in s)

    ranking = recommend_ranking(c, user="probe", k=24)
    assert ranking.method == "hybrid" and ranking.blend["tuned"] and ranking.blend["weight"] > 0
    hybrid = ranking.recommendations
    ids = [r.track.id for r in hybrid]
    heard = {names[f"class0_{i:02d}.wav"] for i in range(4)}
    assert not heard & set(ids) and len(ids) == 20  # everything but the four heard tracks
    community_a = [i for i, r in enumerate(hybrid) if _cls(r) in ("class0", "class1")]
    assert community_a == list(range(8))  # all of community A's unheard tracks first, cold one included
    cold = hybrid[ids.index(names[COLD])]
    assert cold.new and cold.source == "audio" and "new: nobody has played it yet" in cold.reason
    assert [r.score for r in hybrid] == sorted((r.score for r in hybrid), reverse=True)
    # the score is the blend of its parts plus the tuned offset for new tracks
    b = ranking.blend["offset"]
    for r in hybrid:
        assert r.score == pytest.approx(r.parts["listeners"] + r.parts["audio"] + (b if r.new else 0.0), abs=1e-5)


def test_blend_is_tuned_on_held_out_listens(cat):
    c, _ = cat
    m = model_for(c)
    t = m.tuning
    assert t.tuned and t.users >= 10
    grid = np.array(t.grid)
    assert t.ndcg == pytest.approx(grid[:, 2].max(), abs=1e-6)  # the best of the grid, not a constant
    assert (t.weight, t.offset) in {(float(w), float(b)) for w, b, nd in grid if nd >= grid[:, 2].max() - 1e-6}
    assert t.ndcg >= t.audio_ndcg and t.ndcg >= t.als_ndcg
    ids, songs = c.song_matrix()
    sampled = fit_hybrid(c.listens(), ids, songs, HybridConfig(max_tuning_users=12)).tuning
    assert sampled.tuned and sampled.users <= 12 and f"a sample of 12 of {t.users} users" in sampled.note
    # A log where who-plays-what has nothing to do with sound (communities split every class: even or odd
    # track numbers): the tuning must lean on the listening history, and the same data says so.
    rng = np.random.default_rng(1)
    rows = []
    for u in range(60):
        pool = ids[(u % 2)::2]
        for n, tid in enumerate(rng.choice(pool, 8, replace=False)):
            rows.append((f"u{u}", int(tid), float(rng.integers(0, 10**6)), 1 + n % 2))
    social = fit_hybrid(rows, ids, songs).tuning
    assert social.tuned and social.als_ndcg > social.audio_ndcg + 0.1 and social.weight >= 0.5
    assert social.weight > t.weight  # tuned to the data, not a constant


def test_too_few_users_to_tune_ranks_by_audio_and_says_so(tmp_path):
    ids = np.arange(1, 13)
    songs = np.eye(12, 8, dtype=np.float32)
    rows = [("ana", 1, 1.0, 2), ("ana", 2, 2.0, 1), ("ben", 3, 1.0, 1), ("ben", 4, 3.0, 1)]
    m = fit_hybrid(rows, ids, songs)
    assert not m.tuning.tuned and m.weight == 0.0 and "too little history" in m.tuning.note


def test_stored_model_is_reused_refitted_when_listens_change_and_survives_corruption(cat, tmp_path):
    c, names = cat
    first = recommend(c, user="probe", k=10)
    path = c.root / MODEL_FILE
    assert path.exists()
    stamp = path.stat().st_mtime_ns
    with Catalog.open(c.root) as again:  # a fresh process would load the file, not refit
        assert [(r.track.id, r.score) for r in recommend(again, user="probe", k=10)] == \
            [(r.track.id, r.score) for r in first]
    assert path.stat().st_mtime_ns == stamp
    (tmp_path / "more.csv").write_text(f"user,track,timestamp\nprobe,{names['class1_00.wav']},1767300000\n")
    import_listens(c, tmp_path / "more.csv")
    after = [r.track.id for r in recommend(c, user="probe", k=10)]
    assert names["class1_00.wav"] not in after and path.stat().st_mtime_ns != stamp  # refitted, now heard
    path.write_bytes(b"not a model")
    with Catalog.open(c.root) as again:
        assert [r.track.id for r in recommend(again, user="probe", k=10)] == after  # refitted again, same answer


def test_fits_and_rankings_are_deterministic(cat):
    c, _ = cat
    ids, songs = c.song_matrix()
    a, b = (fit_hybrid(c.listens(), ids, songs, HybridConfig(seed=3)) for _ in range(2))
    np.testing.assert_array_equal(a.factors.item, b.factors.item)
    np.testing.assert_array_equal(a.factors.user, b.factors.user)
    assert (a.weight, a.offset) == (b.weight, b.offset)
    r1 = [(r.track.id, r.score, r.reason) for r in recommend(c, user="a03", k=15, max_per=3, per="label")]
    c.derived.pop("recommender", None)
    (c.root / MODEL_FILE).unlink()
    r2 = [(r.track.id, r.score, r.reason) for r in recommend(c, user="a03", k=15, max_per=3, per="label")]
    assert r1 == r2
    labels = [x[0] for x in r1]
    assert len(labels) == len(set(labels))


def test_diversity_cap_and_seed_track(cat):
    c, names = cat
    capped = recommend(c, user="probe", k=10, max_per=2, per="label")
    counts = {}
    for r in capped:
        counts[_cls(r)] = counts.get(_cls(r), 0) + 1
    assert max(counts.values()) <= 2 and len(capped) == 8  # 4 labels x 2
    uncapped = recommend(c, user="probe", k=10)
    assert [_cls(r) for r in uncapped].count("class1") > 2
    seed = names["class0_00.wav"]
    seeded = recommend(c, seed_track=seed, k=5)
    assert seed not in [r.track.id for r in seeded] and all(r.because == seed for r in seeded)
    assert {_cls(r) for r in seeded} <= {"class0", "class1"}  # its own class, or what its listeners play


def test_metrics_on_a_hand_worked_example():
    scores = np.array([[0.9, 0.8, 0.8, 0.1, -np.inf], [0.1, 0.2, 0.3, 0.4, 0.5]])
    np.testing.assert_array_equal(top_k(scores, 2), [[0, 1], [4, 3]])  # a tie goes to the lower column
    cold = np.array([False, False, True, True, True])
    m = ranking_metrics(scores, [np.array([1, 3]), np.array([4])], k=2, cold=cold)
    # user 0: top [0, 1], hit at rank 2 -> recall 1/2, ndcg (1/log2 3) / (1 + 1/log2 3)
    # user 1: top [4, 3], hit at rank 1 -> recall 1, ndcg 1
    assert m["recall"] == pytest.approx(0.75)
    assert m["ndcg"] == pytest.approx((1 / np.log2(3) / (1 + 1 / np.log2(3)) + 1) / 2)
    assert m["recall_warm"] == pytest.approx(1.0) and m["users_warm"] == 1  # user 0's warm target 1: hit
    assert m["recall_cold"] == pytest.approx(0.5) and m["users_cold"] == 2  # user 0 missed 3, user 1 hit 4


def test_simulation_has_cold_tracks_popularity_and_repeats_for_a_seed():
    rng = np.random.default_rng(0)
    ids = np.arange(1, 121)
    groups = [f"g{i % 6}" for i in range(120)]
    feats = rng.standard_normal((120, 16))
    cfg = SimConfig(users=150, seed=4, new_share=0.25)
    a, b = simulate(ids, groups, feats, cfg), simulate(ids, groups, feats, cfg)
    assert a.first == b.first and a.second == b.second
    assert len(a.new_tracks) == 30
    first_tracks = {t for _, t, _, _ in a.first}
    assert not first_tracks & set(a.new_tracks.tolist())  # new tracks: no plays before the second period
    assert set(a.new_tracks.tolist()) & {t for _, t, _, _ in a.second}  # ...but played in it
    assert max(at for *_, at, _ in a.first) < min(at for *_, at, _ in a.second)
    pairs = [(u, t) for u, t, _, _ in a.rows]
    assert len(pairs) == len(set(pairs))  # a user plays a track in one listen
    def top_share(sim) -> float:  # share of all listens that go to the 12 most played tracks
        counts = np.sort(np.bincount([t for _, t, _, _ in sim.rows], minlength=121))
        return float(counts[-12:].sum() / counts.sum())

    flat = simulate(ids, groups, feats, SimConfig(users=150, seed=4, new_share=0.25, popularity=0.0,
                                                  audio_weight=0.0))
    assert top_share(simulate(ids, groups, feats, SimConfig(users=150, seed=4, popularity=2.0))) > \
        top_share(a) > 1.2 * top_share(flat)  # popularity skew
    g = {u: set() for u, *_ in flat.rows}
    for u, t, _, _ in flat.rows:
        g[u].add(groups[t - 1])
    assert np.mean([len(s) for s in g.values()]) < 4.5  # label tastes: most users keep to a few groups


def test_cli_simulate_import_fit_recommend(built, tmp_path, capsys):
    from soundalike.cli import main

    tmp, _ = built
    shutil.copytree(tmp / "cat", tmp_path / "cat")
    root = str(tmp_path / "cat")
    out, held = tmp_path / "sim.csv", tmp_path / "held.csv"
    assert main(["listens", "simulate", str(out), "--held-out", str(held), "--users", "30", "--catalog", root,
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["users"] == 30 and d["files"] == [str(out), str(held)] and "song embeddings" in d["audio_taste_space"]
    assert main(["listens", "import", str(out), "--catalog", root, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["imported"] == len(out.read_text().splitlines()) - 1
    assert main(["listens", "fit", "--catalog", root, "--json"]) == 0
    fit = json.loads(capsys.readouterr().out)
    assert fit["tuned"] and 0 <= fit["weight"] <= 1 and fit["users"] == 51 + 30
    assert main(["recommend", "--user", "probe", "-k", "4", "--method", "als", "--catalog", root, "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["method"] == "als" and len(rec["recommendations"]) == 4
    assert all(r["source"] == "listeners" for r in rec["recommendations"])
    assert main(["recommend", "--user", "probe", "-k", "3", "--catalog", root]) == 0
    assert "hybrid: listening history x" in capsys.readouterr().out
    assert main(["listens", "import", "--catalog", root]) == 2
    assert "needs a FILE.csv" in capsys.readouterr().err


def test_web_api_recommend(built, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from soundalike.serve.app import ServeConfig, create_app

    tmp, names = built
    shutil.copytree(tmp / "cat", tmp_path / "cat")
    with Catalog.open(tmp_path / "cat") as c:
        want = recommend(c, user="probe", k=5, max_per=2, per="label")
    with TestClient(create_app(ServeConfig(catalog=str(tmp_path / "cat")))) as client:
        r = client.get("/api/recommend", params={"user": "probe", "k": 5, "max_per": 2, "per": "label"})
        assert r.status_code == 200, r.text
        d = r.json()
        assert [x["track"]["id"] for x in d["recommendations"]] == [x.track.id for x in want]
        assert [x["reason"] for x in d["recommendations"]] == [x.reason for x in want]
        assert d["blend"]["tuned"] and str(tmp_path) not in r.text  # no file paths
        assert d["recommendations"][0]["track"]["audio_url"].startswith("/api/tracks/")
        seed = client.get("/api/recommend", params={"seed_track": names["class0_00.wav"], "k": 3}).json()
        assert len(seed["recommendations"]) == 3
        nobody = client.get("/api/recommend", params={"user": "nobody"})
        assert nobody.status_code == 422 and "no listens" in nobody.text and str(tmp_path) not in nobody.text
        assert [u["user"] for u in client.get("/api/users").json()["users"]][:3] == ["a00", "a01", "a02"]
        assert client.get("/api/users").json()["users"][-1] == {"user": "probe", "listens": 4, "plays": 12}
        assert client.get("/api/recommend", params={"seed_track": 9999}).status_code == 404
        assert client.get("/api/recommend").status_code == 422
        assert "/api/recommend" in client.get("/openapi.json").json()["paths"]
