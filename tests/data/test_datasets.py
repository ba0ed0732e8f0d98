"""The Debian-music fetcher on a locally built .deb (no network)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from soundalike.audio.io import save
from soundalike.data.debian import TRAIN_PACKAGES, _safe_name, download_package, fetch_debian_music
from soundalike.errors import DatasetError
from soundalike.testing import synth_track

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian/Ubuntu)")
SR = 22050


def _ogg(tmp: Path, seed: int, seconds: float) -> bytes:
    p = tmp / f"src{seed}-{seconds}.ogg"
    save(p, synth_track(seed, duration=seconds) * 0.5, SR)
    return p.read_bytes()


def _build_deb(tmp: Path, name: str, files: dict[str, bytes]) -> Path:
    root = tmp / f"{name}-root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: test\n")
    for rel, data in files.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
    debs = tmp / "out" / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    deb = debs / f"{name}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", "-Zgzip", str(root), str(deb)], check=True, capture_output=True)
    return deb


def test_fetch_extracts_filters_and_deduplicates(tmp_path):
    long_a, long_b, long_c = _ogg(tmp_path, 1, 6.0), _ogg(tmp_path, 2, 6.0), _ogg(tmp_path, 3, 6.0)
    short = _ogg(tmp_path, 4, 1.0)
    pk3 = io.BytesIO()
    with zipfile.ZipFile(pk3, "w") as zf:
        zf.writestr("music/inside.ogg", long_c)
        zf.writestr("textures/wall.png", b"\x89PNG not audio")
    _build_deb(tmp_path, "fakegame-data", {
        "usr/share/games/fakegame/music/theme.ogg": long_a,
        "usr/share/games/fakegame/music/noext_track": long_b,  # Ogg without an extension
        "usr/share/games/fakegame/sfx/beep.ogg": short,  # too short
        "usr/share/games/fakegame/music/copy of theme.ogg": long_a,  # duplicate content, hostile name
        "usr/share/games/fakegame/data.pk3": pk3.getvalue(),
        "usr/share/games/fakegame/readme.txt": b"hello",
        "usr/share/doc/fakegame-data/copyright": b"Music: CC-BY-SA 4.0",
    })
    out = tmp_path / "out"
    report = fetch_debian_music(out, ["fakegame-data"], min_seconds=3.0)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    sources = {r["source"] for r in rows}
    # of two identical files the first in sorted order is kept
    assert sources == {"usr/share/games/fakegame/data.pk3!music/inside.ogg",
                       "usr/share/games/fakegame/music/noext_track",
                       "usr/share/games/fakegame/music/copy of theme.ogg"}
    assert report.tracks == 3 and report.skipped_short == 1 and report.skipped_duplicate == 1
    assert all(r["label"] == "fakegame-data" and 5.5 < r["duration"] < 6.5 for r in rows)
    for r in rows:
        f = out / r["path"]
        assert f.is_file() and f.suffix == ".ogg" and " " not in f.name
    assert (out / "licenses" / "fakegame-data.copyright").read_text().startswith("Music: CC-BY-SA")
    assert len({r["sha256"] for r in rows}) == 3

    # a second run with another package keeps the first one's tracks
    _build_deb(tmp_path, "other-music", {"usr/share/other/song.ogg": _ogg(tmp_path, 7, 5.0),
                                         "usr/share/other/dup.ogg": long_b})
    report2 = fetch_debian_music(out, ["other-music"], min_seconds=3.0)
    rows2 = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert report2.tracks == 1 and report2.skipped_duplicate == 1
    assert sorted({r["label"] for r in rows2}) == ["fakegame-data", "other-music"] and len(rows2) == 4

    # the manifest indexes: labels reach the catalog
    from soundalike.data.files import read_manifest

    labels = {Path(p).name: row["label"] for p, row in read_manifest(out / "manifest.jsonl").items()}
    assert sorted(set(labels.values())) == ["fakegame-data", "other-music"]


def test_bad_package_names_and_missing_apt(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match="not a Debian package"):
        fetch_debian_music(tmp_path, ["../../etc"])
    with pytest.raises(DatasetError, match="no packages"):
        fetch_debian_music(tmp_path, [])

    class Failed:
        returncode = 100
        stderr = "E: Unable to locate package nosuch"

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)
    with pytest.raises(DatasetError, match="Unable to locate"):
        download_package("nosuch-data", tmp_path / "debs", runner=lambda *a, **k: Failed())


def test_names_are_flat_and_safe():
    assert _safe_name("usr/share/games/x/music/a b;rm -rf.ogg") == "x__music__a_b_rm_-rf.ogg"
    assert _safe_name("usr/share/x/data.pk3!music/../../t.ogg").endswith("t.ogg")
    assert "/" not in _safe_name("a/b/c.ogg")
    assert "ufoai-music" in TRAIN_PACKAGES and "0ad-data" in TRAIN_PACKAGES


def test_not_audio_extension_is_skipped(tmp_path):
    _build_deb(tmp_path, "junk-data", {"usr/share/junk/fake.ogg": b"OggS but really not a stream" * 100})
    report = fetch_debian_music(tmp_path / "out", ["junk-data"], min_seconds=1.0)
    assert report.tracks == 0 and report.skipped_undecodable == 1 and report.skipped_packages == ["junk-data"]
    assert not (tmp_path / "out" / "audio" / "junk-data").exists()  # nothing left behind


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="tracker modules render with Debian's ffmpeg (libopenmpt)")
def test_new_packages_tracker_modules_and_packages_without_music(tmp_path):
    """Issue 19's packages: a module (.mod) inside a package (and one inside a .zip) is rendered to Ogg and
    kept with its rendered length; a package holding only short sounds is reported as skipped."""
    from soundalike.data.debian import MORE_PACKAGES, VALID_PACKAGES
    from soundalike.testing import write_mod

    assert len(TRAIN_PACKAGES) == 42 and set(MORE_PACKAGES) <= set(TRAIN_PACKAGES)
    assert set(VALID_PACKAGES) <= set(TRAIN_PACKAGES)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("music/level2.xm.mod", write_mod(23.0, period=320, seed=2))
    _build_deb(tmp_path, "trackergame-data", {
        "usr/share/games/trackergame/music/title.mod": write_mod(38.0, seed=1),
        "usr/share/games/trackergame/music/broken.it": b"IMPM not really a module",
        "usr/share/games/trackergame/levels.zip": zipped.getvalue(),
        "usr/share/doc/trackergame-data/copyright": b"Music: GPL-2+",
    })
    _build_deb(tmp_path, "sfxonly-data", {"usr/share/games/sfx/beep.ogg": _ogg(tmp_path, 5, 1.0)})
    out = tmp_path / "out"
    report = fetch_debian_music(out, ["trackergame-data", "sfxonly-data"], min_seconds=20.0)
    rows = sorted((json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()),
                  key=lambda r: r["source"])
    assert [r["source"] for r in rows] == ["usr/share/games/trackergame/levels.zip!music/level2.xm.mod",
                                           "usr/share/games/trackergame/music/title.mod"]
    assert all(r["rendered"] == "libopenmpt" and r["path"].endswith(".ogg") for r in rows)
    assert 21.0 < rows[0]["duration"] < 25.0 and 36.0 < rows[1]["duration"] < 40.0
    assert report.rendered_modules == 2 and report.skipped_undecodable == 1
    assert report.skipped_packages == ["sfxonly-data"] and not (out / "audio" / "sfxonly-data").exists()
    from soundalike.audio.io import decode

    y = decode(out / rows[1]["path"], sr=SR).samples
    assert float(np.sqrt(np.mean(y**2))) > 0.01  # it plays notes, not silence


def test_render_module_without_ffmpeg_says_what_to_install(tmp_path, monkeypatch):
    from soundalike.data import debian

    monkeypatch.setattr(debian.shutil, "which", lambda name: None)
    with pytest.raises(DatasetError, match="apt-get install ffmpeg"):
        debian.render_module(b"x", tmp_path / "a.ogg")
