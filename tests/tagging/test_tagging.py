"""The teacher step, run against a stand-in for musicnn (the real one needs its own environment)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from soundalike.errors import DatasetError
from soundalike.tagging.teacher import TeacherConfig, content_key, load_teacher, run_teacher

FAKE_MUSICNN = '''
import numpy as np
CALLS = []
def extractor(path, model="MTT_musicnn", input_length=3, extract_features=True):
    data = open(path, "rb").read()
    if data.startswith(b"BAD"):
        raise ValueError("not audio")
    n = max(1, len(data) // 1000)
    if BROKEN:
        return np.full((n, 3), 0.5, np.float32), ["rock", "piano", "vocals"]
    rng = np.random.default_rng(len(data))
    return rng.random((n, 3)).astype(np.float32), ["rock", "piano", "vocals"]
'''


def _fake(tmp_path, broken=False):
    pkg = tmp_path / "fake" / "musicnn"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "extractor.py").write_text(f"BROKEN = {broken}\n" + FAKE_MUSICNN)
    return {"PYTHONPATH": str(tmp_path / "fake")}


def _files(tmp_path):
    files = []
    for i, size in enumerate((2500, 4100, 7300)):
        f = tmp_path / "audio" / f"t{i}.wav"
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(bytes([i]) * size)
        files.append(f)
    bad = tmp_path / "audio" / "bad.wav"
    bad.write_bytes(b"BAD" * 100)
    return files, bad


def test_teacher_scores_are_saved_with_provenance_and_resume(tmp_path):
    env = _fake(tmp_path)
    files, bad = _files(tmp_path)
    cfg = TeacherConfig(python=sys.executable)
    out = tmp_path / "teacher"
    tags = run_teacher([*files, bad], out, config=cfg, env=env)
    assert tags.tags == ("rock", "piano", "vocals") and tags.chunk_seconds == 2.992  # musicnn's 187 frames
    assert [tags.scores[str(f.resolve())].shape for f in files] == [(2, 3), (4, 3), (7, 3)]
    want = np.random.default_rng(4100).random((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(tags.scores[str(files[1].resolve())], want)
    meta = json.loads((out / "teacher.json").read_text())
    assert meta["teacher"]["model"] == "MTT_musicnn" and meta["numpy"] == np.__version__
    assert len(meta["failed"]) == 1 and "bad.wav" in meta["failed"][0] and "not audio" in meta["failed"][0]
    assert (out / f"{content_key(files[0])}.npy").exists()
    # a second run scores nothing again and keeps every file
    stamp = (out / f"{content_key(files[0])}.npy").stat().st_mtime_ns
    again = run_teacher(files, out, config=cfg, env=env)
    assert (out / f"{content_key(files[0])}.npy").stat().st_mtime_ns == stamp
    assert set(again.scores) == set(tags.scores) == set(load_teacher(out).scores)


def test_teacher_that_gives_every_track_the_same_tags_is_refused(tmp_path):
    files, _ = _files(tmp_path)
    with pytest.raises(DatasetError, match="same tags.*numpy 2"):
        run_teacher(files, tmp_path / "t", config=TeacherConfig(python=sys.executable), env=_fake(tmp_path, True))


def test_teacher_errors_say_what_to_do(tmp_path):
    files, _ = _files(tmp_path)
    with pytest.raises(DatasetError, match="venv-teacher"):
        run_teacher(files, tmp_path / "t", config=TeacherConfig(python=str(tmp_path / "none" / "python")))
    with pytest.raises(DatasetError, match="no readable teacher.json"):
        load_teacher(tmp_path / "empty")
    with pytest.raises(DatasetError, match="failed"):  # no musicnn importable at all
        run_teacher(files, tmp_path / "t2", config=TeacherConfig(python=sys.executable),
                    env={"PYTHONPATH": str(tmp_path / "nothing")})


def test_cli_teacher_tags_json(tmp_path, monkeypatch, capsys):
    from soundalike.cli import main

    monkeypatch.setenv("PYTHONPATH", _fake(tmp_path)["PYTHONPATH"])
    files, _ = _files(tmp_path)
    out = tmp_path / "t"
    assert main(["teacher-tags", str(files[0].parent), "--out", str(out), "--teacher-python", sys.executable,
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["files"] == 3 and d["tags"] == ["rock", "piano", "vocals"] and len(d["failed"]) == 1
    assert main(["teacher-tags", str(files[0].parent), "--out", str(out), "--teacher-python",
                 str(tmp_path / "missing")]) == 2
    assert "venv-teacher" in capsys.readouterr().err
