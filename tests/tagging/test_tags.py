"""Tag heads on the shared encoder: loaders, training, the timeline, the catalog's stored tags and --where."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soundalike import Catalog, load_encoder
from soundalike.audio import save
from soundalike.errors import ModelError, ParameterError
from soundalike.tagging.teacher import TeacherTags
from soundalike.tasks import similar
from soundalike.testing import class_track

SR = 22050
TAGS = ("low", "mid", "high")


def _teacher(folder, seeds, *, duration=12.0):
    """Generated class tracks (labels 0, 2, 4 of class_track) and a stand-in teacher's soft scores for them."""
    scores = {}
    folder.mkdir(parents=True, exist_ok=True)
    for c, label in enumerate((0, 2, 4)):
        for s in seeds:
            path = save(folder / f"c{c}_{s}.wav", class_track(label, s, sr=SR, duration=duration), SR)
            rows = int(duration // 2.992) + 1
            scores[str(path)] = np.tile(np.eye(3, dtype=np.float32)[c] * 0.8 + 0.1, (rows, 1))
    return TeacherTags(TAGS, scores, 2.992, {"model": "stand-in"})


@pytest.fixture(scope="module")
def tiny_heads(tmp_path_factory):
    """A tiny tag_conv head (multi-label, soft targets) and a tag_mlp head (one label), trained on tracks
    0-3 of each class; tracks 10-11 are held out."""
    from soundalike.models.heads import HeadModel
    from soundalike.tagging.data import teacher_data
    from soundalike.tagging.train import TagTrainConfig, new_head, train_head

    tmp = tmp_path_factory.mktemp("heads")
    enc = load_encoder()
    train, test = _teacher(tmp / "train", range(4)), _teacher(tmp / "test", (10, 11))
    out = {"enc": enc, "train": train, "test": test, "dir": tmp}
    cfg = TagTrainConfig(head="tag_conv", steps=150, batch=32, hidden=32, threads=1)
    net = new_head(enc, cfg, 3, channels=(16, 32))
    data = teacher_data(enc, net, train)
    out["conv"] = HeadModel(train_head(net, data, cfg), head="tag_conv", tags=TAGS, multi_label=True,
                            encoder_fingerprint=enc.fingerprint, name="tiny-conv")
    out["conv_path"] = out["conv"].save(tmp / "tiny-conv")
    mcfg = TagTrainConfig(head="tag_mlp", steps=200, batch=64, hidden=32, threads=1)
    mlp = new_head(enc, mcfg, 3)
    mdata = teacher_data(enc, mlp, train)
    mdata.targets, mdata.multi_label = mdata.targets.argmax(1), False
    out["mlp"] = HeadModel(train_head(mlp, mdata, mcfg), head="tag_mlp", tags=("one/low", "one/mid", "one/high"),
                           multi_label=False, encoder_fingerprint=enc.fingerprint, name="tiny-mlp")
    out["mlp_path"] = out["mlp"].save(tmp / "tiny-mlp")
    return out


@pytest.mark.slow
def test_teacher_loader_cuts_one_chunk_at_each_rows_start(tiny_heads):
    from soundalike.features.mel import log_mel_chunks
    from soundalike.tagging.data import teacher_data

    enc, teacher = tiny_heads["enc"], tiny_heads["test"]
    path = sorted(teacher.scores)[0]
    teacher.scores[path] = np.arange(5 * 3, dtype=np.float32).reshape(5, 3) / 15  # row i is recognisable
    one = TeacherTags(TAGS, {path: teacher.scores[path]}, 2.992, {})
    data = teacher_data(enc, tiny_heads["mlp"].net, one)
    # 12 s = 517 frames; rows start at round(i * 2.992 s) = 0, 129, 258, 387 frames; row 4 (516) does not fit
    assert len(data) == 4 and data.group_names == [path]
    np.testing.assert_array_equal(data.targets, teacher.scores[path][:4])
    y = class_track(0, 10, sr=SR, duration=12.0)
    exact = log_mel_chunks(y[387 * 512 - 64 * 0 :], enc.frontend, hop_frames=129)[:1]  # the chunk of row 3
    want = enc.chunk_features(exact)
    np.testing.assert_allclose(data.inputs[3].astype(np.float32), want[0], rtol=2e-2, atol=2e-2)


def test_instrument_loader_labels_every_clip_and_its_views_by_family():
    from soundalike.data.instruments import render_instrument_clips
    from soundalike.models.heads import TagMLP
    from soundalike.tagging.data import instrument_data

    enc = load_encoder()
    clips = render_instrument_clips(programs=(0, 40), per_program=2, sample_rate=SR)
    data = instrument_data(enc, TagMLP(), clips, views=1)
    assert len(data) == 2 * len(clips.waves) == 8 and not data.multi_label
    assert [data.tags[i] for i in data.targets] == ["piano"] * 4 + ["strings"] * 4
    np.testing.assert_array_equal(data.groups, [0, 0, 1, 1, 2, 2, 3, 3])
    assert not np.allclose(data.inputs[0], data.inputs[1])  # the view differs from the clip
    with pytest.raises(ParameterError, match="encoder's 22050 Hz"):
        instrument_data(enc, TagMLP(), render_instrument_clips(programs=(0,), per_program=1, sample_rate=16000))


@pytest.mark.parametrize("kind", ["conv", "mlp"])
def test_tiny_heads_tag_unseen_generated_tracks_above_chance(tiny_heads, kind, tmp_path):
    from soundalike.evaluation.metrics import per_tag_auc
    from soundalike.models.heads import load_head
    from soundalike.tagging.data import teacher_data
    from soundalike.tagging.train import predict

    enc, head = tiny_heads["enc"], tiny_heads[kind]
    test = teacher_data(enc, head.net, _teacher(tmp_path, (10, 11)))
    scores = predict(head.net, test.inputs, multi_label=head.multi_label)
    truth = test.targets.argmax(1)
    res = per_tag_auc(np.eye(3, dtype=bool)[truth], scores, head.tags)
    assert res["mean_roc_auc"] > 0.9 and res["tags_scored"] == 3  # chance: 0.5
    assert (scores.argmax(1) == truth).mean() > 0.8  # chance: 1/3
    back = load_head(tiny_heads[f"{kind}_path"])
    np.testing.assert_allclose(back.scores(test.inputs[:4].astype(np.float32)),
                               head.scores(test.inputs[:4].astype(np.float32)), atol=1e-6)
    if not head.multi_label:
        np.testing.assert_allclose(scores.sum(1), 1.0, atol=1e-5)


def test_head_refuses_another_encoder_and_damaged_weights(tiny_heads, tmp_path):
    from soundalike import create_encoder
    from soundalike.models.heads import load_head
    from soundalike.tagging.tagger import Tagger, load_tagger

    with pytest.raises(ModelError, match="retrain"):
        load_tagger([tiny_heads["conv_path"]], model=create_encoder("contrastive_cnn_small"))
    with pytest.raises(ModelError, match="share tag names"):
        Tagger(tiny_heads["enc"], [tiny_heads["conv"], tiny_heads["conv"]])
    with pytest.raises(ModelError, match="not a file, and not a shipped head"):
        load_head(tmp_path / "nothing")
    import shutil

    stem = tmp_path / "copy"
    for ext in (".json", ".safetensors"):
        shutil.copy(str(tiny_heads["conv_path"]).replace(".safetensors", ext), str(stem) + ext)
    other = tiny_heads["mlp_path"]
    shutil.copy(other, str(stem) + ".safetensors")
    with pytest.raises(ModelError):
        load_head(stem)


def test_one_encoder_pass_gives_the_embedding_and_the_tags(tiny_heads):
    from soundalike.features.mel import log_mel_chunks

    enc, conv, mlp = tiny_heads["enc"], tiny_heads["conv"], tiny_heads["mlp"]
    chunks = log_mel_chunks(class_track(2, 3, sr=SR, duration=9.0), enc.frontend, hop_frames=64)
    emb, (s_conv, s_mlp) = enc.embed_with_heads(chunks, [conv, mlp])
    np.testing.assert_allclose(emb, enc.embed_chunks(chunks), atol=1e-5)
    np.testing.assert_allclose(s_mlp, mlp.scores(enc.chunk_features(chunks)), atol=1e-5)
    assert s_conv.shape == (len(chunks), 3) and ((s_conv >= 0) & (s_conv <= 1)).all()


def test_timeline_length_and_alignment(tiny_heads):
    from soundalike.tagging.tagger import Tagger

    tagger = Tagger(tiny_heads["enc"], [tiny_heads["conv"]])
    y = np.concatenate([class_track(0, 11, sr=SR, duration=15.0), class_track(4, 11, sr=SR, duration=15.0)])
    res = tagger.tag_waveform(y)
    hop = 65 * 512 / SR  # 1.5 s rounded to whole frames
    n_frames = 1 + len(y) // 512
    assert tagger.hop_frames == 65 and res.hop_seconds == pytest.approx(hop)
    assert len(res.timeline) == len(res.times) == 1 + (n_frames - 129) // 65
    np.testing.assert_allclose(res.times, np.arange(len(res.times)) * hop)
    ends = res.times + res.chunk_seconds
    first, second = res.timeline[ends < 14.5], res.timeline[res.times > 15.5]
    assert len(first) >= 5 and len(second) >= 5
    assert (first.argmax(1) == 0).mean() > 0.8 and (second.argmax(1) == 2).mean() > 0.8  # the change is at 15 s
    np.testing.assert_allclose(res.track, res.timeline.mean(0), atol=1e-6)
    d = res.to_dict(timeline=True)
    assert len(d["timeline"]) == len(res.times) and d["timeline"][1]["start"] == pytest.approx(hop, abs=1e-3)
    assert d["timeline"][0]["end"] == pytest.approx(res.chunk_seconds, abs=1e-3) and set(d["tags"]) == set(TAGS)
    short = tagger.tag_waveform(y[: SR])  # shorter than one chunk: one padded chunk
    assert len(short.timeline) == 1
    with pytest.raises(ParameterError):
        tagger.tag_waveform(np.zeros(0, np.float32))


def test_catalog_stores_tags_at_index_time_and_filters_similar(tiny_heads, tmp_path, capsys):
    from soundalike.cli import main
    from soundalike.tagging.tagger import Tagger

    enc, conv = tiny_heads["enc"], tiny_heads["conv"]
    music = tmp_path / "music"
    _teacher(music, (20, 21, 22), duration=9.0)
    cat = Catalog.create(tmp_path / "cat", fingerprint_model=None, tag_heads=[str(tiny_heads["conv_path"])])
    cat.add([music])
    assert cat.tag_names == TAGS and len(cat) == 9
    ids, scores = cat.tag_matrix()
    assert len(ids) == 9
    tagger = Tagger(enc, [conv])
    t = cat.tracks()[0]
    from soundalike.audio.io import decode

    want = tagger.tag_waveform(decode(t.path, sr=SR).samples, hop_frames=129)
    stored = cat.track_tags(t.id)
    np.testing.assert_allclose(stored.track, want.track, atol=1e-5)  # same chunks as the embedding pass
    np.testing.assert_allclose(stored.timeline, want.timeline, atol=2e-3)  # float16 on disk
    assert len(stored.timeline) == t.n_chunks and stored.hop_seconds == pytest.approx(129 * 512 / SR)
    # --where: exactly the tracks whose stored score passes, ranked as without the filter
    high = scores[:, TAGS.index("high")]
    allowed = set(ids[high > 0.5].tolist())
    assert 0 < len(allowed) < 9
    q = next(tr for tr in cat.tracks() if "c0_" in tr.path)
    got = similar(cat, q.id, k=9, where="tag:high>0.5")
    assert {m.track.id for m in got} == allowed - {q.id}
    full = [m.track.id for m in similar(cat, q.id, k=9) if m.track.id in allowed]
    assert [m.track.id for m in got] == full
    assert similar(cat, q.id, k=9, where=["tag:high>0.5", "tag:high<=0.5"]) == []
    assert set(cat.filter_tracks("tag:low >= 0.5").tolist()) == set(ids[scores[:, 0] >= 0.5].tolist())
    with pytest.raises(ParameterError, match="did you mean high"):
        similar(cat, q.id, where="tag:hihg>0.5")
    # duplicates copy their tags; removal takes them away
    dup = tmp_path / "dup"
    dup.mkdir()
    (dup / "copy.wav").write_bytes(open(q.path, "rb").read())
    cat.add([dup])
    copy = cat.track(str(dup / "copy.wav"))
    np.testing.assert_array_equal(cat.track_tags(copy.id).track, cat.track_tags(q.id).track)
    q_scores = cat.track_tags(q.id).track
    cat.remove([copy.id])
    assert cat.store.execute("SELECT COUNT(*) FROM track_tags").fetchone()[0] == 9
    assert cat.info()["tags"]["tracks"] == 9
    cat.close()
    # the CLI: stored tags of a track, --where, and errors
    root = str(tmp_path / "cat")
    assert main(["tag", str(q.id), "--catalog", root, "--json", "--timeline"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["tags"]) == 3 and len(d["timeline"]) == q.n_chunks
    assert list(d["tags"])[0] == TAGS[int(np.argmax(q_scores))]
    assert main(["similar", str(q.id), "--catalog", root, "--where", "tag:high>0.5", "-k", "9", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {m["id"] for m in d["matches"]} == allowed - {q.id} and d["where"] == ["tag:high>0.5"]
    assert main(["similar", str(q.id), "--catalog", root, "--where", "piano>0.5"]) == 2
    assert "tag:NAME>VALUE" in capsys.readouterr().err
    assert main(["tag", "--list-tags", "--catalog", root, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tags"] == list(TAGS)
    assert main(["info", "--catalog", root, "--tracks", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tags"]["n_tags"] == 3 and all(len(tr["top_tags"]) == 3 for tr in info["track_list"])


def test_catalog_of_a_custom_model_keeps_no_tags_by_default_and_refuses_other_heads(tiny_heads, tmp_path):
    from soundalike import create_encoder

    small = create_encoder("contrastive_cnn_small")
    small.save(tmp_path / "small")
    small = load_encoder(tmp_path / "small")
    cat = Catalog.create(tmp_path / "cat", model=small, fingerprint_model=None)
    assert not cat.has_tags and cat.info()["tags"] is None
    with pytest.raises(ParameterError, match="keeps no tags"):
        cat.filter_tracks("tag:low>0.5")
    with pytest.raises(ModelError, match="retrain"):
        cat.enable_tags([str(tiny_heads["conv_path"])])
    cat.close()


def test_enable_tags_fills_old_tracks_and_refuses_other_heads_without_rebuild(tiny_heads, tmp_path):
    from soundalike.errors import CatalogMismatchError

    music = tmp_path / "music"
    _teacher(music, (30,), duration=7.0)
    cat = Catalog.create(tmp_path / "cat", fingerprint_model=None, tag_heads=None)
    cat.add([music])
    assert not cat.has_tags
    rep = cat.enable_tags([str(tiny_heads["conv_path"])])
    assert rep.tagged == 3 and len(cat.tag_matrix()[0]) == 3
    with pytest.raises(CatalogMismatchError, match="--rebuild-tags"):
        cat.enable_tags([str(tiny_heads["mlp_path"])])
    assert cat.tag_names == TAGS  # nothing changed
    rep = cat.enable_tags([str(tiny_heads["mlp_path"])], rebuild=True)
    assert rep.tagged == 3 and cat.tag_names == ("one/low", "one/mid", "one/high")
    np.testing.assert_allclose(cat.tag_matrix()[1].sum(1), 1.0, atol=1e-4)  # softmax head
    cat.close()
    with Catalog.open(tmp_path / "cat") as again:  # the heads are found again from the catalog's meta
        assert again.tagger.name == "tiny-mlp"


def test_cli_tag_file(tiny_heads, tmp_path, capsys):
    from soundalike.cli import main

    path = save(tmp_path / "q.wav", class_track(4, 12, sr=SR, duration=10.0), SR)
    heads = f"{tiny_heads['conv_path']},{tiny_heads['mlp_path']}"
    assert main(["tag", str(path), "--heads", heads, "--json", "--timeline"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert list(d["tags"])[0] in ("high", "one/high") and len(d["tags"]) == 6
    assert len(d["timeline"]) == 1 + (1 + len(class_track(4, 12, sr=SR, duration=10.0)) // 512 - 129) // 65
    assert main(["tag", str(path), "--heads", heads, "--timeline"]) == 0
    out = capsys.readouterr().out
    assert "timeline" in out and "high" in out
    assert main(["tag", str(tmp_path / "missing.wav"), "--heads", heads]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_where_conditions_parse_and_explain_mistakes():
    from soundalike.tagging.filters import parse_where

    tags = ("piano", "male vocal", "family/piano")
    c = parse_where(["tag:piano>0.5", "tag: male vocal <= .25", "tag:family/piano>=1"], tags)
    assert [(x.tag, x.op, x.value) for x in c] == [("piano", ">", 0.5), ("male vocal", "<=", 0.25),
                                                    ("family/piano", ">=", 1.0)]
    np.testing.assert_array_equal(c[0].test(np.array([0.4, 0.5, 0.6])), [False, False, True])
    np.testing.assert_array_equal(c[1].test(np.array([0.25, 0.3])), [True, False])
    with pytest.raises(ParameterError, match="tag:NAME>VALUE"):
        parse_where("piano>0.5", tags)
    with pytest.raises(ParameterError, match="did you mean"):
        parse_where("tag:pian>0.5", tags)
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        parse_where("tag:piano>1.5", tags)
    with pytest.raises(ParameterError, match="keeps no tags"):
        parse_where("tag:piano>0.5", ())


def test_shipped_heads_fit_the_default_model_and_name_rendered_instruments():
    from soundalike.data.instruments import render_instrument_clips
    from soundalike.models.heads import list_shipped_heads
    from soundalike.tagging.tagger import DEFAULT_HEADS, load_tagger

    assert set(DEFAULT_HEADS) <= set(list_shipped_heads())
    tagger = load_tagger()
    assert len(tagger.tags) == 66 and "male vocal" in tagger.tags and "family/piano" in tagger.tags
    fam = [j for j, t in enumerate(tagger.tags) if t.startswith("family/")]
    clips = render_instrument_clips(programs=(0, 33, 56, 73), per_program=2, seed=99)  # seeds never trained on
    want = ["family/piano"] * 2 + ["family/bass"] * 2 + ["family/brass"] * 2 + ["family/pipe"] * 2
    got = []
    for y in clips.waves:
        res = tagger.tag_waveform(y)
        np.testing.assert_allclose(res.track[fam].sum(), 1.0, atol=1e-4)  # one family per chunk
        got.append(tagger.tags[fam[int(np.argmax(res.track[fam]))]])
    assert sum(g == w for g, w in zip(got, want, strict=True)) >= 7, got


def test_cli_head_choices_are_the_registered_head_kinds():
    from soundalike.models.heads import HEADS
    from soundalike.models.registry import HEAD_KINDS

    assert sorted(HEADS) == sorted(HEAD_KINDS)
