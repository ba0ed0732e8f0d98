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


@contextmanager
def uploaded(url: str, path: Path) -> Iterator[Any]:
    """A laptop-sized page of the app with ``path`` uploaded through its file picker."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url + "/")
            page.wait_for_selector("#catalog li")
            page.set_input_files("#file", str(path))
            yield page
        finally:
            browser.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from soundalike import Catalog
    from soundalike.recommend.listens import import_listens
    from soundalike.testing import write_tracks

    tmp = tmp_path_factory.mktemp("browser")
    paths = write_tracks(tmp / "music", [5, 23, 47, 71], duration=14.0)
    with Catalog.create(tmp / "cat") as cat:
        cat.add([tmp / "music"])
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
                assert "track_047" in first.inner_text()
                assert first.locator("audio").get_attribute("src").startswith("/api/tracks/")
                excerpt = page.locator("#excerpt")
                assert excerpt.is_visible() and "track_047" in excerpt.inner_text() and "0:03" in excerpt.inner_text()
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
        assert "track_005" in segs.nth(0).inner_text() and "track_071" in segs.nth(1).inner_text()
        left = [float(segs.nth(i).evaluate("e => parseFloat(e.style.left)")) for i in range(2)]
        assert left[0] < 5 and 40 < left[1] < 60  # the second starts about halfway through
        assert "2 catalog tracks" in page.locator("#segments-status").inner_text()
        page.screenshot(path=str(ARTIFACTS / "web-segments.png"), full_page=True)


def test_recommendations_for_a_user_with_reasons(server):
    from playwright.sync_api import sync_playwright

    url, _, _ = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url + "/")
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
            page.fill("#rec-user", "nobody")
            page.click("#rec-form button")
            page.wait_for_selector("#rec-status.error")
            assert "no listens" in page.locator("#rec-status").inner_text()
            page.screenshot(path=str(ARTIFACTS / "web-recommend.png"), full_page=True)
        finally:
            browser.close()


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
        page.wait_for_function("!document.getElementById('before').paused")
        page.evaluate("document.getElementById('after').play()")
        page.wait_for_function("document.getElementById('before').paused && !document.getElementById('after').paused")
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
        page.wait_for_function(f"!{first_result}.paused")
        page.click("#mix-btn")
        page.wait_for_selector("#mix-list li", timeout=60_000)
        items = page.locator("#mix-list li")
        assert items.count() == 4  # every catalog track, once
        player = "document.getElementById('mix-player')"
        page.evaluate(f"{player}.muted = true")
        assert page.evaluate(f"{player}.getAttribute('src')") == f"/api/tracks/{top}/audio"  # the nearest opens
        page.wait_for_function(f"!{player}.paused && {first_result}.paused")  # one player at a time
        assert items.first.get_attribute("aria-current") is not None
        page.evaluate(f"{player}.dispatchEvent(new Event('ended'))")  # a track ends: the next one plays
        page.wait_for_function("document.querySelectorAll('#mix-list li')[1].hasAttribute('aria-current')")
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
        page.wait_for_function(f"!{first_result}.paused")
        box = page.locator("#map").bounding_box()
        point = page.evaluate("""() => { const c = document.getElementById('map'), p = mapData.points[0];
            const [x, y] = mapXY(p, c), r = c.getBoundingClientRect();
            return [x * r.width / c.width, y * r.height / c.height]; }""")
        page.evaluate("document.getElementById('map-player').muted = true")
        page.mouse.click(box["x"] + point[0], box["y"] + point[1])
        page.wait_for_function("!document.getElementById('map-player').paused")
        assert page.evaluate(f"{first_result}.paused")  # the map's track took over: one player at a time
        assert page.locator("#map-player").is_visible()
