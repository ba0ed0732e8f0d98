"""Hostile input: nothing a file, a catalog or a request contains may crash, hang, leak or fool soundalike.

Built on the generated corpus of ``soundalike.testing.hostile`` (``tests/hostile/make_corpus.py`` writes the
same files for a person to try).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from soundalike import Catalog
from soundalike.audio.io import decode, save
from soundalike.errors import (
    AudioDecodeError,
    AudioTooShortError,
    CatalogCorruptError,
    NotAFileError,
    ParameterError,
    SilentAudioError,
    TimeLimitError,
    TrackNotFoundError,
)
from soundalike.limits import deadline
from soundalike.tasks import identify, similar
from soundalike.testing import synth_track, write_tracks
from soundalike.testing.hostile import multichannel, write_corpus

SR = 22050
BIG_ID = 2**63


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    return folder, {c.name: c for c in write_corpus(folder)}


# ----------------------------------------------------------------------------- decoding


def test_every_case_decodes_or_gets_a_typed_error(corpus):
    folder, cases = corpus
    for name, case in cases.items():
        if case.expect == "ignore":
            continue
        if case.expect in ("index", "duplicate"):
            audio = decode(folder / name, sr=SR, require_sound=True)
            assert audio.samples.ndim == 1 and np.isfinite(audio.samples).all(), name
        elif case.expect == "skip":
            with pytest.raises(NotAFileError, match="named pipe"):
                decode(folder / name, sr=SR)
        else:
            with pytest.raises(AudioDecodeError):
                decode(folder / name, sr=SR, require_sound=True)


@pytest.mark.parametrize("name,seed", [("eight-channels.wav", 102), ("eight-channels.flac", 103),
                                       ("six-channels.wav", 104)])
def test_multichannel_is_averaged_not_crashed(corpus, name, seed):
    folder, _ = corpus
    y = decode(folder / name, sr=SR).samples
    channels = 8 if "eight" in name else 6
    want = multichannel(synth_track(seed, sr=SR, duration=12.0), channels).mean(axis=1)  # (L + R + ...) / C
    assert len(y) == len(want)
    np.testing.assert_allclose(y, want, atol=3e-4)  # 16/24-bit PCM


def test_bad_samples_and_garbage_get_errors_that_say_what_is_wrong(corpus):
    folder, _ = corpus
    with pytest.raises(AudioDecodeError, match="500 samples are NaN or infinite"):
        decode(folder / "nan-samples.wav", sr=SR)
    with pytest.raises(AudioDecodeError, match="NaN or infinite"):
        decode(folder / "inf-samples.wav", sr=SR)
    with pytest.raises(SilentAudioError, match="silent"):
        decode(folder / "silence.wav", sr=SR, require_sound=True)
    with pytest.raises(AudioTooShortError, match="only 1 sample of audio"):
        decode(folder / "one-sample.wav", sr=SR, require_sound=True)
    with pytest.raises(AudioTooShortError, match=r"only 0\.20 s"):
        decode(folder / "fifth-second.wav", sr=SR, require_sound=True)
    with pytest.raises(AudioDecodeError) as exc:
        decode(folder / "text.mp3", sr=SR)
    assert "it is a text file" in str(exc.value) and "pipe" not in str(exc.value)
    with pytest.raises(AudioDecodeError, match="symbolic link to a file that does not exist"):
        decode(folder / "dangling.wav", sr=SR)
    with pytest.raises(NotAFileError, match="character device"):
        decode("/dev/zero", sr=SR)
    with pytest.raises(ParameterError, match="past the end of any audio"):
        decode(folder / "good.wav", sr=SR, offset=1e308)
    with pytest.raises(AudioDecodeError, match="past the end of the audio"):
        decode(folder / "good.wav", sr=SR, offset=500.0)


def test_a_deadline_stops_decoding_and_the_encoder(corpus):
    from soundalike.inference.embed import Embedder
    from soundalike.models.factory import load_encoder

    folder, _ = corpus
    with deadline(0.0), pytest.raises(TimeLimitError, match="time limit"):
        decode(folder / "good.wav", sr=SR)
    emb = Embedder(load_encoder())
    chunks = emb.chunks(synth_track(5, duration=20.0))
    with deadline(0.0), pytest.raises(TimeLimitError):
        emb.encoder.embed_chunks(chunks)
    with deadline(60.0):  # a generous one changes nothing
        np.testing.assert_allclose(emb.encoder.embed_chunks(chunks), emb.encoder.embed_chunks(chunks))


def test_long_files_are_read_window_by_window_on_the_same_grid(tmp_path, monkeypatch):
    """A file longer than a window is embedded and tagged in windows; the chunks equal a whole decode's."""
    from soundalike.audio import io as audio_io
    from soundalike.inference.embed import Embedder
    from soundalike.models.factory import load_encoder
    from soundalike.tagging.tagger import load_tagger

    y = np.concatenate([synth_track(s, duration=20.0) for s in (1, 2, 3)])  # 60 s
    path = save(tmp_path / "long.wav", y, SR)
    enc = load_encoder()
    emb = Embedder(enc)
    whole = emb.embed_waveform(decode(path, sr=SR).samples)
    tagger = load_tagger(model=enc)
    whole_tags = tagger.tag_waveform(decode(path, sr=SR).samples)
    real = audio_io.decode_windows
    windows = []

    def small(*args, **kw):
        for w in real(*args, **{**kw, "window_seconds": 15.0}):
            windows.append(w[0])
            yield w

    monkeypatch.setattr(audio_io, "decode_windows", small)  # what features.mel.chunk_windows reads
    part = emb.embed_file(path)
    assert len(windows) >= 4 and part.chunks.shape == whole.chunks.shape
    # each window decodes one chunk hop of lead-in, so no frame sees padding a whole decode would not
    assert float(np.min(np.sum(part.chunks * whole.chunks, axis=1))) > 0.9999
    assert float(part.song @ whole.song) > 0.999
    assert part.duration == pytest.approx(60.0, abs=0.01)
    tags = tagger.tag_file(path)
    np.testing.assert_allclose(tags.times, whole_tags.times)
    assert np.abs(tags.timeline - whole_tags.timeline).max() < 1e-3


# ----------------------------------------------------------------------------- the CLI


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "soundalike", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def indexed(corpus, tmp_path_factory):
    folder, cases = corpus
    cat = tmp_path_factory.mktemp("hostile-cat") / "cat"
    # in a subprocess with a time limit: a FIFO once hung this forever, 8 channels crashed it
    r = _cli("index", folder, "--catalog", cat, "--json", "--no-fingerprints")
    return folder, cases, cat, r


@pytest.mark.slow
def test_index_of_the_hostile_folder_keeps_the_good_and_lists_the_bad(indexed):
    folder, cases, cat, r = indexed
    assert r.returncode == 1, r.stderr  # some files failed: exit 1 after indexing the rest
    rep = json.loads(r.stdout)
    good = {n for n, c in cases.items() if c.expect == "index"}
    failed = {Path(f["path"]).name for f in rep["failed"]}
    assert failed == {n for n, c in cases.items() if c.expect == "fail"}
    assert [Path(s["path"]).name for s in rep["skipped"]] == ["pipe.wav"]
    # good.wav, its byte copy and a symlink to it: embedded once, two duplicates
    assert rep["added"] == len(good) and rep["duplicates"] == 2 and rep["tracks"] == len(good) + 2
    assert "Illegal Audio-MPEG-Header" not in r.stderr and "resync" not in r.stderr  # no decoder noise
    with Catalog.open(cat) as c:
        by_name = {Path(t.path).name: t for t in c.tracks()}
        first = [by_name[n] for n in ("good.wav", "copy-of-good.wav", "link-to-good.wav")]
        songs = [c.embeddings(t.id)[1] for t in first]
        assert all(np.array_equal(songs[0], s) for s in songs[1:])
        stored_failures = {Path(p).name for p, _ in c.failures()}
        assert "dangling.wav" in stored_failures and failed <= stored_failures
        assert c.tag_names  # tags exist, and not for silence: it was refused
        assert "silence.wav" not in by_name and "one-sample.wav" not in by_name
    again = _cli("index", folder, "--catalog", cat, "--json", "--allow-failures")
    assert again.returncode == 0 and json.loads(again.stdout)["added"] == 0


@pytest.mark.slow
def test_info_shows_a_newline_name_on_one_line(indexed):
    _, _, cat, _ = indexed
    r = _cli("info", "--catalog", cat, "--tracks")
    assert r.returncode == 0
    lines = [ln for ln in r.stdout.splitlines() if "line.wav" in ln]
    assert len(lines) == 1 and "new\\nline.wav" in lines[0]
    with Catalog.open(cat) as c:
        other = next(t.id for t in c.tracks() if Path(t.path).name == "good.wav")
    r = _cli("similar", other, "--catalog", cat, "-k", "8")
    assert r.returncode == 0 and sum("line.wav" in ln for ln in r.stdout.splitlines()) == 1
    assert "new\\nline.wav" in r.stdout


@pytest.mark.slow
def test_cli_refuses_huge_ids_offsets_and_silence_with_typed_errors(indexed):
    folder, _, cat, _ = indexed
    for args, words in [
        (("similar", str(BIG_ID)), "neither an audio file nor a track id"),
        (("tag", str(BIG_ID)), "ids are below 2^63"),
        (("recommend", "--seed-track", str(BIG_ID)), "ids are below 2^63"),
        (("similar", folder / "good.wav", "--offset", "1e308"), "past the end"),
        (("similar", folder / "silence.wav"), "silent"),
        (("similar", folder / "pipe.wav"), "named pipe"),
        (("tag", folder / "fifth-second.wav"), "at least 0.5 s"),
        (("similar", folder / "good.wav", "--max-duration", "5"), "--max-duration"),
    ]:
        r = _cli(*args, "--catalog", cat)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
        assert r.stderr.startswith("error: ") and words in r.stderr, (args, r.stderr)
    for args, words in [  # events reads a file, no catalog
        (("events", folder / "pipe.wav"), "named pipe"), (("events", folder / "nan-samples.wav"), "NaN"),
        (("events", folder / "text.mp3"), "cannot decode"),
        (("events", folder / "good.wav", "--max-duration", "5"), "--max-duration"),
        (("events", folder / "good.wav", "--offset", "1e308"), "past the end"),
    ]:
        r = _cli(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
        assert r.stderr.startswith("error: ") and words in r.stderr, (args, r.stderr)
    r = _cli("events", folder / "silence.wav", "--json")  # silence is an answer: no events
    assert r.returncode == 0 and json.loads(r.stdout)["beats"] == [], r.stderr
    for args, words in [  # transcribe too
        (("transcribe", folder / "pipe.wav"), "named pipe"), (("transcribe", folder / "nan-samples.wav"), "NaN"),
        (("transcribe", folder / "text.mp3"), "cannot decode"),
        (("transcribe", folder / "good.wav", "--max-duration", "5"), "--max-duration"),
        (("transcribe", folder / "good.wav", "--offset", "1e308"), "past the end"),
    ]:
        r = _cli(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
        assert r.stderr.startswith("error: ") and words in r.stderr, (args, r.stderr)
    r = _cli("transcribe", folder / "silence.wav", "--json")  # silence is an answer: no notes
    assert r.returncode == 0 and json.loads(r.stdout)["notes"] == [], r.stderr
    out = Path(folder).parent / "restored.wav"
    for args, words in [  # restore: a file in, a file out; nothing is written on failure
        (("restore", folder / "pipe.wav"), "named pipe"), (("restore", folder / "nan-samples.wav"), "NaN"),
        (("restore", folder / "text.mp3"), "cannot decode"), (("restore", folder / "silence.wav"), "silent"),
        (("restore", folder / "good.wav", "--max-duration", "5"), "--max-duration"),
    ]:
        r = _cli(*args, "-o", out)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
        assert r.stderr.startswith("error: ") and words in r.stderr, (args, r.stderr)
        assert not out.exists()


def test_every_decoding_command_takes_the_same_max_duration():
    from soundalike.cli import build_parser
    from soundalike.limits import DEFAULT_MAX_DURATION

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("index", "similar", "identify", "tag", "events", "transcribe", "restore", "playlist", "fingerprints",
                 "serve"):
        opts = {a.dest: a for a in sub.choices[name]._actions}
        assert opts["max_duration"].default == DEFAULT_MAX_DURATION, name


def test_soundalike_alone_lists_the_commands():
    r = _cli()
    assert r.returncode == 0
    for cmd in ("index", "similar", "identify", "tag", "serve", "check"):
        assert cmd in r.stdout


# ----------------------------------------------------------------------------- identify


def test_offsets_are_never_negative(tmp_path):
    music = tmp_path / "music"
    paths = write_tracks(music, [11, 12, 13], duration=20.0)
    with Catalog.create(tmp_path / "cat", tag_heads=None) as cat:
        cat.add([music])
        y = decode(paths[0], sr=SR).samples
        for lead in (0.0, 0.4, 0.9):  # the excerpt starts with silence the track does not have
            clip = save(tmp_path / f"lead{lead}.wav", np.concatenate([np.zeros(int(lead * SR), np.float32),
                                                                      y[: 6 * SR]]), SR)
            res = identify(cat, clip)
            assert res.match is not None and Path(res.match.track.path).name == paths[0].name
            assert all(c.offset >= 0.0 for c in res.candidates)
            assert res.match.offset == pytest.approx(0.0, abs=0.15) if lead == 0.0 else res.match.offset >= 0.0


# ----------------------------------------------------------------------------- a damaged catalog


@pytest.mark.slow
def test_a_damaged_catalog_gets_a_typed_error_and_check_repair_rebuilds_it(tmp_path):
    import sqlite3

    music = tmp_path / "music"
    write_tracks(music, list(range(10)), duration=12.0)
    root = tmp_path / "cat"
    with Catalog.create(root, tag_heads=None, fingerprint_model=None) as cat:
        cat.add([music])
    db = root / "catalog.sqlite"
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page, pages = con.execute("PRAGMA page_size").fetchone()[0], con.execute("PRAGMA page_count").fetchone()[0]
    con.close()
    with open(db, "r+b") as fh:  # overwrite one page near the end: a leaf of the tracks table
        fh.seek((pages - 3) * page)
        fh.write(np.random.default_rng(0).bytes(page))

    with pytest.raises(CatalogCorruptError, match="--repair"), Catalog.open(root) as cat:  # not sqlite3's own
        for t in cat.tracks():
            cat.embeddings(t.id)
    r = _cli("info", "--catalog", root)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--repair" in r.stderr
    r = _cli("check", "--catalog", root)
    assert r.returncode == 1 and "damaged" in r.stdout
    r = _cli("check", "--catalog", root, "--repair", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    rep = d["repair"]
    assert d["repaired"] and d["problems_after"] == []
    assert rep["kept"]["tracks"] + len(rep["lost_tracks"]) == 10 and rep["kept"]["tracks"] >= 5
    assert (root / rep["backup"]).is_file()  # the damaged file is kept
    assert _cli("check", "--catalog", root).returncode == 0
    with Catalog.open(root) as cat:
        assert len(cat) == rep["kept"]["tracks"]
        first = cat.tracks()[0]
        assert similar(cat, first.id, k=3)[0].track.id != first.id
    # indexing the folder again brings the lost tracks back
    r = _cli("index", music, "--catalog", root, "--json", "--allow-failures")
    assert r.returncode == 0 and json.loads(r.stdout)["tracks"] == 10


# ----------------------------------------------------------------------------- the web app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from soundalike.serve.app import ServeConfig, create_app

    tmp = tmp_path_factory.mktemp("hostile-serve")
    write_tracks(tmp / "music", [3, 17, 29], duration=14.0)
    with Catalog.create(tmp / "cat") as cat:
        cat.add([tmp / "music"])
    app = create_app(ServeConfig(catalog=str(tmp / "cat"), max_upload_mb=40.0, workers=1, max_duration=60.0))
    with TestClient(app) as client:
        yield client, app, tmp


def _wav(y, sr=SR) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(y, np.float32), sr, format="WAV")
    return buf.getvalue()


def _no_path(text: str, *roots: Path) -> None:
    for r in roots:
        assert str(r) not in text
    assert "/tmp" not in text and "soundalike-uploads" not in text


def test_hostile_uploads_get_typed_answers_without_paths_and_the_server_stays_up(served, corpus):
    client, app, tmp = served
    folder, cases = corpus
    for name, case in cases.items():
        if case.expect in ("skip", "ignore") or name == "dangling.wav":
            continue
        r = client.post("/api/similar", content=(folder / name).read_bytes())
        want = {"index": 200, "duplicate": 200}.get(case.expect)
        if want:
            assert r.status_code == 200, (name, r.text)
        else:
            assert r.status_code in (415, 422), (name, r.status_code, r.text)
            assert "upload" in r.json()["detail"]
        _no_path(r.text, tmp, app.state.engine.uploads)
        ev = client.post("/api/events", content=(folder / name).read_bytes())
        assert ev.status_code == (want or ev.status_code) and ev.status_code in (200, 415, 422), (name, ev.text)
        _no_path(ev.text, tmp, app.state.engine.uploads)
        notes = client.post("/api/transcribe", content=(folder / name).read_bytes())
        assert notes.status_code in (200, 415, 422) and (want is None or notes.status_code == 200), (name, notes.text)
        _no_path(notes.text, tmp, app.state.engine.uploads)
        clean = client.post("/api/restore", content=(folder / name).read_bytes())
        assert clean.status_code in (200, 413, 415, 422) and (want is None or clean.status_code == 200), (name, clean.text)
        if clean.status_code != 200:
            _no_path(clean.text, tmp, app.state.engine.uploads)
        assert client.get("/healthz").json()["status"] == "ok"  # still answering
    short = client.post("/api/similar", content=_wav(synth_track(1, duration=0.3)))
    assert short.status_code == 422 and "at least 0.5 s" in short.json()["detail"]
    silent = client.post("/api/tag", content=_wav(np.zeros(3 * SR)))
    assert silent.status_code == 422 and "silent" in silent.json()["detail"]
    long = client.post("/api/tag", content=_wav(synth_track(2, duration=70.0)))
    assert long.status_code == 413 and "over the limit of 60 s" in long.json()["detail"]
    nan = client.post("/api/identify", content=(folder / "nan-samples.wav").read_bytes())
    assert nan.status_code == 415 and "NaN" in nan.json()["detail"]
    assert list(app.state.engine.uploads.iterdir()) == []


def test_errors_carry_no_path_and_huge_ids_are_404(served):
    client, app, tmp = served
    for url in (f"/api/tracks/{BIG_ID}", f"/api/tracks/{BIG_ID}/audio", "/api/tracks/999999",
                f"/api/recommend?seed_track={BIG_ID}"):
        r = client.get(url)
        assert r.status_code == 404, (url, r.text)
        _no_path(r.text, tmp)
    r = client.post("/api/similar", params={"where": "tag:nosuch>0.5"}, content=_wav(synth_track(3, duration=4.0)))
    assert r.status_code == 422 and "nosuch" in r.json()["detail"]
    _no_path(r.text, tmp)
    r = client.post("/api/similar", params={"offset": 1e308}, content=_wav(synth_track(3, duration=4.0)))
    assert r.status_code == 422 and "past the end" in r.json()["detail"]


def test_security_headers_and_offline_docs(served):
    client, *_ = served
    for url in ("/", "/healthz", "/api/tracks", "/static/app.js"):
        h = client.get(url).headers
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
        assert "default-src 'self'" in h["content-security-policy"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()
    assert "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


@pytest.mark.slow
def test_timed_out_work_stops_and_health_never_waits_for_inference(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from soundalike.serve.app import ServeConfig, create_app

    write_tracks(tmp_path / "music", [3, 17], duration=10.0)
    with Catalog.create(tmp_path / "cat") as cat:
        cat.add([tmp_path / "music"])
    long = _wav(synth_track(9, duration=240.0))  # minutes of work for similar + tags + identify
    app = create_app(ServeConfig(catalog=str(tmp_path / "cat"), workers=1, decode_timeout=0.5))
    engine = app.state.engine
    with TestClient(app) as client:
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(client.post("/api/similar", content=long)))
                   for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [a.status_code for a in answers] == [422] * 3
        assert all("was stopped" in a.json()["detail"] for a in answers)
        engine._pool.submit(lambda: None).result()  # the one worker is free again ...
        assert engine.busy == 0 and engine.stopped >= 1  # ... because the work stopped at its deadline
        # health is answered while the worker is busy with a long upload (it does not queue behind it)
        slow = create_app(ServeConfig(catalog=str(tmp_path / "cat"), workers=1, decode_timeout=120.0))
        with TestClient(slow) as c2:
            done = threading.Event()
            t = threading.Thread(target=lambda: (c2.post("/api/similar", content=long), done.set()))
            t.start()
            seen = []
            for _ in range(2000):
                if slow.state.engine.busy:
                    seen.append(c2.get("/healthz").json())
                    break
                threading.Event().wait(0.01)
            t.join()
            assert done.is_set() and seen and seen[0]["busy"] == 1 and seen[0]["status"] == "ok"


def test_track_ids_beyond_sqlite_range_are_not_found(tmp_path):
    write_tracks(tmp_path / "music", [3], duration=6.0)
    with Catalog.create(tmp_path / "cat", tag_heads=None, fingerprint_model=None) as cat:
        cat.add([tmp_path / "music"])
        for bad in (BIG_ID, -(2**63) - 1, 10**30):
            with pytest.raises(TrackNotFoundError):
                cat.track(bad)
            with pytest.raises(TrackNotFoundError):
                cat.embeddings(bad)
