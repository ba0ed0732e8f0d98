from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from soundalike.audio import load
from soundalike.data.render import (
    ENSEMBLES,
    DemoCorpusConfig,
    gm_family,
    plan_tasks,
    render_demo_corpus,
)
from soundalike.errors import ParameterError

pytestmark = pytest.mark.slow


def test_rendered_corpus_has_labelled_decodable_audio(rendered):
    rows = [json.loads(line) for line in (rendered / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) >= 4
    summary = json.loads((rendered / "corpus.json").read_text())["summary"]
    assert summary["tracks"] == len(rows)
    for r in rows:
        assert r["collection"] in ("bach", "ryansMammoth")
        assert r["composer"] and r["work"] and r["tempo_bpm"] > 0
        assert r["families"] == sorted({gm_family(p) for p in r["programs"]})
        y, sr = load(rendered / r["path"], sr=None)
        assert sr == 22050 and abs(len(y) / sr - r["duration"]) < 0.01
        assert 5.0 <= r["duration"] <= 25.0 + 1.0  # the length guard: max_seconds + release tail
        assert float((y**2).mean()) ** 0.5 > 1e-3  # not silent
    by_work = {}
    for r in rows:
        by_work.setdefault(r["work"], []).append(r)
    for versions in by_work.values():  # the same piece in several instrumentations
        assert versions[0]["ensemble"] == "original"
        for v in versions[1:]:
            assert v["ensemble"] in ENSEMBLES
            assert set(v["programs"]) <= set(ENSEMBLES[v["ensemble"]])
    assert (rendered / "query.mp3").exists()


def test_render_is_deterministic_for_a_seed(tmp_path):
    cfg = DemoCorpusConfig(collections=("bach",), works_per_collection=1, instrumentations=2, max_seconds=8.0,
                           min_seconds=2.0, seed=7)
    a = render_demo_corpus(tmp_path / "a", cfg, jobs=1)
    b = render_demo_corpus(tmp_path / "b", cfg, jobs=1)
    assert a.tracks == b.tracks == 2

    def digest(root):
        return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in (root / "audio").rglob("*.flac"))

    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert (tmp_path / "a" / "manifest.jsonl").read_text() == (tmp_path / "b" / "manifest.jsonl").read_text()


def test_plan_depends_on_seed_and_covers_collections():
    cfg = DemoCorpusConfig(works_per_collection=3)
    tasks = plan_tasks(cfg)
    assert {t.collection for t in tasks} == set(cfg.collections)
    assert sum(t.n_tunes for t in tasks) == 3 * len(cfg.collections)
    other = plan_tasks(DemoCorpusConfig(works_per_collection=3, seed=1))
    assert [t.source for t in tasks] != [t.source for t in other]


def test_bad_render_options():
    with pytest.raises(ParameterError):
        DemoCorpusConfig(collections=("beatles",))
    with pytest.raises(ParameterError):
        DemoCorpusConfig(ensembles=("kazoo",))
    with pytest.raises(ParameterError):
        DemoCorpusConfig(max_seconds=0.0)


def test_a_reused_synth_renders_as_a_new_one():
    """The per-process synth cache keeps no voice, volume or pitch bend from the previous piece."""
    pytest.importorskip("tinysoundfont")
    import mido

    from soundalike.data.render import default_soundfont, load_synth, synthesize

    sf = str(default_soundfont())

    def piece(program, notes, *, bend=False, volume=None):
        ev = [(0.0, mido.Message("program_change", channel=0, program=program))]
        if bend:
            ev.append((0.05, mido.Message("pitchwheel", channel=0, pitch=3000)))
        if volume is not None:
            ev.append((0.1, mido.Message("control_change", channel=0, control=7, value=volume)))
        for i, n in enumerate(notes):
            ev += [(0.1 + 0.3 * i, mido.Message("note_on", channel=0, note=n, velocity=100)),
                   (0.35 + 0.3 * i, mido.Message("note_off", channel=0, note=n, velocity=0))]
        return ev

    song = piece(0, [60, 64, 67, 72])
    fresh, _ = synthesize(song, soundfont=sf, sample_rate=22050, max_seconds=2.0, synth=load_synth(sf, 22050))
    used = load_synth(sf, 22050)  # cut off mid-note, bent, quieter: all of it must be gone
    synthesize(piece(48, [40, 47, 52], bend=True, volume=40), soundfont=sf, sample_rate=22050, max_seconds=0.8,
               synth=used, tail_seconds=0.1)
    again, _ = synthesize(song, soundfont=sf, sample_rate=22050, max_seconds=2.0, synth=used)
    assert np.abs(fresh).max() > 0.01
    np.testing.assert_array_equal(again, fresh)
