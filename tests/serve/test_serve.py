"""The web app's JSON API, through FastAPI's test client, on a small generated catalog."""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from soundalike import Catalog  # noqa: E402
from soundalike.testing import noise, write_tracks  # noqa: E402

SR = 22050


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from soundalike.serve.app import ServeConfig, create_app

    tmp = tmp_path_factory.mktemp("serve")
    music = tmp / "music"
    paths = write_tracks(music, [3, 17, 29, 41, 53, 67], duration=14.0)
    with Catalog.create(tmp / "cat") as cat:
        cat.add([music])
        assert cat.has_fingerprints and cat.has_tags
    app = create_app(ServeConfig(catalog=str(tmp / "cat"), max_upload_mb=2.0, workers=2))
    with TestClient(app) as client:
        yield client, app, [str(p) for p in paths], tmp


def _wav(y, sr=SR) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(y, np.float32), sr, format="WAV")
    return buf.getvalue()


def _excerpt(path, start, seconds):
    from soundalike.audio.io import decode

    y = decode(path, sr=SR).samples
    return _wav(y[int(start * SR) : int((start + seconds) * SR)])


def test_health_and_openapi_describe_every_endpoint(served):
    client, *_ = served
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["tracks"] == 6
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/similar", "/api/identify", "/api/segments", "/api/tag", "/api/tracks", "/api/tracks/{track_id}",
              "/api/tracks/{track_id}/audio", "/api/map", "/healthz"):
        assert p in paths, p
    assert "application/octet-stream" in paths["/api/similar"]["post"]["requestBody"]["content"]
    page = client.get("/")
    assert page.status_code == 200 and "soundalike" in page.text and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_similar_finds_the_source_of_an_excerpt_and_says_where(served):
    client, app, paths, tmp = served
    target = client.get("/api/tracks", params={"q": "track_029"}).json()["tracks"][0]
    r = client.post("/api/similar", content=_excerpt(paths[2], 4.0, 6.0), params={"k": 3})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["matches"][0]["id"] == target["id"] and len(d["matches"]) == 3
    assert d["matches"][0]["audio_url"] == f"/api/tracks/{target['id']}/audio"
    ex = d["excerpt_of"]
    assert ex["id"] == target["id"] and abs(ex["offset"] - 4.0) < 0.3
    spec = np.array(d["spectrogram"]["db"])
    assert spec.shape[0] == 64 and 0 < spec.shape[1] <= 400 and spec.max() == pytest.approx(0.0, abs=0.1)
    assert len(d["tags"]) == 10 and all(0 <= v <= 1 for v in d["tags"].values())
    assert str(tmp) not in r.text  # no file path in any answer
    assert list(app.state.engine.uploads.iterdir()) == []  # the upload is gone
    assert d["upload"] == {"title": None, "artist": None, "album": None}  # an untagged upload
    assert oct(app.state.engine.uploads.stat().st_mode & 0o777) == "0o700"


def test_similar_names_a_tagged_upload_by_its_own_tags(served):
    import soundfile as sf

    from soundalike.audio.io import decode

    client, _, paths, _ = served
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", SR, 1, format="FLAC") as f:
        f.title, f.artist, f.album = "Upload Title", "Upload Artist", "Upload Album"
        f.write(decode(paths[1], sr=SR).samples[: 6 * SR])
    r = client.post("/api/similar", content=buf.getvalue(), params={"k": 2})
    assert r.status_code == 200, r.text
    assert r.json()["upload"] == {"title": "Upload Title", "artist": "Upload Artist", "album": "Upload Album"}


def test_identify_and_no_match(served):
    client, _, paths, _ = served
    d = client.post("/api/identify", content=_excerpt(paths[4], 2.0, 5.0)).json()
    assert d["match"]["name"].startswith("track_053") and abs(d["match"]["offset"] - 2.0) < 0.3
    d = client.post("/api/identify", content=_wav(noise(duration=5.0, seed=4, amplitude=0.3))).json()
    assert d["match"] is None


def test_segments_of_an_uploaded_recording(served):
    from soundalike.audio.io import decode
    from soundalike.testing.mixes import make_mix

    client, _, paths, tmp = served
    tracks = [decode(p, sr=SR).samples for p in paths]
    mix, truth = make_mix(tracks, SR, order=[1, 5], seconds=[11.0, 11.0], seed=2, talk=0, snr_db=30.0)
    r = client.post("/api/segments", content=_wav(mix))
    assert r.status_code == 200, r.text
    d = r.json()
    names = [s["name"] for s in d["segments"]]
    assert names == ["track_017.wav", "track_067.wav"], d
    for s, t in zip(d["segments"], truth, strict=True):
        assert abs(s["start"] - t.start) <= 2.0 and abs(s["end"] - t.end) <= 2.0
        assert s["audio_url"].startswith("/api/tracks/") and "path" not in s
    assert d["duration"] == pytest.approx(len(mix) / SR, abs=0.05) and str(tmp) not in r.text


def test_tag_timeline(served):
    client, _, paths, _ = served
    d = client.post("/api/tag", content=_excerpt(paths[0], 0.0, 9.0), params={"timeline": "true"}).json()
    assert len(d["tags"]) == 66 and "path" not in d
    assert len(d["timeline"]) == 1 + (1 + 9 * SR // 512 - 129) // 65
    assert d["timeline"][1]["start"] == pytest.approx(65 * 512 / SR, abs=1e-3)


def test_tracks_search_and_one_track(served):
    client, *_ = served
    all_ = client.get("/api/tracks").json()
    assert all_["total"] == 6 and len(all_["tracks"]) == 6 and all(len(t["tags"]) == 3 for t in all_["tracks"])
    page = client.get("/api/tracks", params={"limit": 2, "offset": 4}).json()
    assert [t["id"] for t in page["tracks"]] == [t["id"] for t in all_["tracks"][4:6]]
    assert client.get("/api/tracks", params={"q": "TRACK_017"}).json()["total"] == 1
    assert client.get("/api/tracks", params={"q": "nothing like this"}).json()["total"] == 0
    one = client.get(f"/api/tracks/{all_['tracks'][0]['id']}").json()
    assert one["id"] == all_["tracks"][0]["id"] and len(one["tags"]) == 10
    r = client.get("/api/tracks/9999")
    assert r.status_code == 404 and "no track" in r.json()["detail"]
    assert client.get("/api/tracks/abc").status_code == 422


def test_audio_is_streamed_by_id_with_ranges(served):
    client, _, paths, _ = served
    tid = client.get("/api/tracks", params={"q": "track_003"}).json()["tracks"][0]["id"]
    data = open(paths[0], "rb").read()
    full = client.get(f"/api/tracks/{tid}/audio")
    assert full.status_code == 200 and full.content == data and full.headers["content-type"] == "audio/wav"
    assert full.headers.get("accept-ranges") == "bytes"
    part = client.get(f"/api/tracks/{tid}/audio", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    assert client.get("/api/tracks/9999/audio").status_code == 404
    assert client.get("/api/tracks/..%2F..%2Fetc%2Fpasswd/audio").status_code in (404, 422)


def test_map_points_are_pca_of_the_song_embeddings(served):
    client, app, _, tmp = served
    d = client.get("/api/map").json()
    assert d["method"] == "pca" and len(d["points"]) == 6
    xy = np.array([[p["x"], p["y"]] for p in d["points"]])
    assert np.abs(xy).max() == pytest.approx(1.0) and xy[:, 0].std() > 0
    with Catalog.open(tmp / "cat") as cat:  # the first axis is the top principal direction
        e = np.stack([cat.embeddings(t.id)[1] for t in cat.tracks()]).astype(np.float64)
    e -= e.mean(0)
    pc1 = np.linalg.svd(e, full_matrices=False)[2][0]
    proj = e @ pc1
    assert abs(np.corrcoef(proj, xy[:, 0])[0, 1]) > 0.999
    assert set(d["labels"]) == {p["label"] for p in d["points"]}


def test_hostile_uploads_get_clear_errors_and_nothing_is_kept(served):
    client, app, _, _ = served
    r = client.post("/api/similar", content=b"this is not audio at all" * 100)
    assert r.status_code == 415 and "decode" in r.json()["detail"]
    r = client.post("/api/similar", content=b"")
    assert r.status_code == 422 and "empty" in r.json()["detail"]
    r = client.post("/api/similar", content=os.urandom(3 * 2**20))  # over the 2 MB cap of this app
    assert r.status_code == 413 and "cap" in r.json()["detail"]
    r = client.post("/api/similar", content=_wav(noise(duration=3.0, seed=1)), params={"where": "piano>0.5"})
    assert r.status_code == 422 and "tag:NAME>VALUE" in r.json()["detail"]
    r = client.post("/api/similar", content=_wav(noise(duration=3.0, seed=1)), params={"k": 0})
    assert r.status_code == 422
    assert list(app.state.engine.uploads.iterdir()) == []


def test_where_filters_the_web_similar_too(served):
    client, *_ = served
    body = _wav(noise(duration=4.0, seed=2, amplitude=0.2))
    everything = client.post("/api/similar", content=body, params={"k": 6, "identify": "false"}).json()["matches"]
    tag = next(iter(everything[0]["tags"]))
    cut = everything[0]["tags"][tag] - 1e-3
    some = client.post("/api/similar", content=body, params={"k": 6, "where": f"tag:{tag}>{cut:.4f}"}).json()
    ids = [m["id"] for m in some["matches"]]
    assert everything[0]["id"] in ids and all(m["tags"].get(tag, 1) >= cut for m in some["matches"])
    assert ids == [m["id"] for m in everything if m["id"] in set(ids)]


def test_twenty_concurrent_uploads_all_succeed(served):
    client, app, paths, _ = served
    bodies = [_excerpt(paths[i % 6], 1.0 + (i % 3), 4.0) for i in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        rs = list(pool.map(lambda b: client.post("/api/similar", content=b, params={"k": 2}), bodies))
    assert [r.status_code for r in rs] == [200] * 20
    assert all(r.json()["matches"] for r in rs)
    assert list(app.state.engine.uploads.iterdir()) == []


def test_serve_cli_binds_to_loopback_and_refuses_a_missing_catalog(tmp_path, capsys):
    from soundalike.cli import build_parser, main

    args = build_parser().parse_args(["serve", "--catalog", str(tmp_path)])
    assert args.host == "127.0.0.1" and args.port == 8000 and args.max_upload_mb == 50.0
    assert main(["serve", "--catalog", str(tmp_path / "none")]) == 2
    assert "no catalog" in capsys.readouterr().err


def test_a_catalog_without_fingerprints_or_tags_says_so_and_slow_work_times_out(tmp_path):
    from soundalike.serve.app import ServeConfig, create_app

    write_tracks(tmp_path / "music", [7, 8], duration=8.0)
    with Catalog.create(tmp_path / "cat", fingerprint_model=None, tag_heads=None) as cat:
        cat.add([tmp_path / "music"])
    body = _wav(noise(duration=3.0, seed=3))
    with TestClient(create_app(ServeConfig(catalog=str(tmp_path / "cat")))) as client:
        r = client.post("/api/identify", content=body)
        assert r.status_code == 409 and "soundalike fingerprints" in r.json()["detail"]
        r = client.post("/api/tag", content=body)
        assert r.status_code == 409 and "--tag-heads" in r.json()["detail"]
        d = client.post("/api/similar", content=body).json()
        assert len(d["matches"]) == 2 and "tags" not in d and "excerpt_of" not in d
    app = create_app(ServeConfig(catalog=str(tmp_path / "cat"), decode_timeout=1e-4))
    with TestClient(app) as client:
        r = client.post("/api/similar", content=body)
        assert r.status_code == 422 and "took over" in r.json()["detail"]
        assert list(app.state.engine.uploads.iterdir()) == []


def test_multipart_form_uploads_work_like_raw_bodies(served):
    client, app, paths, tmp = served
    body = _excerpt(paths[2], 4.0, 6.0)
    raw = client.post("/api/similar", content=body, params={"k": 3}).json()
    form = client.post("/api/similar", files={"file": ("clip.wav", body, "audio/wav")}, data={"note": "x"},
                       params={"k": 3})
    assert form.status_code == 200, form.text
    d = form.json()
    assert [m["id"] for m in d["matches"]] == [m["id"] for m in raw["matches"]]
    assert d["excerpt_of"]["id"] == raw["excerpt_of"]["id"]
    assert client.post("/api/identify", files={"audio": ("c.wav", body)}).json()["match"]["id"] == d["excerpt_of"]["id"]
    empty = client.post("/api/tag", data={"note": "no file"}, files={"other": ("", b"")})
    assert empty.status_code == 422
    big = client.post("/api/tag", files={"file": ("big.wav", b"\0" * (3 * 2**20))})
    assert big.status_code == 413
    ct = client.get("/openapi.json").json()["paths"]["/api/similar"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in ct and "application/octet-stream" in ct
    assert list(app.state.engine.uploads.iterdir()) == []


def test_events_of_an_upload(served):
    from soundalike.testing.synth import click_track

    client, _, _, _ = served
    beats = np.arange(0.5, 13.0, 60.0 / 120.0)
    r = client.post("/api/events", content=_wav(click_track(beats, sr=SR, duration=14.0)))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["tempo"] == pytest.approx(120.0, rel=0.02) and len(d["beats"]) >= len(beats) - 2
    assert set(d["drums"]) == {"kick", "snare", "hihat"} and d["duration"] == pytest.approx(14.0, abs=0.01)
    r = client.post("/api/events?what=beats&offset=4", content=_wav(click_track(beats, sr=SR, duration=14.0)))
    assert r.status_code == 200 and min(r.json()["beats"]) >= 4.0 and r.json()["onsets"] == []
    r = client.post("/api/events?what=chords", content=_wav(click_track(beats, sr=SR, duration=14.0)))
    assert r.status_code == 422 and "what" in r.json()["detail"]


def test_transcribe_an_upload_gives_notes_and_a_midi_file(served, tmp_path):
    import base64

    from soundalike.testing.synth import harmonic_notes
    from soundalike.transcribe.notes import read_midi

    client, _, _, _ = served
    scale = [(0.5 + 0.5 * i, 0.9 + 0.5 * i, p) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])]
    r = client.post("/api/transcribe?program=24", content=_wav(harmonic_notes(scale, sr=SR, duration=5.0)))
    assert r.status_code == 200, r.text
    d = r.json()
    assert [n["pitch"] for n in d["notes"]] == [p for _, _, p in scale] and d["n_notes"] == 8
    assert all(abs(n["onset"] - s[0]) < 0.05 for n, s in zip(d["notes"], scale, strict=True))
    midi = tmp_path / "x.mid"
    midi.write_bytes(base64.b64decode(d["midi_base64"]))
    assert [n.pitch for n in read_midi(midi)] == [p for _, _, p in scale]
    r = client.post("/api/transcribe?offset=2.45", content=_wav(harmonic_notes(scale, sr=SR, duration=5.0)))
    assert [n["pitch"] for n in r.json()["notes"]] == [67, 69, 71, 72]
    assert client.post("/api/transcribe?program=200", content=b"x").status_code == 422
    assert client.post("/api/transcribe", content=b"not audio at all").status_code in (400, 415, 422)


def test_restore_an_upload_gives_the_audio_back_cleaner_at_its_rate(served):
    import soundfile as sf

    from soundalike.restore.noises import add_at_snr, make_noise
    from soundalike.restore.train import si_sdr

    client, app, _, _ = served
    sr = 32000
    t = np.arange(4 * sr) / sr
    clean = (0.2 * np.sin(2 * np.pi * 330 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)
    noisy = add_at_snr(clean, make_noise("white", len(clean), sr, np.random.default_rng(0)), 5.0)
    buf = io.BytesIO()
    sf.write(buf, np.stack([noisy, noisy]).T, sr, format="FLAC")
    r = client.post("/api/restore", content=buf.getvalue())
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/flac" and r.headers["x-restore-format"] == "flac"
    assert float(r.headers["x-restore-duration"]) == pytest.approx(4.0, abs=0.01)
    out, got_sr = sf.read(io.BytesIO(r.content), dtype="float32")
    assert got_sr == sr and out.shape == (len(clean), 2)
    assert si_sdr(out[:, 0], clean) > si_sdr(noisy, clean) + 3.0
    r = client.post("/api/restore?format=wav&denoise=false", content=_wav(np.clip(3 * noisy, -0.5, 0.5), sr))
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert float(r.headers["x-restore-clipped"]) > 0.01
    assert client.post("/api/restore?denoise=false&declip=false", content=_wav(noisy, sr)).status_code == 422
    assert client.post("/api/restore?format=exe", content=_wav(noisy, sr)).status_code == 422
    assert client.post("/api/restore?strength=3", content=_wav(noisy, sr)).status_code == 422
    assert client.post("/api/restore", content=b"not audio at all").status_code in (415, 422)
    assert list(app.state.engine.uploads.iterdir()) == []


def test_a_playlist_around_a_track_plays_each_track_once_with_small_steps(served):
    client, _, paths, _ = served
    ids = [t["id"] for t in client.get("/api/tracks").json()["tracks"]]
    r = client.get(f"/api/playlist?seed_track={ids[2]}&n=5")
    assert r.status_code == 200, r.text
    d = r.json()
    got = [t["track"]["id"] for t in d["tracks"]]
    assert len(got) == 5 and len(set(got)) == 5 and got[0] == ids[2]
    assert d["tracks"][0]["step"] is None and all(t["step"] >= 0 for t in d["tracks"][1:])
    assert d["mean_step"] == pytest.approx(sum(t["step"] for t in d["tracks"][1:]) / 4, abs=1e-3)
    assert all(t["track"]["audio_url"] == f"/api/tracks/{t['track']['id']}/audio" for t in d["tracks"])
    assert client.get("/api/playlist").status_code == 422  # neither a seed nor a user
    assert client.get("/api/playlist?seed_track=999999&n=5").status_code == 404
    assert client.get("/api/playlist?seed_track=1&per=mood").status_code == 422
