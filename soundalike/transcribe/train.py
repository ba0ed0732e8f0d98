"""Train the transcription network on rendered music whose notes are known (:mod:`soundalike.transcribe.pieces`).

Every example is a fresh piece (generated polyphony, a pop piece over drums, or an excerpt of a music21
corpus work on random instruments) rendered with one of the training soundfonts and degraded as
recordings are (EQ, reverb, noise, MP3, level: :func:`soundalike.events.train.degrade`). Targets per
key and frame: onset (1 at the note's first frame, 0.5 at the next), frame (the note's span), offset, and
the velocity at onsets. A data-loader worker renders while the network trains. Validation renders
held-out seeds with the training fonts; the decoder's thresholds are chosen there and stored with the
model. ``fluid-soundfont-gm`` is never used here: it is the benchmark's unseen font.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.events.train import degrade, match_events, training_soundfonts
from soundalike.train.base import ModelSolver, warmup_cosine
from soundalike.transcribe.decode import NoteDecoder, decode_notes
from soundalike.transcribe.model import (
    HEADS,
    N_PITCHES,
    NotesFeatures,
    NotesFrontend,
    TranscriptionModel,
    build_net,
    loudness_gain,
    net_config,
)
from soundalike.transcribe.notes import MIN_PITCH, Note
from soundalike.transcribe.pieces import (
    DEFAULT_CORPUS_CACHE,
    load_corpus_cache,
    make_piece,
    render_notes_piece,
)

VALID_SEED0 = 10_000_000  # validation pieces' seeds start here; training seeds stay below
TEST_SEED0 = 20_000_000  # the benchmark's


def note_targets(notes: list[Note], n_frames: int, fps: float) -> np.ndarray:
    """Targets [shape=(4, N_PITCHES, n_frames)]: onset, frame, offset, velocity (0-1 at onset frames)."""
    out = np.zeros((len(HEADS), N_PITCHES, n_frames), np.float32)
    for n in notes:
        k = n.pitch - MIN_PITCH
        if not 0 <= k < N_PITCHES:
            continue
        a = int(round(n.onset * fps))
        b = max(a + 1, int(round(n.offset * fps)))
        if a >= n_frames or b <= 0:
            continue
        out[1, k, max(a, 0): min(b, n_frames)] = 1.0
        if 0 <= a < n_frames:
            out[0, k, a] = 1.0
            out[3, k, a] = n.velocity / 127.0
            if a + 1 < n_frames:
                out[0, k, a + 1] = max(out[0, k, a + 1], 0.5)
        if 0 <= b < n_frames:
            out[2, k, b] = 1.0
    return out


def note_f1(est: list[Note], ref: list[Note], window: float = 0.05) -> tuple[float, float, float]:
    """(precision, recall, F1) of note onsets: a note matches a reference note of the same pitch whose onset
    is within ``window`` s, one to one (mir_eval's onset-only note F-measure for well-separated notes)."""
    if not est and not ref:
        return 1.0, 1.0, 1.0
    hits = 0
    for p in {n.pitch for n in est} & {n.pitch for n in ref}:
        hits += match_events(np.array([n.onset for n in est if n.pitch == p]),
                             np.array([n.onset for n in ref if n.pitch == p]), window)
    prec = hits / max(1, len(est))
    rec = hits / max(1, len(ref))
    return prec, rec, 2 * hits / max(1, len(est) + len(ref))


def make_example(seed: int, *, frontend: NotesFrontend, seconds: float, soundfonts: list[str],
                 corpus: list[dict[str, Any]] | None, augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(waveform of exactly ``seconds`` at the front-end's rate, normalised as inference does; targets)."""
    from soundalike.data.render import cached_synth

    rng = np.random.default_rng([seed, 13])
    piece = make_piece(seed, seconds=seconds + 0.5, corpus=corpus)
    font = soundfonts[int(rng.integers(0, len(soundfonts)))]
    y = render_notes_piece(piece, soundfont=font, sample_rate=frontend.sample_rate,
                           synth=cached_synth(font, frontend.sample_rate))
    n = int(seconds * frontend.sample_rate)
    y = np.pad(y, (0, max(0, n - len(y))))[:n]
    if augment:
        y = degrade(y, frontend.sample_rate, rng)
    y = (y * np.float32(loudness_gain(y, frontend))).astype(np.float32)
    n_frames = n // frontend.hop_length + 1
    return y, note_targets(piece.notes, n_frames, frontend.fps)


def _training_example(seed: int, *, frontend: NotesFrontend, seconds: float, soundfonts: list[str],
                      corpus_path: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`make_example` with the corpus cache read (once per process) from ``corpus_path``."""
    return make_example(seed, frontend=frontend, seconds=seconds, soundfonts=soundfonts,
                        corpus=load_corpus_cache(corpus_path))


@dataclass
class NotesTrainConfig:
    """A transcription training run."""

    out: str = "runs/notes"
    steps: int = 2000
    batch: int = 8
    seconds: float = 5.0
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    seed: int = 0
    workers: int = 1
    threads: int = 1
    valid_pieces: int = 24
    valid_every: int = 250
    checkpoint_every: int = 50
    corpus: str = str(DEFAULT_CORPUS_CACHE)  # the music21 notes cache (soundalike datasets notes-corpus)
    net_config: dict[str, Any] = field(default_factory=dict)
    frontend: dict[str, Any] = field(default_factory=dict)
    name: str = "notes_hcnn-gm"
    pos_weights: tuple[float, float, float] = (8.0, 2.0, 4.0)  # onset, frame, offset: positives are rare


class NotesSolver(ModelSolver):
    desc = "notes"

    def __init__(self, cfg: NotesTrainConfig, *, log: Callable[[str], None] | None = None) -> None:
        super().__init__(cfg, log=log)
        self.frontend = NotesFrontend.from_dict(cfg.frontend)
        self.fonts = training_soundfonts()
        self.decoder = NoteDecoder()
        self._valid: list[tuple[np.ndarray, list[Note]]] | None = None

    def resumable_config(self) -> dict[str, Any]:
        d = asdict(self.cfg)
        for k in ("steps", "valid_every", "checkpoint_every", "workers", "threads", "out", "valid_pieces", "corpus"):
            d.pop(k)
        return d

    def build(self) -> None:
        import torch

        cfg = {**net_config(self.frontend), **self.cfg.net_config}
        self.net = build_net("notes_hcnn", cfg)
        self.features = NotesFeatures(self.frontend)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: warmup_cosine(s, steps=self.cfg.steps, warmup=self.cfg.warmup, floor=0.03))
        self.pos_weight = torch.tensor(self.cfg.pos_weights)[None, :, None, None]

    def make_example(self) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
        return functools.partial(_training_example, frontend=self.frontend, seconds=self.cfg.seconds,
                                 soundfonts=self.fonts, corpus_path=self.cfg.corpus)

    def loss(self, logits: Any, t: Any) -> Any:
        import torch

        n = min(logits.shape[-1], t.shape[-1])
        logits, t = logits[..., :n], t[..., :n]
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, :3], t[:, :3], pos_weight=self.pos_weight)
        mask = (t[:, 0] >= 1.0).float()
        vel = ((torch.sigmoid(logits[:, 3]) - t[:, 3]) ** 2 * mask).sum() / mask.sum().clamp(min=1.0)
        return bce + vel

    def train_step(self) -> dict[str, float]:
        self.net.train()
        y, t = next(self.batches(VALID_SEED0))
        loss = self.loss(self.net(self.features(y)), t)
        self.optimise(loss)
        return {"loss": float(loss.detach())}

    def _valid_set(self) -> list[tuple[np.ndarray, list[Note]]]:
        if self._valid is None:
            from soundalike.data.render import cached_synth

            corpus = load_corpus_cache(self.cfg.corpus)
            items = []
            for k in range(self.cfg.valid_pieces):
                seed = VALID_SEED0 + k
                rng = np.random.default_rng(seed)
                piece = make_piece(seed, seconds=10.0, corpus=corpus)
                font = self.fonts[k % len(self.fonts)]
                y = render_notes_piece(piece, soundfont=font, sample_rate=self.frontend.sample_rate,
                                       synth=cached_synth(font, self.frontend.sample_rate))
                if k % 2:
                    y = degrade(y, self.frontend.sample_rate, rng)
                items.append((y, piece.notes))
            self._valid = items
        return self._valid

    def model(self) -> TranscriptionModel:
        return TranscriptionModel(self.net, name=self.cfg.name, frontend=self.frontend, decoder=self.decoder,
                                  runtime="torch", metadata={"steps": self.step, "soundfonts": [Path(f).name for f in self.fonts],
                                            "corpus_works": len(load_corpus_cache(self.cfg.corpus))})

    recalibration_batches = 8

    def valid(self) -> dict[str, float] | None:
        self.recalibrate()
        model = self.model()
        acts = [(model.activations(y), ref) for y, ref in self._valid_set()]
        best = (-1.0, self.decoder.onset_threshold, self.decoder.frame_threshold, self.decoder.reonset_threshold)
        for on_th, fr_th, re_th in itertools.product((0.3, 0.4, 0.5, 0.6, 0.7, 0.8), (0.3, 0.4, 0.5),
                                                     (0.0, 0.8, 0.9)):
            if 0 < re_th <= on_th:
                continue
            dec = NoteDecoder(onset_threshold=on_th, frame_threshold=fr_th, reonset_threshold=re_th)
            f = float(np.mean([note_f1(decode_notes(a, fps=self.frontend.fps, decoder=dec), ref)[2]
                               for a, ref in acts]))
            if f > best[0]:
                best = (f, on_th, fr_th, re_th)
        _, self.decoder.onset_threshold, self.decoder.frame_threshold, self.decoder.reonset_threshold = best
        return {"note_f1": round(best[0], 4), "onset_threshold": best[1], "frame_threshold": best[2],
                "reonset_threshold": best[3]}


def train_notes(cfg: NotesTrainConfig, *, progress: bool = False,
                log: Callable[[str], None] | None = None) -> tuple[NotesSolver, Path]:
    """Train (resuming ``cfg.out``'s checkpoint when there is one), then export the model there."""
    solver, path = NotesSolver.train_and_export(cfg, progress=progress, log=log)
    return solver, path
