from __future__ import annotations

import json
import subprocess
import sys

import pytest

from soundalike.cli import main


def test_help_is_fast_and_imports_no_torch():
    code = "import sys, soundalike.cli as c; c.build_parser(); print('torch' in sys.modules, 'faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_package_imports_without_render_extras():
    code = ("import sys; sys.modules['music21'] = None; sys.modules['tinysoundfont'] = None\n"
            "import soundalike, soundalike.index, soundalike.inference, soundalike.cli\n"
            "from soundalike.data.render import render_demo_corpus\n"
            "try:\n    render_demo_corpus('/nonexistent/x')\nexcept soundalike.SoundalikeError as e:\n    print(type(e).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "RenderError"


@pytest.mark.parametrize("cmd", ["demo-corpus", "index", "similar", "info", "train", "models"])
def test_every_command_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    assert "usage: soundalike" in capsys.readouterr().out


def test_index_similar_info_json(synth_folder, tmp_path, capsys):
    cat = str(tmp_path / "cat")
    assert main(["index", str(synth_folder), "--catalog", cat, "--json", "--threads", "1"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["added"] == 8 and rep["x_realtime"] > 0
    q = str(sorted(synth_folder.glob("*.wav"))[2])
    assert main(["similar", q, "--catalog", cat, "-k", "3", "--json", "--offset", "5", "--duration", "10"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["matches"]) == 3 and res["matches"][0]["path"].endswith("track_002.wav")
    assert res["matches"][0]["score"] >= res["matches"][1]["score"]
    assert main(["similar", "1", "--catalog", cat]) == 0
    text = capsys.readouterr().out
    assert text.count("\n") == 8 and "#" in text  # header + the 7 other tracks
    assert main(["info", "--catalog", cat, "--json", "--tracks"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tracks"] == 8 and len(info["track_list"]) == 8


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["similar", "x.mp3", "--catalog", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no catalog") and "soundalike index" in err
    assert main(["index", str(tmp_path / "missing"), "--catalog", str(tmp_path / "c")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_models_lists_registry(capsys):
    assert main(["models", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "contrastive_cnn" in out["encoders"] and out["default"] in out["pretrained"]
