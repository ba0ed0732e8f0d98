"""ONNX Runtime runs the CNN passes of models loaded from files, with eager torch's results."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def _chunks(encoder, n=5, seed=0):
    rng = np.random.default_rng(seed)
    fe = encoder.frontend
    return (rng.standard_normal((n, fe.n_mels, fe.chunk_frames)) * 12 - 40).astype(np.float32)


def _torch_result(encoder, fn):
    encoder.runtime = "torch"
    try:
        return fn()
    finally:
        encoder.runtime = "onnx"


@pytest.mark.parametrize("name", ["contrastive_cnn-music", "dilated_cnn-song", "fingerprint_cnn-music"])
def test_loaded_models_run_on_onnx_runtime_with_torch_results(name):
    from soundalike.models.factory import load_encoder

    enc = load_encoder(name)
    assert enc.runtime == "onnx"
    x = _chunks(enc, n=7)
    got = enc.embed_chunks(x, batch_size=4)  # two batches, the second one smaller
    assert enc._graphs and all(g is not None for g in enc._graphs.values())
    want = _torch_result(enc, lambda: enc.embed_chunks(x, batch_size=4))
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert not np.allclose(got[0], got[1])  # different chunks, different embeddings


def test_encoder_and_heads_in_one_graph_match_torch():
    from soundalike.models.factory import load_encoder
    from soundalike.models.heads import load_head

    enc = load_encoder("contrastive_cnn-music")
    heads = [load_head("tags-mtt"), load_head("instruments-gm")]
    x = _chunks(enc, n=6, seed=1)
    emb, scores = enc.embed_with_heads(x, heads)
    emb_t, scores_t = _torch_result(enc, lambda: enc.embed_with_heads(x, heads))
    np.testing.assert_allclose(emb, emb_t, atol=2e-5)
    assert [s.shape for s in scores] == [(6, 50), (6, 16)]
    for a, b in zip(scores, scores_t, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5)
    np.testing.assert_allclose(scores[1].sum(axis=1), 1.0, atol=1e-5)  # the instrument head is a softmax
    one, only = enc.embed_with_heads(x, heads[:1])  # another set of heads is another graph
    np.testing.assert_allclose(only[0], scores[0], atol=2e-5)


def test_exports_are_cached_on_disk_and_a_damaged_one_is_rebuilt(tmp_path, monkeypatch):
    from soundalike.models.factory import load_encoder

    monkeypatch.setenv("SOUNDALIKE_CACHE_DIR", str(tmp_path))
    enc = load_encoder("contrastive_cnn-music")
    x = _chunks(enc)
    first = enc.embed_chunks(x)
    files = list((tmp_path / "onnx").glob("*.onnx"))
    assert len(files) == 1 and files[0].stat().st_size > 100_000
    files[0].write_bytes(b"not a graph")  # damaged: the next process falls back, drops it, and works
    again = load_encoder("contrastive_cnn-music")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        np.testing.assert_allclose(again.embed_chunks(x), first, atol=2e-5)
    third = load_encoder("contrastive_cnn-music")
    np.testing.assert_allclose(third.embed_chunks(x), first, atol=2e-5)
    assert third._graphs and next(iter(third._graphs.values())) is not None
    assert files[0].stat().st_size > 100_000  # rebuilt


def test_torch_runtime_by_environment_and_for_models_in_training(monkeypatch):
    from soundalike.models.factory import create_encoder, load_encoder

    monkeypatch.setenv("SOUNDALIKE_RUNTIME", "torch")
    enc = load_encoder("contrastive_cnn-music")
    enc.embed_chunks(_chunks(enc))
    assert enc._graphs == {}
    monkeypatch.delenv("SOUNDALIKE_RUNTIME")
    fresh = create_encoder("contrastive_cnn")
    fresh.embed_chunks(_chunks(fresh))
    assert fresh.runtime == "torch" and fresh._graphs == {}
    enc.embed_chunks(_chunks(enc))
    assert enc._graphs
    enc.invalidate_fingerprint()  # its weights are about to change: never run from a stale export
    assert enc.runtime == "torch" and enc._graphs == {}


def test_a_graph_first_built_under_inference_mode_takes_any_batch():
    import torch

    from soundalike.models.factory import load_encoder

    enc = load_encoder("fingerprint_cnn-music")
    x = _chunks(enc, n=9, seed=2)
    with torch.inference_mode():  # as ingest and the web app call it
        got = enc.embed_chunks(x, batch_size=5)
    np.testing.assert_allclose(got, _torch_result(enc, lambda: enc.embed_chunks(x)), atol=2e-5)
    np.testing.assert_allclose(enc.embed_chunks(x[:1]), got[:1], atol=2e-5)
