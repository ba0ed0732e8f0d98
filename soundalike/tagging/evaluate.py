"""How good are the tag heads? Student vs teacher, instrument families on another soundfont, and an MFCC +
logistic-regression baseline trained and tested on exactly the same chunks in the same run.

- :func:`evaluate_teacher`: per-tag ROC-AUC and PR-AUC of a head against the teacher on held-out audio,
  the teacher's top ``k`` tags of each chunk (or each track) counting as its labels;
- :func:`evaluate_instruments`: family accuracy on clips rendered with a soundfont the head never heard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from soundalike.evaluation.metrics import per_tag_auc
from soundalike.tagging.data import TagData
from soundalike.tagging.train import TagTrainConfig, predict, train_head


class MFCCLogistic(nn.Module):
    """The baseline: mean and standard deviation of 20 MFCCs of a log-mel chunk -> logistic regression.

    It reads the chunk itself (``reads_chunks``), not the encoder's maps; MFCCs are the orthonormal DCT-II
    of the same dB mel the encoder sees.
    """

    reads_chunks = True

    @dataclass(frozen=True)
    class Config:
        n_mels: int = 128
        n_mfcc: int = 20
        n_tags: int = 1
        tap: int = -1  # unused: the baseline reads chunks

    def __init__(self, config: Config | None = None) -> None:
        super().__init__()
        self.config = c = config or self.Config()
        k = np.arange(c.n_mfcc)[:, None]
        m = np.arange(c.n_mels)[None, :]
        dct = np.cos(np.pi / c.n_mels * (m + 0.5) * k) * np.sqrt(2.0 / c.n_mels)
        dct[0] /= np.sqrt(2.0)
        self.register_buffer("dct", torch.as_tensor(dct, dtype=torch.float32))
        self.net = nn.Sequential(nn.Linear(2 * c.n_mfcc, c.n_tags))

    def head_input(self, chunks: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) dB -> (B, 2 * n_mfcc): MFCC means and standard deviations over time."""
        c = torch.einsum("km,bmt->bkt", self.dct, chunks)
        return torch.cat([c.mean(dim=-1), c.std(dim=-1)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


BASELINE_TRAIN = TagTrainConfig(head="mfcc_logistic", steps=3000, batch=256, lr=1e-2, weight_decay=1e-4,
                                dropout=0.0, mask=0.0)


def fit_baseline(data: TagData, n_mels: int, cfg: TagTrainConfig = BASELINE_TRAIN) -> MFCCLogistic:
    """Logistic regression (per tag, or softmax over classes) on MFCC statistics of ``data``'s chunks
    (``data`` built with an :class:`MFCCLogistic` as its head)."""
    n_tags = len(data.tags)
    net = MFCCLogistic(MFCCLogistic.Config(n_mels=n_mels, n_tags=n_tags))
    return train_head(net, data, cfg)


def top_k_labels(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean labels [shape=scores.shape]: each row's ``k`` highest-scoring tags."""
    lab = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(lab, np.argsort(-scores, axis=1, kind="stable")[:, :k], True, axis=1)
    return lab


def _per_track(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return np.stack([values[groups == g].mean(axis=0) for g in np.unique(groups)])


def auc_report(teacher: np.ndarray, student: np.ndarray, groups: np.ndarray, tags: tuple[str, ...],
               k: int) -> dict[str, Any]:
    """Per-tag AUCs of student scores against the teacher's top ``k`` tags, per chunk and per track."""
    chunk = per_tag_auc(top_k_labels(teacher, k), student, tags)
    track = per_tag_auc(top_k_labels(_per_track(teacher, groups), k), _per_track(student, groups), tags)
    return {"chunk": chunk, "track": track}


def evaluate_teacher(encoder: Any, head: Any, held_out: Any, *, train: Any = None, k: int = 3,
                     progress: bool = False) -> dict[str, Any]:
    """A teacher head (:class:`~soundalike.models.heads.HeadModel`) against the teacher on ``held_out``
    (:class:`~soundalike.tagging.teacher.TeacherTags` of audio it was not trained on). With ``train`` (the
    training teacher set), the MFCC baseline is fitted on it and scored on the same held-out chunks."""
    from soundalike.tagging.data import teacher_data

    head.check_encoder(encoder)
    test = teacher_data(encoder, head.net, held_out, progress=progress)
    student = predict(head.net, test.inputs, multi_label=True)
    out: dict[str, Any] = {"k": k, "tracks": len(test.group_names), "chunks": len(test), "tags": list(test.tags),
                           "student": auc_report(test.targets, student, test.groups, test.tags, k)}
    if train is not None:
        n_mels = encoder.frontend.n_mels
        probe = MFCCLogistic(MFCCLogistic.Config(n_mels=n_mels))
        base_train = teacher_data(encoder, probe, train, progress=progress)
        base_test = teacher_data(encoder, probe, held_out, progress=progress)
        net = fit_baseline(base_train, n_mels)
        base = predict(net, base_test.inputs, multi_label=True)
        out["baseline"] = auc_report(base_test.targets, base, base_test.groups, test.tags, k)
        out["baseline_train_tracks"] = len(base_train.group_names)
    return out


def evaluate_instruments(encoder: Any, head: Any, *, test_soundfont: str, train_soundfont: str | None = None,
                         per_program: int = 8, seed: int = 1) -> dict[str, Any]:
    """Family accuracy of an instrument head on clips rendered with ``test_soundfont`` (seeded differently
    from training), beside the MFCC baseline trained on ``train_soundfont`` clips (default TimGM6mb)."""
    from soundalike.data.instruments import render_instrument_clips
    from soundalike.tagging.data import instrument_data

    head.check_encoder(encoder)
    sr, n_mels = encoder.frontend.sample_rate, encoder.frontend.n_mels
    test_clips = render_instrument_clips(soundfont=test_soundfont, per_program=per_program, sample_rate=sr, seed=seed)
    test = instrument_data(encoder, head.net, test_clips)
    pred = predict(head.net, test.inputs, multi_label=False).argmax(axis=1)
    probe = MFCCLogistic(MFCCLogistic.Config(n_mels=n_mels))
    train_clips = render_instrument_clips(soundfont=train_soundfont, per_program=per_program, sample_rate=sr)
    base_net = fit_baseline(instrument_data(encoder, probe, train_clips), n_mels)
    base_pred = predict(base_net, instrument_data(encoder, probe, test_clips).inputs, multi_label=False).argmax(axis=1)
    names = test.tags
    y = test.targets

    def per_family(p: np.ndarray) -> dict[str, float]:
        return {names[c]: round(float((p[y == c] == c).mean()), 4) for c in np.unique(y)}

    return {"test_soundfont": str(test_soundfont), "train_soundfont": str(train_clips.soundfont),
            "clips": len(y), "chance": round(float(np.bincount(y).max() / len(y)), 4),
            "student": {"accuracy": round(float((pred == y).mean()), 4), "per_family": per_family(pred)},
            "baseline": {"accuracy": round(float((base_pred == y).mean()), 4), "per_family": per_family(base_pred)},
            "confusion": np.bincount(y * len(names) + pred, minlength=len(names) ** 2).reshape(len(names), -1).tolist(),
            "families": list(names)}
