"""The web page in a real browser: Debian's Chromium, driven headless by Python Playwright.

Starts `soundalike serve` on a small generated catalog, uploads an excerpt through the page's file
picker, waits for the results, checks that the excerpt's source track is first and has a player and
that the page names it as the source, and saves a screenshot (tests/artifacts/). Skipped, with a
message, where /usr/bin/chromium is missing (`make test` installs it as root, as CI runs it).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]

pytestmark = [pytest.mark.slow,  # a real browser
              pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                 reason="Debian's chromium is not installed (make test installs it when run as root)")]


LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@contextmanager
def opened(url: str, viewport: dict[str, int] = LAPTOP, *, init_script: str | None = None,
           **options: Any) -> Iterator[Any]:
    """A page of the app in its own browser, once its catalog list has loaded (``init_script`` runs before
    the page's own scripts)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport=viewport, **options)
            if init_script:
                page.add_init_script(init_script)
            page.goto(url + "/")
            page.wait_for_selector("#catalog li")
            yield page
        finally:
            browser.close()


@contextmanager
def uploaded(url: str, path: Path) -> Iterator[Any]:
    """A laptop-sized page of the app with ``path`` uploaded through its file picker."""
    with opened(url) as page:
        page.set_input_files("#file", str(path))
        yield page


#: What the fixture's tracks are called (title, artist), where something names them: by index of the seeds.
TITLES = {2: ("Forty-Seven Variations", "Ada Composer"), 3: ("Seventy-One", "The Generated Band")}


def retag(path: Path, title: str, artist: str) -> None:
    """Rewrite the WAV file ``path`` with a title and artist in its INFO chunk (as a tagger would)."""
    import soundfile as sf

    y, sr = sf.read(str(path), dtype="float32")
    with sf.SoundFile(str(path), "w", sr, 1 if y.ndim == 1 else y.shape[1], subtype="PCM_16") as f:
        f.title, f.artist = title, artist
        f.write(y)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import json

    from soundalike import Catalog
    from soundalike.recommend.listens import import_listens
    from soundalike.testing import write_tracks

    tmp = tmp_path_factory.mktemp("browser")
    paths = write_tracks(tmp / "music", [5, 23, 47, 71], duration=14.0)
    # titles as a user's files carry them: track_047 named by the manifest (a title and a composer), track_071 by
    # its own file tags; the other two have neither and show their file names
    (tmp / "manifest.jsonl").write_text(json.dumps({"path": "music/track_047.wav", "title": TITLES[2][0],
                                                    "composer": TITLES[2][1], "collection": "forties"}) + "\n")
    retag(paths[3], *TITLES[3])
    with Catalog.create(tmp / "cat") as cat:
        cat.add([tmp / "music"], manifest=tmp / "manifest.jsonl")
        (tmp / "listens.csv").write_text("user,track,timestamp,plays\nana,music/track_005.wav,1,3\n"
                                         "ana,music/track_023.wav,2,1\n")
        import_listens(cat, tmp / "listens.csv")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "soundalike", "serve", "--catalog", str(tmp / "cat"), "--port",
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"the server exited: {proc.stdout.read() if proc.stdout else ''}")
            time.sleep(0.5)
    yield url, paths, tmp
    proc.terminate()
    proc.wait(timeout=20)


def test_upload_an_excerpt_and_see_its_source_first_with_a_player(server):
    from playwright.sync_api import sync_playwright

    from soundalike.audio import save
    from soundalike.audio.io import decode

    url, paths, tmp = server
    y = decode(paths[2], sr=22050).samples
    clip = save(tmp / "excerpt.wav", y[3 * 22050 : 9 * 22050], 22050)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            for name, size in (("laptop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})):
                page = browser.new_page(viewport=size)
                page.goto(url + "/")
                page.wait_for_selector("#catalog li")  # the catalog list loaded
                page.set_input_files("#file", str(clip))
                page.wait_for_selector("#results li", timeout=60_000)
                first = page.locator("#results li").first
                # named as its manifest names it (title, composer), not by its file name; no bookkeeping chips
                title, artist = TITLES[2]
                assert first.locator(".name").inner_text() == title and artist in first.inner_text()
                assert "track_047" not in first.inner_text() and "composer:" not in first.inner_text()
                assert first.locator("audio").get_attribute("src").startswith("/api/tracks/")
                ranks = page.locator("#results li .score").all_inner_texts()
                assert ranks == [str(i + 1) for i in range(len(ranks))]  # ranks, not raw cosines
                assert "cosine" in first.locator(".score").get_attribute("title")
                excerpt = page.locator("#excerpt")
                assert excerpt.is_visible() and title in excerpt.inner_text() and "0:03" in excerpt.inner_text()
                assert page.locator("#map-section canvas").is_visible()
                page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)
                page.close()
        finally:
            browser.close()


def test_upload_a_recording_of_two_tracks_and_see_them_on_a_timeline(server):
    from soundalike.audio import save
    from soundalike.audio.io import decode
    from soundalike.testing.mixes import make_mix

    url, paths, tmp = server
    tracks = [decode(p, sr=22050).samples for p in paths]
    mix, truth = make_mix(tracks, 22050, order=[0, 3], seconds=[10.0, 10.0], seed=1, talk=0, snr_db=30.0)
    rec = save(tmp / "recording.wav", mix, 22050)
    with uploaded(url, rec) as page:
        page.wait_for_selector("#timeline .seg", timeout=60_000)
        segs = page.locator("#timeline .seg")
        assert segs.count() == 2
        assert "track_005" in segs.nth(0).inner_text() and segs.nth(1).inner_text() == TITLES[3][0]  # its file tag
        left = [float(segs.nth(i).evaluate("e => parseFloat(e.style.left)")) for i in range(2)]
        assert left[0] < 5 and 40 < left[1] < 60  # the second starts about halfway through
        assert "2 catalog tracks" in page.locator("#segments-status").inner_text()
        page.screenshot(path=str(ARTIFACTS / "web-segments.png"), full_page=True)


def test_recommendations_for_a_user_with_reasons(server):
    url, paths, tmp = server
    with opened(url) as page:
        page.wait_for_selector("#rec-users option[value='ana']", state="attached")
        page.fill("#rec-user", "ana")
        page.click("#rec-form button")
        page.wait_for_selector("#recs li", timeout=60_000)
        items = page.locator("#recs li").all_inner_texts()
        assert len(items) == 2  # four tracks, two heard
        names = page.locator("#recs li .name").all_inner_texts()
        assert len(names) == 2 and not any("track_005" in t or "track_023" in t for t in names)
        assert all("sounds like track_0" in t and "you played" in t for t in items)
        assert page.locator("#recs li audio").first.get_attribute("src").startswith("/api/tracks/")
        # the raw scores are not shown: the rank is, and its tooltip says what the order stands for
        assert page.locator("#recs li .score").all_inner_texts() == ["1", "2"]
        assert "only the order means something" in page.locator("#recs li .score").first.get_attribute("title")
        assert "Best first" in page.locator("#rec-status").inner_text()
        page.fill("#rec-user", "nobody")
        page.click("#rec-form button")
        page.wait_for_selector("#rec-status.error")
        assert "no listens" in page.locator("#rec-status").inner_text()
        # a user who has played every track (listens imported while the server runs): nothing new, said so
        from soundalike import Catalog
        from soundalike.recommend.listens import import_listens

        (tmp / "omni.csv").write_text("user,track,timestamp,plays\n" + "".join(
            f"omni,music/{p.name},{i},1\n" for i, p in enumerate(paths)))
        with Catalog.open(tmp / "cat") as cat:
            import_listens(cat, tmp / "omni.csv")
        page.fill("#rec-user", "omni")
        page.click("#rec-form button")
        page.wait_for_selector("#rec-status:has-text('Nothing new for omni')")
        assert page.locator("#recs li").count() == 0
        page.screenshot(path=str(ARTIFACTS / "web-recommend.png"), full_page=True)


def test_beats_and_drum_hits_are_drawn_under_the_spectrogram(server):
    import re

    import numpy as np

    from soundalike.audio import save
    from soundalike.testing.synth import click_track

    url, _, tmp = server
    clip = save(tmp / "clicks.wav", click_track(np.arange(0.5, 13.0, 0.5), sr=22050, duration=14.0), 22050)
    with uploaded(url, clip) as page:
        page.wait_for_selector("#events-status:has-text('BPM')", timeout=60_000)
        status = page.locator("#events-status").inner_text()
        bpm = float(re.search(r"([\d.]+) BPM", status).group(1))
        assert abs(bpm / 120.0 - 1) < 0.02, status
        canvas = page.locator("#events")
        assert canvas.is_visible()
        # the beats are drawn: near-white marks (the beat row's colour) on the dark canvas, one per click
        light = canvas.evaluate("c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                                " let n = 0; for (let i = 0; i < d.length; i += 4)"
                                " if (d[i] > 200 && d[i + 1] > 200 && d[i + 2] > 200) n++; return n; }")
        assert light > 150
        page.screenshot(path=str(ARTIFACTS / "web-events.png"), full_page=True)


def test_notes_are_drawn_as_a_piano_roll_and_offered_as_midi(server):
    from soundalike.audio import save
    from soundalike.testing.synth import harmonic_notes
    from soundalike.transcribe.notes import read_midi

    url, _, tmp = server
    scale = [(0.5 + 0.5 * i, 0.9 + 0.5 * i, p) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])]
    clip = save(tmp / "scale.wav", harmonic_notes(scale, sr=22050, duration=6.0), 22050)
    with uploaded(url, clip) as page:
        page.wait_for_selector("#notes-status:has-text('8 notes')", timeout=60_000)
        canvas = page.locator("#pianoroll")
        assert canvas.is_visible()
        # the notes are drawn: violet cells (the roll's colour) on the dark canvas
        violet = canvas.evaluate("c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                                 " let n = 0; for (let i = 0; i < d.length; i += 4)"
                                 " if (d[i + 2] > 150 && d[i + 2] > d[i + 1] + 40) n++; return n; }")
        assert violet > 100
        link = page.locator("#midi")
        assert link.is_visible() and link.get_attribute("download") == "scale.mid"
        with page.expect_download() as download:
            link.click()
        assert download.value.suggested_filename == "scale.mid"
        midi = tmp / "downloaded.mid"
        download.value.save_as(midi)
        assert [n.pitch for n in read_midi(midi)] == [p for _, _, p in scale]
        page.screenshot(path=str(ARTIFACTS / "web-notes.png"), full_page=True)


def test_clean_up_an_upload_and_compare_it_before_and_after(server):
    import soundfile as sf

    from soundalike.audio import save
    from soundalike.restore.noises import add_at_snr, make_noise

    url, _, tmp = server
    sr = 44100
    t = np.arange(6 * sr) / sr
    clean = (0.2 * np.sin(2 * np.pi * 330 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)
    noisy = add_at_snr(clean, make_noise("hiss", len(clean), sr, np.random.default_rng(0)), 5.0)
    clip = save(tmp / "hissy.wav", noisy, sr)
    with uploaded(url, clip) as page:
        page.wait_for_selector("#results li", timeout=60_000)
        page.click("#cleanup-btn")
        page.wait_for_selector("#cleanup-players:not([hidden])", timeout=60_000)
        assert page.locator("#cleanup-status").inner_text().startswith("Cleaned up")
        durations = page.evaluate("""async () => {
            const wait = (a) => a.readyState >= 1 ? a.duration : new Promise((ok) => a.addEventListener('loadedmetadata', () => ok(a.duration)));
            return [await wait(document.getElementById('before')), await wait(document.getElementById('after'))];
        }""")
        assert abs(durations[0] - 6.0) < 0.05 and abs(durations[1] - 6.0) < 0.05
        # one of the pair plays at a time: starting "after" pauses "before"
        page.evaluate("document.getElementById('before').muted = true; document.getElementById('after').muted = true")
        page.evaluate("document.getElementById('before').play()")
        page.wait_for_function("() => !document.getElementById('before').paused")
        page.evaluate("document.getElementById('after').play()")
        page.wait_for_function("() => document.getElementById('before').paused && !document.getElementById('after').paused")
        link = page.locator("#restored")
        assert link.get_attribute("download") == "hissy-restored.wav"
        with page.expect_download() as download:
            link.click()
        path = tmp / "downloaded.wav"
        download.value.save_as(path)
        out, got_sr = sf.read(str(path), dtype="float32")
        assert got_sr == sr and len(out) == len(noisy)
        hiss_in = float(np.mean((noisy - clean) ** 2))
        assert float(np.mean((out - clean) ** 2)) < 0.5 * hiss_in  # the hiss is at least 3 dB down
        page.screenshot(path=str(ARTIFACTS / "web-cleanup.png"), full_page=True)


def test_play_as_a_mix_plays_the_playlist_in_order_and_one_player_at_a_time(server):
    from soundalike.audio import save
    from soundalike.audio.io import decode

    url, paths, tmp = server
    y = decode(paths[1], sr=22050).samples
    clip = save(tmp / "mix-seed.wav", y[2 * 22050: 8 * 22050], 22050)
    with uploaded(url, clip) as page:
        page.wait_for_selector("#results li", timeout=60_000)
        top = page.locator("#results li").first.get_attribute("data-track-id")
        page.evaluate("document.querySelectorAll('audio').forEach((a) => { a.muted = true; })")
        first_result = "document.querySelector('#results li audio')"
        page.evaluate(f"{first_result}.play()")
        page.wait_for_function(f"() => !{first_result}.paused")
        page.click("#mix-btn")
        page.wait_for_selector("#mix-list li", timeout=60_000)
        items = page.locator("#mix-list li")
        assert items.count() == 4  # every catalog track, once
        player = "document.getElementById('mix-player')"
        page.evaluate(f"{player}.muted = true")
        assert page.evaluate(f"{player}.getAttribute('src')") == f"/api/tracks/{top}/audio"  # the nearest opens
        page.wait_for_function(f"() => !{player}.paused && {first_result}.paused")  # one player at a time
        assert items.first.get_attribute("aria-current") is not None
        page.evaluate(f"{player}.dispatchEvent(new Event('ended'))")  # a track ends: the next one plays
        page.wait_for_function("() => document.querySelectorAll('#mix-list li')[1].hasAttribute('aria-current')")
        second = page.evaluate(f"{player}.getAttribute('src')")
        assert second != f"/api/tracks/{top}/audio" and second.startswith("/api/tracks/")
        assert "Playing 2 of 4" in page.locator("#mix-status").inner_text()
        page.screenshot(path=str(ARTIFACTS / "web-mix.png"), full_page=True)


def test_the_map_plays_on_a_page_player_in_distinct_colours_and_chips_skip_bookkeeping(server):
    url, paths, _ = server
    with uploaded(url, paths[0]) as page:
        page.wait_for_selector("#results li", timeout=60_000)
        colours = page.eval_on_selector_all("#legend i", "els => els.map((e) => getComputedStyle(e).backgroundColor)")
        assert len(colours) == len(set(colours))  # every label its own colour
        twelve = page.evaluate("[...Array(12).keys()].map((i) => labelColour(i, 12))")
        hues = sorted(int(c.split("(")[1].split(",")[0]) for c in twelve)
        assert len(set(twelve)) == 12 and min(b - a for a, b in zip(hues, hues[1:], strict=False)) >= 30
        assert "duration:" not in page.locator("#results").inner_text()
        page.evaluate("document.querySelectorAll('audio').forEach((a) => { a.muted = true; })")
        first_result = "document.querySelector('#results li audio')"
        page.evaluate(f"{first_result}.play()")
        page.wait_for_function(f"() => !{first_result}.paused")
        page.locator("#map").scroll_into_view_if_needed()
        box = page.locator("#map").bounding_box()
        point = page.evaluate("""() => { const c = document.getElementById('map'), p = mapData.points[0];
            const [x, y] = mapXY(p, c), r = c.getBoundingClientRect();
            return [x * r.width / c.width, y * r.height / c.height]; }""")
        page.evaluate("document.getElementById('map-player').muted = true")
        page.mouse.click(box["x"] + point[0], box["y"] + point[1])
        # the map's track took over: one player at a time
        page.wait_for_function(f"() => !document.getElementById('map-player').paused && {first_result}.paused")
        assert page.locator("#map-player").is_visible()


def test_the_upload_plays_with_its_spectrogram_as_the_seek_bar_and_a_playhead(server):
    from soundalike.audio import save
    from soundalike.audio.io import decode

    url, paths, tmp = server
    y = decode(paths[0], sr=22050).samples
    clip = save(tmp / "seekable.wav", y[: 12 * 22050], 22050)
    retag(clip, "My Own Take", "The Uploader")  # the upload's own tags name it
    with uploaded(url, clip) as page:
        page.wait_for_selector("#results li", timeout=60_000)
        assert page.locator("#query-name").inner_text() == "My Own Take · The Uploader"
        player = "document.getElementById('upload-player')"
        page.evaluate("document.querySelectorAll('audio').forEach((a) => { a.muted = true; })")
        page.wait_for_function(f"() => {player}.readyState >= 1 && Math.abs({player}.duration - 12) < 0.05")
        first_result = "document.querySelector('#results li audio')"
        page.evaluate(f"{first_result}.play()")
        page.wait_for_function(f"() => !{first_result}.paused")
        # a click three quarters of the way across the spectrogram plays the upload from 9 s
        box = page.locator("#spectrogram").bounding_box()
        page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + box["height"] / 2)
        page.wait_for_function(f"() => !{player}.paused && {first_result}.paused")  # one player at a time
        start = page.evaluate(f"{player}.currentTime")
        assert 8.9 <= start <= 9.6, start
        # the playhead follows the player, on the same time axis as the spectrogram
        page.evaluate(f"{player}.pause()")
        at = page.evaluate(f"{player}.currentTime")
        head = page.locator("#playhead")
        assert head.is_visible()
        left = page.evaluate("parseFloat(document.getElementById('playhead').style.left)")
        assert abs(left - 100 * at / 12) < 0.5, (left, at)
        hb = head.bounding_box()
        assert abs(hb["x"] + hb["width"] / 2 - (box["x"] + box["width"] * at / 12)) < 3
        # from the keyboard: the spectrogram is a slider; arrows move 5 s, Home goes back to the start
        page.focus("#spectrogram")
        page.keyboard.press("ArrowLeft")
        assert abs(page.evaluate(f"{player}.currentTime") - (at - 5)) < 0.1
        assert page.get_attribute("#spectrogram", "aria-valuetext").startswith(f"0:{at - 5:04.1f}"[:4])
        page.keyboard.press("Home")
        assert page.evaluate(f"{player}.currentTime") == 0
        page.keyboard.press("Space")
        page.wait_for_function(f"() => !{player}.paused")
        page.screenshot(path=str(ARTIFACTS / "web-player.png"), full_page=True)


def test_an_upload_shows_progress_while_it_is_analysed_and_errors_stay_short_on_a_phone(server):
    url, paths, tmp = server
    notes = tmp / "notes.txt"
    notes.write_text("these are my notes, not music\n" * 50)
    # record what the status line and the progress bar show, however fast the analysis is
    record = """window.seen = []; addEventListener('DOMContentLoaded', () => {
        const note = () => seen.push([document.getElementById('busy').hidden,
            document.getElementById('busy-bar').hasAttribute('value'), document.getElementById('status').textContent]);
        new MutationObserver(note).observe(document.getElementById('upload-section'),
            {subtree: true, childList: true, attributes: true, characterData: true}); });"""
    with opened(url, PHONE, init_script=record, is_mobile=True) as page:
        page.set_input_files("#file", str(paths[1]))
        page.wait_for_selector("#results li", timeout=60_000)
        seen = page.evaluate("seen")
        busy = [s for s in seen if not s[0]]
        assert any(s[2].startswith("Uploading track_023.wav") for s in busy)
        assert any(s[2].startswith("Listening to track_023.wav") and not s[1] for s in busy)  # indeterminate
        assert page.locator("#busy").is_hidden() and page.locator("#drop").get_attribute("aria-busy") is None
        assert "tracks that sound like it" in page.locator("#status").inner_text()
        # a file that is not audio: one short line, the full reason behind "details"
        page.set_input_files("#file", str(notes))
        page.wait_for_selector("#status.error", timeout=30_000)
        status = page.locator("#status")
        line = status.evaluate("e => e.firstChild.textContent")
        assert line == "Could not use that file: not an audio file: it is a text file", line
        assert status.locator("details").count() == 1
        box = status.bounding_box()
        assert box["width"] <= 390 and box["height"] < 80  # three lines at most, nothing off the screen
        assert "/" not in status.inner_text().replace("details", "")  # no server path
        page.screenshot(path=str(ARTIFACTS / "web-phone-error.png"), full_page=False)


def test_the_map_is_reachable_and_playable_from_the_keyboard(server):
    url, _, _ = server
    with opened(url) as page:
        page.wait_for_function("() => mapData && mapData.points.length === 4")
        for _ in range(30):  # Tab through the page until the map has the focus
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "map":
                break
        assert page.evaluate("document.activeElement.id") == "map"
        named = set()
        for key in ("ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown") * 3:
            named.add(page.evaluate("mapFocus.id"))
            page.keyboard.press(key)
            hover = page.locator("#map-hover").inner_text()
            assert page.evaluate("mapFocus.name") in hover
        assert len(named) >= 3  # the arrows reach the other tracks
        # the arrows go the way they point: right is further right
        moved = page.evaluate("""() => { const out = []; for (const p of mapData.points) {
            const q = stepFrom(p, 1, 0); if (q) out.push(q.x - p.x); } return out; }""")
        assert moved and all(dx > 0 for dx in moved)
        page.evaluate("document.getElementById('map-player').muted = true")
        target = page.evaluate("mapFocus.id")
        page.keyboard.press("Enter")
        page.wait_for_function("() => !document.getElementById('map-player').paused")
        assert page.get_attribute("#map-player", "src") == f"/api/tracks/{target}/audio"
        page.wait_for_selector("#results li", timeout=60_000)
        assert page.locator("#results li").first.get_attribute("data-track-id") == str(target)
