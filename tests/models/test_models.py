from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from soundalike.errors import ModelError
from soundalike.features import FrontendConfig, log_mel_chunks
from soundalike.models import (
    DEFAULT_MODEL,
    create_encoder,
    list_encoders,
    list_pretrained,
    load_encoder,
)
from soundalike.testing import synth_track


@pytest.mark.parametrize("name", list_encoders())
def test_every_encoder_forward_backward_nan_shape(name):
    torch.manual_seed(0)
    enc = create_encoder(name)
    net = enc.net.train()
    x = -80 * torch.rand(6, 128, 129)
    x[0] = 0.0  # a constant chunk
    x[1] = -80.0  # silence
    z = net(x)
    assert z.shape == (6, enc.embed_dim)
    assert torch.isfinite(z).all()
    if getattr(net, "unit_norm", True):
        np.testing.assert_allclose(z.norm(dim=1).detach().numpy(), 1.0, atol=1e-5)
    else:  # relaxed hash codes: tanh outputs whose signs are the bits
        assert float(z.detach().abs().max()) < 1.0
    (z[:, 0].sum() - z[:, 1].sum()).backward()
    train_only = tuple(f"{m}." for m in getattr(net, "training_only_modules", ()))  # heads used only by the loss
    grads = [p.grad for n, p in net.named_parameters() if p.requires_grad and not n.startswith(train_only)]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    net.eval()
    with torch.no_grad():
        z1, z2 = net(x[:3]), net(x[:3])
    assert torch.equal(z1, z2)  # eval is deterministic


def test_reference_cnn_layout():
    enc = create_encoder("contrastive_cnn")
    convs = [m for m in enc.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128]
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in enc.net.modules()) == 2
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in enc.net.modules()) == 3
    assert enc.embed_dim == 128


def test_save_load_roundtrip_keeps_outputs_and_frontend(tmp_path):
    fe = FrontendConfig(n_mels=64, hop_length=256)
    enc = create_encoder("contrastive_cnn_small", frontend=fe)
    path = enc.save(tmp_path / "m")
    desc = json.loads((tmp_path / "m.json").read_text())
    assert desc["encoder"] == "contrastive_cnn_small" and desc["frontend"]["hop_length"] == 256
    back = load_encoder(path)
    assert back.frontend == fe and back.fingerprint == enc.fingerprint
    x = log_mel_chunks(synth_track(2, duration=5.0), fe)
    np.testing.assert_allclose(back.embed_chunks(x), enc.embed_chunks(x), atol=1e-6)


def test_tampered_weights_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    enc = create_encoder("contrastive_cnn_small")
    enc.save(tmp_path / "m")
    w = load_file(str(tmp_path / "m.safetensors"))
    w["fc.bias"] = w["fc.bias"] + 1.0
    save_file(w, str(tmp_path / "m.safetensors"))
    with pytest.raises(ModelError, match="fingerprint"):
        load_encoder(tmp_path / "m.safetensors")


def test_unknown_models_give_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="shipped"):
        load_encoder("no-such-model")
    with pytest.raises(ModelError, match="create_encoder"):
        load_encoder("contrastive_cnn")
    with pytest.raises(ModelError, match="unknown encoder"):
        create_encoder("resnet9000")
    (tmp_path / "x.json").write_text("{}")
    (tmp_path / "x.safetensors").write_bytes(b"junk")
    with pytest.raises(ModelError, match="not a soundalike model"):
        load_encoder(tmp_path / "x.safetensors")


def test_shipped_default_model_is_trained():
    assert DEFAULT_MODEL in list_pretrained()
    enc = load_encoder()
    assert enc.name == DEFAULT_MODEL
    training = enc.metadata["training"]
    assert training["objective"] == "infonce" and training["steps"] >= 500
    fresh = create_encoder(enc.encoder, frontend=enc.frontend)
    assert enc.fingerprint != fresh.fingerprint
    # trained weights tell tracks apart far better than chance: chunk -> same-track retrieval
    fe = enc.frontend
    tracks = [log_mel_chunks(synth_track(s, duration=15.0), fe) for s in range(10)]
    embs = [enc.embed_chunks(t) for t in tracks]  # 5 chunks each
    queries = np.stack([e[0] for e in embs])
    keys = np.stack([e[1:].mean(axis=0) for e in embs])
    hits = (np.argmax(queries @ keys.T, axis=1) == np.arange(10)).mean()
    assert hits >= 0.8
