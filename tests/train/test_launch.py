"""`soundalike train` on a 2-core machine: tcmalloc preloaded when installed, --background with a log and a pid,
and the same command resuming from the checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soundalike.train import launch


def test_preload_env_adds_tcmalloc_once(monkeypatch):
    monkeypatch.setattr(launch, "find_tcmalloc", lambda: "/usr/lib/x/libtcmalloc_minimal.so.4")
    env, lib = launch.preload_env({"LD_PRELOAD": "/other.so"})
    assert lib == "/usr/lib/x/libtcmalloc_minimal.so.4"
    assert env["LD_PRELOAD"] == "/usr/lib/x/libtcmalloc_minimal.so.4:/other.so"
    again, _ = launch.preload_env(env)
    assert again["LD_PRELOAD"] == env["LD_PRELOAD"]
    off, lib_off = launch.preload_env({launch.ENV_SWITCH: "0"})
    assert lib_off is None and "LD_PRELOAD" not in off
    monkeypatch.setattr(launch, "find_tcmalloc", lambda: None)
    none, lib_none = launch.preload_env({})
    assert lib_none is None and "LD_PRELOAD" not in none


def test_train_command_line_says_what_it_did_with_tcmalloc(synth_folder, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "soundalike.cli", "train", "--data", str(synth_folder), "--out", str(out),
           "--encoder", "contrastive_cnn_small", "--steps", "2", "--batch-size", "4", "--threads", "1", "--quiet"]
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", launch.ENV_SWITCH)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    if launch.find_tcmalloc():
        assert "tcmalloc: preloaded" in proc.stderr
    else:
        assert "apt-get install libtcmalloc-minimal4" in proc.stderr
    assert (out / "model.safetensors").exists()


@pytest.mark.slow
def test_background_training_logs_and_resumes(synth_folder, tmp_path):
    out = tmp_path / "bg"
    base = ["train", "--data", str(synth_folder), "--out", str(out), "--encoder", "contrastive_cnn_small",
            "--batch-size", "4", "--threads", "1"]
    proc = subprocess.run([sys.executable, "-m", "soundalike.cli", *base, "--steps", "3", "--background", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert Path(info["log"]) == out / "train.log" and int((out / "train.pid").read_text()) == info["pid"]
    deadline = time.time() + 600
    while time.time() < deadline:  # the detached run finishes by itself
        try:
            os.kill(info["pid"], 0)
        except ProcessLookupError:
            break
        if (out / "model.json").exists() and "trained" in (out / "train.log").read_text():
            break
        time.sleep(1)
    time.sleep(1)
    assert (out / "model.json").exists(), (out / "train.log").read_text()[-2000:]
    assert "trained 3 steps" in (out / "train.log").read_text()
    # the same command with more steps resumes from the checkpoint
    again = subprocess.run([sys.executable, "-m", "soundalike.cli", *base, "--steps", "5", "--json", "-q"],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout)["trained_steps"] == 2
