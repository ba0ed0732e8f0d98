"""Train the events network on generated, rendered music (:mod:`soundalike.events.pieces`).

Every example is a fresh piece (its own tempo, metre, style, instruments) rendered with one of the
training soundfonts (half of the drum parts played with a sampled Hydrogen kit, :mod:`soundalike.events.kits`)
and degraded the way recordings are (EQ, reverb, noise, MP3, gain); its targets are
the exact onset, beat, downbeat and drum-hit frames, widened by a frame either side at half weight
(Böck et al.). A data-loader worker renders while the network trains. Validation renders held-out seeds
with the training fonts; the decoder's peak thresholds are chosen there and stored with the model.
``fluid-soundfont-gm`` is never used here: it is the benchmark's unseen font.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.events.kits import installed_kits
from soundalike.events.model import (
    OUTPUTS,
    DecoderSettings,
    EventsFrontend,
    EventsModel,
    build_net,
    loudness_gain,
)
from soundalike.events.pieces import Piece, generate_piece, render_piece
from soundalike.train.base import ModelSolver, warmup_cosine

#: Debian's OPL3 FM font (``apt-get install opl3-soundfont``): a second, very different training timbre set.
OPL3_SOUNDFONT = Path("/usr/share/sounds/sf2/OPL-3_FM_128M.sf2")
VALID_SEED0 = 10_000_000  # validation pieces' seeds start here; training seeds stay below
TEST_SEED0 = 20_000_000  # the benchmark's


def training_soundfonts() -> list[str]:
    """``TimGM6mb.sf2`` (inside pretty_midi), and the OPL3 FM font where Debian's package is installed."""
    from soundalike.data.render import default_soundfont

    fonts = [str(default_soundfont())]
    if OPL3_SOUNDFONT.is_file():
        fonts.append(str(OPL3_SOUNDFONT))
    return fonts


def targets_for(piece: Piece, n_frames: int, fps: float, outputs: tuple[str, ...] = OUTPUTS) -> np.ndarray:
    """Frame targets [shape=(len(outputs), n_frames)]: 1 at each event's nearest frame, 0.5 beside it."""
    times = {"onset": piece.onsets, "beat": piece.beats, "downbeat": piece.downbeats, **piece.drums}
    out = np.zeros((len(outputs), n_frames), np.float32)
    for i, name in enumerate(outputs):
        f = np.rint(np.asarray(times.get(name, []), np.float64) * fps).astype(np.int64)
        for d, w in ((-1, 0.5), (1, 0.5), (0, 1.0)):
            g = f + d
            g = g[(g >= 0) & (g < n_frames)]
            out[i, g] = np.maximum(out[i, g], w)
    return out


def degrade(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """What recordings do to music: EQ, room reverb, noise of several colours, MP3, level."""
    from soundalike.augment.waveform import add_noise, codec, random_eq, reverb

    if rng.random() < 0.5:
        y = random_eq(y, sr, rng)
    if rng.random() < 0.3:
        y = reverb(y, sr, rng, rt60=float(rng.uniform(0.2, 1.2)), wet=float(rng.uniform(0.1, 0.4)))
    if rng.random() < 0.5:
        y = add_noise(y, float(rng.uniform(0.0, 30.0)), rng, color=str(rng.choice(["white", "pink", "brown"])))
    if rng.random() < 0.1:
        y = codec(y, sr, bitrate_kbps=float(rng.choice([32, 64, 128])))
    return (y * np.float32(10 ** (rng.uniform(-12, 6) / 20))).astype(np.float32)


def render_example(piece: Piece, rng: np.random.Generator, *, sample_rate: int, soundfonts: list[str],
                   kits: list[str] | None = None, kit_share: float = 0.5) -> np.ndarray:
    """``piece`` rendered with a random one of ``soundfonts``; its drums, for ``kit_share`` of pieces with
    drums, with a random one of the sampled ``kits`` (:mod:`soundalike.events.kits`) instead."""
    from soundalike.data.render import cached_synth
    from soundalike.events.kits import cached_kit

    font = soundfonts[int(rng.integers(0, len(soundfonts)))]
    kit = None
    if kits and any(len(v) for v in piece.drums.values()) and rng.random() < kit_share:
        kit = cached_kit(kits[int(rng.integers(0, len(kits)))])
    return render_piece(piece, soundfont=font, sample_rate=sample_rate, synth=cached_synth(font, sample_rate),
                        kit=kit, seed=int(rng.integers(0, 2**31)))


#: Share of training examples that are noise alone (white, pink or brown, with mains hum or not): no events.
NOISE_SHARE = 0.03


def noise_example(rng: np.random.Generator, *, frontend: EventsFrontend, seconds: float) -> np.ndarray:
    """Steady noise without events, normalised as inference does: what a detector must answer with nothing."""
    from soundalike.augment.waveform import colored_noise

    sr = frontend.sample_rate
    n = int(seconds * sr)
    y = colored_noise(n, rng, str(rng.choice(["white", "pink", "brown"])))
    if rng.random() < 0.3:
        t = np.arange(n) / sr
        f0 = float(rng.choice([50.0, 60.0]))
        y = y * 0.3 + sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 5))
    y = (y / (np.abs(y).max() + 1e-9) * 10 ** (rng.uniform(-30, -3) / 20)).astype(np.float32)
    return (y * np.float32(loudness_gain(y, frontend))).astype(np.float32)


def make_example(seed: int, *, frontend: EventsFrontend, seconds: float, soundfonts: list[str],
                 kits: list[str] | None = None, augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(waveform of exactly ``seconds`` at the front-end's rate, normalised as inference does; targets)."""
    rng = np.random.default_rng(seed + 7)
    n_frames = int(seconds * frontend.sample_rate) // frontend.hop_length + 1
    if np.random.default_rng([seed, 3]).random() < NOISE_SHARE:
        return noise_example(np.random.default_rng([seed, 4]), frontend=frontend, seconds=seconds), \
            np.zeros((len(OUTPUTS), n_frames), np.float32)
    piece = generate_piece(seed, seconds=seconds + 0.5)
    y = render_example(piece, rng, sample_rate=frontend.sample_rate, soundfonts=soundfonts, kits=kits)
    n = int(seconds * frontend.sample_rate)
    y = np.pad(y, (0, max(0, n - len(y))))[:n]
    if augment:
        y = degrade(y, frontend.sample_rate, rng)
    y = (y * np.float32(loudness_gain(y, frontend))).astype(np.float32)
    n_frames = n // frontend.hop_length + 1
    return y, targets_for(piece, n_frames, frontend.fps)


@dataclass
class EventsTrainConfig:
    """An events training run."""

    out: str = "runs/events"  # checkpoints, log and the exported model
    steps: int = 4300
    batch: int = 12
    seconds: float = 8.0  # per example
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 200
    seed: int = 0
    workers: int = 1  # data-loader processes rendering examples
    threads: int = 1  # torch threads for the network
    valid_pieces: int = 40
    valid_every: int = 250
    checkpoint_every: int = 100
    net_config: dict[str, Any] = field(default_factory=dict)
    frontend: dict[str, Any] = field(default_factory=dict)
    name: str = "events_tcn-gm"
    pos_weights: tuple[float, ...] = (2.0, 4.0, 8.0, 4.0, 4.0, 2.0)  # per output: positives are rare


def match_events(est: np.ndarray, ref: np.ndarray, window: float) -> int:
    """How many estimated times pair one-to-one with reference times within ``window`` s (greedy in time,
    as mir_eval's bipartite matching is for well-separated events)."""
    i = j = hits = 0
    est, ref = np.sort(est), np.sort(ref)
    while i < len(est) and j < len(ref):
        d = est[i] - ref[j]
        if abs(d) <= window:
            hits, i, j = hits + 1, i + 1, j + 1
        elif d < 0:
            i += 1
        else:
            j += 1
    return hits


def f_measure(est: np.ndarray, ref: np.ndarray, window: float = 0.05) -> float:
    """F-measure of estimated against reference event times (1.0 when both are empty)."""
    if len(est) == 0 and len(ref) == 0:
        return 1.0
    hits = match_events(np.asarray(est), np.asarray(ref), window)
    return 2.0 * hits / max(1, len(est) + len(ref))


class EventsSolver(ModelSolver):
    desc = "events"

    def __init__(self, cfg: EventsTrainConfig, *, log: Callable[[str], None] | None = None) -> None:
        super().__init__(cfg, log=log)
        self.frontend = EventsFrontend.from_dict(cfg.frontend)
        self.fonts = training_soundfonts()
        self.kits = [str(k) for k in installed_kits(split="train")]
        self.decoder = DecoderSettings()
        self._valid: list[tuple[np.ndarray, Piece]] | None = None

    def resumable_config(self) -> dict[str, Any]:
        d = asdict(self.cfg)
        for k in ("steps", "valid_every", "checkpoint_every", "workers", "threads", "out", "valid_pieces"):
            d.pop(k)
        return d

    def build(self) -> None:
        import torch

        from soundalike.events.model import EventsFeatures

        self.net = build_net("events_tcn", self.cfg.net_config)
        self.features = EventsFeatures(self.frontend)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: warmup_cosine(s, steps=self.cfg.steps, warmup=self.cfg.warmup, floor=0.02))
        self.pos_weight = torch.tensor(self.cfg.pos_weights[: len(self.net.config.outputs)])[None, :, None]

    def make_example(self) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
        return functools.partial(make_example, frontend=self.frontend, seconds=self.cfg.seconds,
                                 soundfonts=self.fonts, kits=self.kits)

    def train_step(self) -> dict[str, float]:
        import torch

        self.net.train()
        y, t = next(self.batches(VALID_SEED0))
        x = self.features(y)
        logits = self.net(x)
        n = min(logits.shape[-1], t.shape[-1])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits[..., :n], t[..., :n], pos_weight=self.pos_weight)
        self.optimise(loss)
        return {"loss": float(loss.detach())}

    def _valid_set(self) -> list[tuple[np.ndarray, Piece]]:
        if self._valid is None:

            items = []
            for k in range(self.cfg.valid_pieces):
                seed = VALID_SEED0 + k
                rng = np.random.default_rng(seed)
                piece = generate_piece(seed, seconds=20.0)
                y = render_example(piece, rng, sample_rate=self.frontend.sample_rate, soundfonts=self.fonts,
                                   kits=self.kits)
                if k % 2:
                    y = degrade(y, self.frontend.sample_rate, rng)
                items.append((y, piece))
            self._valid = items
        return self._valid

    def model(self) -> EventsModel:
        return EventsModel(self.net, name=self.cfg.name, frontend=self.frontend, decoder=self.decoder,
                           metadata={"steps": self.step, "soundfonts": [Path(f).name for f in self.fonts],
                                     "drum_kits": [Path(k).name for k in self.kits]})

    recalibration_batches = 16

    def valid(self) -> dict[str, float] | None:
        from soundalike.events.decode import decode_events, pick_peaks

        self.recalibrate()
        model = self.model()
        acts = [(model.activations(y), piece) for y, piece in self._valid_set()]
        # each output's peak threshold: the best mean F on these pieces
        names = {"onset": "onsets", "kick": "kick", "snare": "snare", "hihat": "hihat"}
        out: dict[str, float] = {}
        for name in names:
            i = model.outputs.index(name)
            best = (-1.0, 0.5)
            for th in np.arange(0.15, 0.8, 0.05):
                fs = []
                for a, piece in acts:
                    ref = piece.onsets if name == "onset" else piece.drums[name]
                    est = pick_peaks(a[i], fps=self.frontend.fps, threshold=float(th),
                                     combine=self.decoder.combine_seconds)
                    if len(ref) or len(est):
                        fs.append(f_measure(est, ref))
                f = float(np.mean(fs)) if fs else 0.0
                if f > best[0]:
                    best = (f, float(th))
            self.decoder.thresholds[name] = round(best[1], 2)
            out[f"f_{name}"] = round(best[0], 4)
        # the beat decoder's settings: the best mean beat F-measure on these pieces
        best_beat = (-1.0, self.decoder.beat_fraction, self.decoder.beat_odds_scale, self.decoder.prior_octaves)
        for fraction, scale, prior in itertools.product((1 / 8, 1 / 16, 1 / 32), (1.0, 4.0, 16.0), (0.0, 1.0, 0.7)):
            self.decoder.beat_fraction, self.decoder.beat_odds_scale, self.decoder.prior_octaves = fraction, scale, prior
            fb = []
            for a, piece in acts:
                ev = decode_events(a, outputs=model.outputs, fps=self.frontend.fps, settings=self.decoder,
                                   what=("beats",))
                fb.append(f_measure(np.asarray(ev.beats), piece.beats, 0.07))
            if float(np.mean(fb)) > best_beat[0]:
                best_beat = (float(np.mean(fb)), fraction, scale, prior)
        _, self.decoder.beat_fraction, self.decoder.beat_odds_scale, self.decoder.prior_octaves = best_beat
        out["f_beat"] = round(best_beat[0], 4)
        return out


def train_events(cfg: EventsTrainConfig, *, progress: bool = False,
                 log: Callable[[str], None] | None = None) -> tuple[EventsSolver, Path]:
    """Train (resuming ``cfg.out``'s checkpoint when there is one), then export the model there."""
    solver, path = EventsSolver.train_and_export(cfg, progress=progress, log=log)
    return solver, path
