"""What a catalog calls its tracks: the file's own tags, else the manifest's title and artist (or composer),
else the file name; and the cap of a playlist counts tracks by that artist."""

from __future__ import annotations

import json

import soundfile as sf

from soundalike import Catalog
from soundalike.index.rows import Track
from soundalike.testing import synth_track, write_tracks


def _tagged(path, sr=22050, **tags):
    with sf.SoundFile(str(path), "w", sr, 1, format="FLAC") as f:
        for k, v in tags.items():
            setattr(f, k, v)
        f.write(synth_track(99, sr=sr, duration=8.0))
    return path


def test_titles_come_from_tags_then_the_manifest_then_the_file_name(tmp_path):
    music = tmp_path / "music"
    plain, from_manifest, composer_only = write_tracks(music, [1, 2, 3], duration=8.0)
    _tagged(music / "both.flac", title="Tag Title", artist="Tag Artist")
    rows = [{"path": "music/track_002.wav", "title": "Manifest Title", "artist": "Manifest Artist", "album": "Side A"},
            {"path": "music/track_003.wav", "title": "A Chorale", "composer": "J. S. Bach", "genre": "baroque"},
            {"path": "music/both.flac", "title": "Not This", "artist": "Nor This", "label": "L"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with Catalog.create(tmp_path / "cat") as cat:
        cat.add([music], manifest=tmp_path / "m.jsonl")
        by_file = {t.path.rsplit("/", 1)[-1]: t for t in cat.tracks()}
    t = by_file["track_001.wav"]
    assert (t.title, t.artist, t.display_name) == (None, None, "track_001.wav")
    t = by_file["track_002.wav"]
    assert (t.title, t.artist, t.album, t.display_name) == ("Manifest Title", "Manifest Artist", "Side A",
                                                            "Manifest Artist - Manifest Title")
    t = by_file["track_003.wav"]
    assert (t.title, t.artist, t.genre) == ("A Chorale", "J. S. Bach", "baroque")  # a composer stands in
    t = by_file["both.flac"]
    assert (t.title, t.artist, t.labels["label"]) == ("Tag Title", "Tag Artist", "L")  # the file's own tags win
    assert plain.exists() and from_manifest.exists() and composer_only.exists()


def test_a_track_built_by_hand_falls_back_the_same_way():
    t = Track(id=1, path="/x/y.wav", duration=1.0, file_hash="h",
              labels={"title": "  Spaced  ", "artist": "", "composer": "C", "album": {"nested": 1}})
    assert (t.title, t.artist, t.album) == ("Spaced", "C", None)  # blank and nested values are not names
    assert Track(**t.to_dict()) == t  # a round trip keeps it


def test_the_playlist_cap_counts_the_composer_as_the_artist(tmp_path):
    from soundalike.tasks.playlist import playlist

    music = tmp_path / "music"
    paths = write_tracks(music, [11, 12, 13, 14, 15, 16], duration=8.0)
    rows = [{"path": f"music/{p.name}", "composer": "Same" if i < 4 else f"Other {i}"} for i, p in enumerate(paths)]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with Catalog.create(tmp_path / "cat") as cat:
        cat.add([music], manifest=tmp_path / "m.jsonl")
        mix = playlist(cat, 1, n=6, max_per=2, per="artist")
        artists = [t.artist for t in mix.tracks]
    assert artists.count("Same") == 2 and len(artists) == 4  # two of the four, and both others
