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

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


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


def test_lr_schedule():
    cfg = load_config(None, steps=100, warmup_steps=10, lr=1.0, lr_min_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(100, cfg) == pytest.approx(0.1) and lr_at(55, cfg) == pytest.approx(0.55)


def _cfg(data, out, steps):
    return load_config(None, data=[str(data)], out=str(out), encoder="contrastive_cnn_small", steps=steps,
                       batch_size=8, valid_fraction=0.25, valid_every=10, checkpoint_every=10, threads=1,
                       warmup_steps=5, lr=3e-3)


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
