"""The beets plugin on a real beets library built from generated files (beets' Library API; no network, no
autotagger): index into a catalog beside beets' database, incremental by path; similar as beets items in
beets' format syntax, the same tracks as ``soundalike similar``; a mix as M3U8; analysis as flexible
attributes."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("beets")

from beets.library import Item, Library  # noqa: E402

from soundalike.testing import write_labelled_tracks  # noqa: E402


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("beets")
    write_labelled_tracks(tmp / "music", classes=3, per_class=4, sr=22050, duration=5.0)
    lib = Library(str(tmp / "library.db"), directory=str(tmp / "music"))
    for path in sorted((tmp / "music").glob("*.wav")):
        item = Item.from_path(str(path))
        item.title = path.stem
        item.artist = path.stem.split("_")[0]
        lib.add(item)
    return lib, tmp


def _plugin():
    from beetsplug.soundalike import SoundalikePlugin

    return SoundalikePlugin()


def _run(plugin, lib, name, argv, capsys):
    cmd = next(c for c in plugin.commands() if c.name == name)
    opts, args = cmd.parser.parse_args(argv)
    cmd.func(lib, opts, args)
    return capsys.readouterr().out


def test_index_similar_and_a_mix_from_beets(library, capsys, tmp_path):
    from soundalike import Catalog
    from soundalike.tasks.similar import similar

    lib, tmp = library
    plugin = _plugin()
    out = _run(plugin, lib, "soundalike-index", ["artist:class0"], capsys)
    assert "4 added" in out and os.path.isdir(tmp / "soundalike.catalog")  # beside beets' database
    out = _run(plugin, lib, "soundalike-index", ["--write"], capsys)
    assert "8 added" in out and "4 unchanged" in out  # incremental, by item path
    out = _run(plugin, lib, "similar", ["title:class1_02", "-n", "3", "-f", "$title|$artist"], capsys)
    lines = out.strip().splitlines()
    assert len(lines) == 3 and all(line.endswith("|class1") for line in lines[:2])  # beets' own format syntax
    with Catalog.open(tmp / "soundalike.catalog") as cat:
        seed = cat.track(str(tmp / "music" / "class1_02.wav")).id
        want = [os.path.basename(m.track.path)[:-4] for m in similar(cat, seed, k=3)]
    assert [line.split("|")[0] for line in lines] == want  # the same tracks as `soundalike similar ID`
    out = _run(plugin, lib, "similar", ["title:class2_00", "-n", "5", "-p", str(tmp_path / "mix.m3u8")], capsys)
    text = (tmp_path / "mix.m3u8").read_text()
    assert "a mix of 5 tracks" in out and text.count("#EXTINF:") == 5 and "class2_00.wav" in text.split("\n")[3]
    item = lib.items("title:class0_01").get()
    assert item.get("sl_tags") and len(item["sl_tags"].split(", ")) == 5  # flexible attribute, top 5 tags


def test_errors_are_beets_user_errors(library, tmp_path, capsys):
    from beets import ui

    lib, tmp = library
    fresh = Library(str(tmp_path / "other.db"), directory=str(tmp_path))
    item = Item.from_path(str(tmp / "music" / "class0_00.wav"))
    item.title = "class0_00"
    fresh.add(item)
    plugin = _plugin()
    with pytest.raises(ui.UserError, match="soundalike-index"):
        _run(plugin, fresh, "similar", ["class0_00"], capsys)
    with pytest.raises(ui.UserError, match="no item matches"):
        _run(plugin, lib, "similar", ["title:nothing-like-this"], capsys)
    assert "no items match" in _run(plugin, lib, "soundalike-index", ["title:nothing-like-this"], capsys)
