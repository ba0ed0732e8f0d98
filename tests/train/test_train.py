from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from soundalike.errors import ConfigError
from soundalike.losses import info_nce
from soundalike.train import load_config, train
from soundalike.train.solver import lr_at

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


def test_info_nce_values():
    z = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    loss, acc = info_nce(z, z.clone(), temperature=0.1)
    assert acc == 1.0
    # hand-computed for B=2 with orthogonal pairs: logits to the positive 10, to the others 0
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss2, _ = info_nce(a, a.clone(), temperature=0.1)
    expected = -np.log(np.exp(10) / (np.exp(10) + 2 * np.exp(0)))
    assert abs(float(loss2) - expected) < 1e-5
    swapped, acc3 = info_nce(a, a.flip(0), temperature=0.1)
    assert acc3 == 0.0 and float(swapped) > float(loss2)


def test_info_nce_group_mask_drops_same_group_negatives():
    # three pairs on three orthogonal axes; pairs 0 and 1 share a group
    a = torch.eye(3)
    full, _ = info_nce(a, a.clone(), temperature=0.1)
    assert abs(float(full) - -np.log(np.exp(10) / (np.exp(10) + 4))) < 1e-5  # 4 negatives at logit 0
    masked, _ = info_nce(a, a.clone(), temperature=0.1, groups=torch.tensor([0, 0, 1]))
    # anchors of pairs 0 and 1 lose 2 negatives each (the other pair's two rows), pair 2 keeps 4
    expected = (4 * -np.log(np.exp(10) / (np.exp(10) + 2)) + 2 * -np.log(np.exp(10) / (np.exp(10) + 4))) / 6
    assert abs(float(masked) - expected) < 1e-5
    # a same-group row that looks like the anchor no longer counts against it
    b = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert float(info_nce(b, b.clone(), temperature=0.1, groups=torch.tensor([3, 3]))[0]) < 1e-3
    with pytest.raises(ValueError):
        info_nce(a, a.clone(), groups=torch.tensor([0, 1]))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_build(path):
    cfg = load_config(path)
    from soundalike.models import create_encoder

    enc = create_encoder(cfg.encoder, **cfg.encoder_config)
    assert enc.embed_dim > 0 and cfg.steps > 0


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"stepz": 3}))
    with pytest.raises(ConfigError, match="stepz"):
        load_config(bad)
    with pytest.raises(ConfigError):
        load_config(None, batch_size=1)


def test_a_config_extends_another_and_overrides_it(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"steps": 300, "lr": 0.002, "encoder": "crnn"}))
    (tmp_path / "long.yaml").write_text(yaml.safe_dump({"extends": "base.yaml", "steps": 9000}))
    cfg = load_config(tmp_path / "long.yaml", lr=0.001)
    assert (cfg.steps, cfg.lr, cfg.encoder) == (9000, 0.001, "crnn")  # own > base; keywords > both
    (tmp_path / "loop.yaml").write_text(yaml.safe_dump({"extends": "loop.yaml"}))
    with pytest.raises(ConfigError, match="extends itself"):
        load_config(tmp_path / "loop.yaml")
    (tmp_path / "gone.yaml").write_text(yaml.safe_dump({"extends": "missing.yaml"}))
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_config(tmp_path / "gone.yaml")
    long_run = load_config(Path(__file__).parents[2] / "configs" / "encoders-100h.yaml")
    assert long_run.objective == "song" and len(long_run.sources) == 4  # the leaderboard's recipe, more music


def test_lr_schedule():
    cfg = load_config(None, steps=100, warmup_steps=10, lr=1.0, lr_min_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(100, cfg) == pytest.approx(0.1) and lr_at(55, cfg) == pytest.approx(0.55)


def _cfg(data, out, steps):
    return load_config(None, data=[str(data)], out=str(out), encoder="contrastive_cnn_small", steps=steps,
                       batch_size=8, valid_fraction=0.25, valid_every=10, checkpoint_every=10, threads=1,
                       warmup_steps=5, lr=3e-3)


@pytest.mark.slow
def test_tiny_training_learns_and_resume_is_exact(synth_folder, tmp_path):
    from soundalike.train.solver import ContrastiveSolver

    # untrained validation accuracy, then 40 steps
    s0 = ContrastiveSolver(_cfg(synth_folder, tmp_path / "probe", 40))
    s0.setup()
    before = s0.valid()["valid_loss"]
    path, report = train(_cfg(synth_folder, tmp_path / "a", 40))
    first, last = report["history"][0], report["history"][-1]
    assert last["loss"] < first["loss"]
    assert last["valid_loss"] < before  # held-out tracks: the untrained encoder does worse
    assert Path(path).exists() and Path(path).with_suffix(".json").exists()
    # a run "killed" after its checkpoint at step 20, then resumed to 40: the same weights as one straight run
    s1 = ContrastiveSolver(_cfg(synth_folder, tmp_path / "b", 40))
    s1.setup()
    for _ in range(20):
        s1.train_step()
    s1.save_checkpoint()
    path_b, report_b = train(_cfg(synth_folder, tmp_path / "b", 40))
    assert report_b["trained_steps"] == 20
    from safetensors.torch import load_file

    wa, wb = load_file(str(path)), load_file(str(path_b))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=1e-6)


@pytest.mark.slow
def test_autoencoder_objective_trains_resumes_and_exports(synth_folder, tmp_path):
    from soundalike.models import load_encoder
    from soundalike.train.solver import ContrastiveSolver

    def cfg(steps):
        return load_config(None, data=[str(synth_folder)], out=str(tmp_path / "ae"), encoder="contrastive_cnn_small",
                           objective="autoencoder", steps=steps, batch_size=8, valid_fraction=0.25, valid_every=5,
                           checkpoint_every=5, threads=1, warmup_steps=2, lr=3e-3, augment={"views": 0})

    s = ContrastiveSolver(cfg(10))
    s.setup()
    assert s.decoder is not None
    first = s.train_step()
    for _ in range(9):
        last = s.train_step()
    assert last["loss"] < first["loss"]  # reconstruction improves
    s.save_checkpoint()
    path, report = train(cfg(12))  # resumes at 10, decoder state included
    assert report["trained_steps"] == 2
    enc = load_encoder(path)
    assert enc.metadata["training"]["objective"] == "autoencoder" and enc.embed_dim == 64


@pytest.mark.slow
def test_sources_weights_and_valid_groups(synth_folder, tmp_path):
    import json as _json

    from soundalike.train.solver import ContrastiveSolver

    files = sorted(Path(synth_folder).glob("*.wav"))
    man = tmp_path / "m.jsonl"
    man.write_text("".join(_json.dumps({"path": str(f), "label": "pkg-a" if i < 4 else "pkg-b"}) + "\n"
                           for i, f in enumerate(files)))
    src = [{"data": [str(f) for f in files[:6]], "manifest": str(man), "weight": 0.9, "group_key": "label"},
           {"data": [str(f) for f in files[6:]], "weight": 0.1}]
    cfg = load_config(None, sources=src, valid_groups=["pkg-b"], out=str(tmp_path / "r"), encoder="contrastive_cnn_small",
                      steps=2, batch_size=4, threads=1, augment={"views": 1, "view_seconds": 8})
    s = ContrastiveSolver(cfg)
    s.setup()
    assert {t.group for t in s.valid_tracks} == {"pkg-b"} and len(s.valid_tracks) == 2
    assert all(t.group != "pkg-b" for t in s.train_tracks) and len(s.train_tracks) == 6
    assert all(len(t.views) == 1 for t in s.train_tracks)
    # source 0 holds 4 training tracks with weight 0.9, source 1 two with 0.1
    p = s.train_sampler.p
    src0 = np.array([t.source == 0 for t in s.train_tracks])
    assert p[src0].sum() == pytest.approx(0.9) and p[~src0].sum() == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="valid_groups"):
        bad = load_config(None, sources=src, valid_groups=["nope"], out=str(tmp_path / "r2"),
                          encoder="contrastive_cnn_small", steps=1, batch_size=4)
        ContrastiveSolver(bad).setup()
    with pytest.raises(ConfigError, match="either"):
        load_config(None, data=[str(synth_folder)], sources=src)


def test_near_positives_are_the_same_moment(synth_folder, tmp_path):
    """With near_p=1 and no jitter, the two chunks of a pair start at the same original time,
    whatever tempo change each view carries."""
    from soundalike.augment import AugmentConfig
    from soundalike.features.mel import FrontendConfig
    from soundalike.train.data import DataSource, PairSampler, load_sources

    aug = AugmentConfig(views=2, view_seconds=10, stretch_p=1.0, pitch_p=0, codec_p=0, reverb_p=0, eq_p=0,
                        view_noise_p=0, near_p=1.0, jitter_frames=0)
    fe = FrontendConfig()
    tracks = load_sources([DataSource([str(synth_folder)])], fe, aug, seed=0, max_seconds=30, cache_dir=str(tmp_path))
    again = load_sources([DataSource([str(synth_folder)])], fe, aug, seed=0, max_seconds=30, cache_dir=str(tmp_path))
    assert np.array_equal(tracks[0].views[1].db, again[0].views[1].db)  # served from the cache, identical
    sampler = PairSampler(tracks, fe, aug)
    rng = np.random.default_rng(0)
    for t in tracks:
        va, fa, vb, fb = sampler._pick(rng, t)
        assert va is not vb
        assert va.start + fa * va.rate == pytest.approx(vb.start + fb * vb.rate, abs=1.0)
    rates = {round(v.rate, 4) for t in tracks for v in t.views}
    assert len(rates) > 2 and all(0.92 <= r <= 1.08 for r in rates)


@pytest.mark.slow
def test_init_from_a_saved_model(synth_folder, tmp_path):
    from soundalike.train.solver import ContrastiveSolver

    path, _ = train(_cfg(synth_folder, tmp_path / "a", 3))
    cfg = load_config(None, data=[str(synth_folder)], out=str(tmp_path / "b"), encoder="contrastive_cnn_small",
                      init_from=str(path), steps=1, batch_size=4, threads=1)
    s = ContrastiveSolver(cfg)
    s.setup()
    from safetensors.torch import load_file

    saved = load_file(str(path))
    for k, v in s.net.state_dict().items():
        if k in saved:
            torch.testing.assert_close(v.contiguous(), saved[k])
    with pytest.raises(ConfigError, match="contrastive_cnn_small model"):
        ContrastiveSolver(load_config(None, data=[str(synth_folder)], out=str(tmp_path / "c"),
                                      encoder="contrastive_cnn", init_from=str(path), steps=1)).setup()


def test_group_positives_come_from_another_track_of_the_group():
    from soundalike.augment import AugmentConfig
    from soundalike.features.mel import FrontendConfig
    from soundalike.train.data import PairSampler, TrackMels, View

    fe = FrontendConfig()

    def track(name, group):
        v = View(np.zeros((fe.n_mels, 400), np.float16), np.ones(400, np.float32))
        return TrackMels(name, group, 0, v)

    tracks = [track("a1", "A"), track("a2", "A"), track("a3", "A"), track("b1", "B"), track("b2", "B"), track("c", "C")]
    owner = {id(t.clean): t for t in tracks}

    class Spy(PairSampler):
        def _input(self, v, f, rng):
            seen.append(owner[id(v)])
            return np.zeros((fe.n_mels, fe.chunk_frames), np.float32)

    for p, expect_other in ((1.0, True), (0.0, False)):
        seen: list = []
        s = Spy(tracks, fe, AugmentConfig(views=0), group_positive_p=p)
        rng = np.random.default_rng(0)
        for _ in range(20):
            s.batch(rng, 6)
        for a, b in zip(seen[::2], seen[1::2], strict=True):
            if expect_other and a.group != "C":  # C has no sibling: its positive stays within the track
                assert a is not b and a.group == b.group
            else:
                assert a is b
    with pytest.raises(ConfigError, match="group_positive_p"):
        load_config(None, group_positive_p=1.5)


def test_batches_larger_than_the_track_count_repeat_tracks_at_other_moments():
    from soundalike.augment import AugmentConfig
    from soundalike.features.mel import FrontendConfig
    from soundalike.train.data import PairSampler, TrackMels, View

    fe = FrontendConfig()
    tracks = [TrackMels(f"t{i}", f"g{i % 2}", 0, View(np.zeros((fe.n_mels, 2000), np.float16), np.ones(2000, np.float32)))
              for i in range(3)]
    owner = {id(t.clean): t for t in tracks}
    picks: list = []

    class Spy(PairSampler):
        def _input(self, v, f, rng):
            picks.append((owner[id(v)].path, f))
            return np.zeros((fe.n_mels, fe.chunk_frames), np.float32)

    assert Spy(tracks, fe, AugmentConfig(views=0)).batch(np.random.default_rng(0), 8)[0].shape[0] == 3  # capped
    picks.clear()
    s = Spy(tracks, fe, AugmentConfig(views=0, near_p=1.0, jitter_frames=0), repeat_tracks=True)
    xa, xb, groups = s.batch(np.random.default_rng(0), 8)
    assert xa.shape[0] == xb.shape[0] == 8 and groups.tolist() == [int(p[0][1:]) % 2 for p in picks[::2]]
    anchors = picks[::2]
    by_track: dict = {}
    for path, f in anchors:
        by_track.setdefault(path, set()).add(f)
    assert max(len(v) for v in by_track.values()) >= 2  # one track gives two different moments
    assert len(by_track) == 3


def test_view_cache_key_ignores_per_sample_settings(tmp_path):
    from soundalike.augment import AugmentConfig
    from soundalike.features.mel import FrontendConfig
    from soundalike.train.data import _cache_key

    f = tmp_path / "a.wav"
    f.write_bytes(b"x" * 10)
    fe = FrontendConfig()
    base = _cache_key(f, fe, AugmentConfig(), 0, 600.0)
    assert _cache_key(f, fe, AugmentConfig(noise_p=0.1, near_p=1.0, time_mask_p=0.0), 0, 600.0) == base
    assert _cache_key(f, fe, AugmentConfig(pitch_p=0.1), 0, 600.0) != base  # views change
    assert _cache_key(f, fe, AugmentConfig(noise_snr_db=(5.0, 10.0)), 0, 600.0) != base  # view noise uses it too
    assert _cache_key(f, fe, AugmentConfig(), 1, 600.0) != base


def test_sup_con_values():
    from soundalike.losses import sup_con

    # two groups on two orthogonal axes, two rows each: every positive at logit 10, the other group's at 0
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    expected = -np.log(np.exp(10) / (np.exp(10) + 2))
    assert abs(float(sup_con(z, labels, temperature=0.1)) - expected) < 1e-5
    # labels that disagree with the geometry cost more
    assert float(sup_con(z, torch.tensor([0, 1, 0, 1]), temperature=0.1)) > 5
    # rows without a positive are left out; none at all gives 0
    assert float(sup_con(z, torch.tensor([0, 1, 2, 3]))) == 0.0
    with pytest.raises(ValueError):
        sup_con(z, torch.tensor([0, 1]))


def test_song_bags_draw_several_tracks_per_group():
    from soundalike.augment import AugmentConfig
    from soundalike.features.mel import FrontendConfig
    from soundalike.train.data import PairSampler, TrackMels, View

    fe = FrontendConfig()

    def track(name, group, band):  # a track is recognised by its one loud mel band
        db = np.full((fe.n_mels, 400), -70.0, np.float16)
        db[band] = -10.0
        return TrackMels(name, group, 0, View(db, np.ones(400, np.float32)))

    tracks = [track(f"{g}{i}", g, 3 * k + i) for k, g in enumerate("ABCD") for i in range(3)]
    s = PairSampler(tracks, fe, AugmentConfig(views=0, noise_p=0.0, time_mask_p=0.0, freq_mask_p=0.0), noise_db=0.0)
    xa, xb, groups = s.bags(np.random.default_rng(0), 6, per_group=2, bag=3)
    assert xa.shape == (6, 3, fe.n_mels, fe.chunk_frames) and xb.shape == xa.shape
    counts = np.bincount(groups)
    assert set(counts[counts > 0].tolist()) == {2} and int((counts > 0).sum()) == 3  # 3 groups x 2 tracks
    # every chunk of both bags of a row comes from that row's track (constant mels identify it)
    bands = [{int(x.mean(axis=1).argmax()) for x in (*xa[r], *xb[r])} for r in range(6)]
    assert all(len(b) == 1 for b in bands)
    assert len({b.pop() for b in bands}) == 6  # six different tracks
    for r in range(6):  # each row's group is its track's group
        assert groups[r] == int(xa[r, 0].mean(axis=1).argmax()) // 3


@pytest.mark.slow
def test_song_objective_trains_resumes_and_records_its_recipe(synth_folder, tmp_path):
    from soundalike.models import load_encoder

    def cfg(steps):
        return load_config(None, data=[str(synth_folder)], out=str(tmp_path / "song"), encoder="contrastive_cnn_small",
                           encoder_config={"song_pool": "attention"}, objective="song", steps=steps, batch_size=4,
                           tracks_per_group=2, bag_chunks=2, valid_fraction=0.25, valid_every=5, checkpoint_every=5,
                           threads=1, warmup_steps=2, lr=3e-3, augment={"views": 0})

    path, report = train(cfg(10))  # (that it learns: tests/models/test_families.py, per family)
    assert all(np.isfinite(h["loss"]) and np.isfinite(h["valid_loss"]) for h in report["history"])
    path2, report2 = train(cfg(12))
    assert report2["trained_steps"] == 2
    enc = load_encoder(path2)
    t = enc.metadata["training"]
    assert t["objective"] == "song" and t["bag_chunks"] == 2 and t["loss_weights"]["group"] == 1.0
    assert enc.net.song_head is not None


def test_device_choice():
    from soundalike.train.solver import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="not a torch device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            resolve_device("cuda")
