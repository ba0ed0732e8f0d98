"""Training the transcription network: targets from known notes, a short run that exports a loadable model
and resumes where it stopped."""

from __future__ import annotations

import numpy as np
import pytest

from soundalike.transcribe.notes import Note


def test_targets_mark_onsets_spans_offsets_and_velocities():
    from soundalike.transcribe.model import HEADS
    from soundalike.transcribe.train import note_targets

    t = note_targets([Note(0.1, 0.3, 60, 127), Note(0.2, 0.25, 21, 64), Note(0.0, 0.5, 120, 80)], 40, 50.0)
    onset, frame, offset, vel = (t[HEADS.index(h)] for h in ("onset", "frame", "offset", "velocity"))
    k = 60 - 21
    assert onset[k, 5] == 1.0 and onset[k, 6] == 0.5 and onset[k].sum() == 1.5
    assert frame[k, 5:15].all() and frame[k].sum() == 10 and offset[k, 15] == 1.0
    assert vel[k, 5] == 1.0 and vel[0, 10] == pytest.approx(64 / 127)
    assert t.shape == (4, 88, 40)  # pitch 120 is off the keyboard: no target


@pytest.mark.slow
def test_a_short_run_exports_a_model_and_resumes(tmp_path):
    from soundalike.transcribe import load_transcription_model
    from soundalike.transcribe.train import NotesTrainConfig, train_notes

    cfg = NotesTrainConfig(out=str(tmp_path / "run"), steps=2, batch=2, seconds=2.0, valid_pieces=1, valid_every=0,
                           checkpoint_every=1, workers=0, corpus=str(tmp_path / "no-cache.jsonl.gz"))
    solver, path = train_notes(cfg)
    assert solver.step == 2 and 0.0 <= solver.history[-1]["note_f1"] <= 1.0
    model = load_transcription_model(path)
    assert model.metadata["steps"] == 2 and model.decoder.onset_threshold == solver.history[-1]["onset_threshold"]
    first = {k: v.clone() for k, v in solver.net.state_dict().items()}
    cfg.steps = 3
    again, _ = train_notes(cfg)  # resumes at step 2: one more step
    assert again.step == 3
    changed = [k for k, v in again.net.state_dict().items() if v.dtype.is_floating_point and not np.allclose(
        v.numpy(), first[k].numpy())]
    assert changed
