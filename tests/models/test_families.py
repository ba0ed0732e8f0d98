"""The encoder families of the leaderboard (issue 19): song pooling, save/load, and a tiny train-then-evaluate
that beats the untrained network of the same family."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soundalike.errors import ParameterError
from soundalike.models import create_encoder, load_encoder

FAMILIES = ("contrastive_cnn", "resnet_cnn", "dilated_cnn", "crnn", "fcn5")


def test_song_pool_starts_as_the_mean_and_learns_weights():
    enc = create_encoder("resnet_cnn")
    assert enc.net.song_head is not None
    chunks = torch.nn.functional.normalize(torch.randn(2, 5, 128), dim=-1)
    mean = torch.nn.functional.normalize(chunks.mean(dim=1), dim=-1)
    torch.testing.assert_close(enc.net.song(chunks), mean)  # untrained: zero scores, identity map
    # masked chunks count for nothing
    mask = torch.tensor([[True, True, False, False, False], [True] * 5])
    torch.testing.assert_close(enc.net.song(chunks, mask)[0],
                               torch.nn.functional.normalize(chunks[0, :2].mean(dim=0), dim=-1))
    # a score that prefers one direction moves the song towards the chunk along it
    with torch.no_grad():
        enc.net.song_head.score[2].weight.fill_(0.0)
        enc.net.song_head.score[0].weight.zero_()
        enc.net.song_head.score[0].weight[0, 0] = 10.0
        enc.net.song_head.score[2].weight[0, 0] = 10.0
    c = torch.zeros(4, 128)
    c[:, 1] = 1.0
    c[2] = 0.0
    c[2, 0] = 1.0  # the one chunk along axis 0
    with torch.no_grad():
        s = enc.net.song(c)
    assert float(s[0]) > 0.99
    # gradients reach the pool through a song-level loss
    enc.net.song(chunks).sum().backward()
    assert enc.net.song_head.score[2].weight.grad is not None


def test_mean_pool_and_numpy_song_embedding():
    enc = create_encoder("contrastive_cnn")
    assert enc.net.song_head is None
    e = np.random.default_rng(0).normal(size=(7, 128)).astype(np.float32)
    want = e.mean(axis=0) / np.linalg.norm(e.mean(axis=0))
    np.testing.assert_allclose(enc.song_embedding(e), want, atol=1e-6)
    att = create_encoder("contrastive_cnn", song_pool="attention")
    np.testing.assert_allclose(att.song_embedding(e), want, atol=1e-5)  # untrained attention = mean
    with pytest.raises(ParameterError):
        create_encoder("fcn5", song_pool="max")


def test_legacy_models_keep_their_fingerprint(tmp_path):
    """song_pool joined the reference config later: the shipped mean-pool models still load (their JSON
    fingerprint was computed without it), so catalogs made with them keep matching."""
    old = load_encoder("contrastive_cnn-music")
    assert old.config["song_pool"] == "mean"
    att = create_encoder("contrastive_cnn", song_pool="attention")
    att.net.load_state_dict({**old.net.state_dict(), **{k: v for k, v in att.net.state_dict().items()
                                                        if k.startswith("song_head.")}})
    assert att.fingerprint != old.fingerprint


@pytest.mark.parametrize("name", FAMILIES)
def test_family_save_load_roundtrip_with_song_pool(name, tmp_path):
    torch.manual_seed(1)
    enc = create_encoder(name, song_pool="attention")
    with torch.no_grad():
        for p in enc.net.song_head.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = enc.save(tmp_path / name)
    back = load_encoder(path)
    x = -80 * torch.rand(3, 128, 129)
    np.testing.assert_allclose(back.embed_chunks(x), enc.embed_chunks(x), atol=1e-5)
    e = enc.embed_chunks(x)
    np.testing.assert_allclose(back.song_embedding(e), enc.song_embedding(e), atol=1e-6)
    assert back.fingerprint == enc.fingerprint


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_trains_and_beats_its_untrained_self(name, synth_folder, tmp_path):
    """40 steps of the song objective on generated tracks: held-out song-level loss drops below the
    untrained network's."""
    from soundalike.train import load_config
    from soundalike.train.solver import ContrastiveSolver

    small = {"contrastive_cnn": {"channels": [8, 16, 32]}, "resnet_cnn": {"stem": 8, "channels": [8, 16, 32, 32]},
             "dilated_cnn": {"front": [8, 16, 32]}, "crnn": {"channels": [8, 16, 32], "hidden": 16},
             "fcn5": {"channels": [8, 16, 16, 32, 32]}}[name]
    cfg = load_config(None, data=[str(synth_folder)], out=str(tmp_path / name), encoder=name,
                      encoder_config={**small, "embed_dim": 32, "song_pool": "attention"}, objective="song",
                      steps=40, batch_size=6, tracks_per_group=1, bag_chunks=2, valid_fraction=0.25,
                      valid_every=100, checkpoint_every=100, valid_batches=4, threads=1, warmup_steps=5,
                      lr=2e-3, augment={"views": 0})
    s = ContrastiveSolver(cfg)
    s.setup()
    before = s.valid()["valid_loss"]
    for _ in range(40):
        s.train_step()
    after = s.valid()["valid_loss"]
    assert np.isfinite(after) and after < before


def test_shipped_song_model_loads_and_pools_with_attention(tmp_path):
    """The leaderboard's winner ships beside the default: loadable by name, its learnt song pool used by
    every song embedding, and an excerpt's song embedding is closest to its own track's."""
    from soundalike.inference import Embedder
    from soundalike.models import list_pretrained
    from soundalike.testing import synth_track

    assert "dilated_cnn-song" in list_pretrained()
    enc = load_encoder("dilated_cnn-song")
    assert enc.encoder == "dilated_cnn" and enc.net.song_head is not None
    t = enc.metadata["training"]
    assert t["objective"] == "song" and t["steps"] >= 1000
    emb = Embedder(enc)
    tracks = [emb.embed_waveform(synth_track(s, duration=30.0)) for s in (1, 2, 3)]
    for tr in tracks:  # the catalog's song vector is the model's pooling, not the plain mean
        np.testing.assert_allclose(tr.song, enc.song_embedding(tr.chunks), atol=1e-6)
    mean = tracks[0].chunks.mean(axis=0)
    assert float(np.dot(tracks[0].song, mean / np.linalg.norm(mean))) < 0.9999
    q = emb.embed_waveform(synth_track(2, duration=30.0)[22050 * 10 : 22050 * 16]).song
    assert int(np.argmax([float(q @ tr.song) for tr in tracks])) == 1
