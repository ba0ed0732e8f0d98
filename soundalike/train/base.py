"""The one training loop: a :class:`Solver` with named stages that every trainer fills in.

Stages, as audiocraft's ``StandardSolver`` has them:

- ``build()`` — model, optimiser (and scheduler), data; called once by :meth:`Solver.run` (or by the caller);
- ``train_step()`` — one optimiser step, returning its metrics (``loss`` first); :meth:`Solver.optimise` does
  the zero-grad / backward / step / scheduler part the same way for everyone, and counts the step;
- ``valid()`` — metrics on held-out data every ``valid_every`` steps (``None``: nothing to validate);
- ``checkpoint_state()`` / ``load_checkpoint_state()`` — what a checkpoint holds besides the step, the
  model, the optimiser and the RNGs (all saved by :meth:`Solver.save_checkpoint`), so a killed run resumes
  where it stopped and reaches the same weights (:meth:`Solver.resume`).

:meth:`Solver.run` drives them with a progress bar and a log line per validation. The contrastive encoder
trainer (:class:`soundalike.train.solver.ContrastiveSolver`), the hash-CNN's two stages
(:mod:`soundalike.hashing.train`) and the tag heads (:mod:`soundalike.tagging.train`) are solvers; every
encoder family trains through the first (objectives infonce, song, autoencoder).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import ConfigError


def warmup_cosine(step: int, *, steps: int, warmup: int, floor: float = 0.0) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps to 1, then cosine decay to ``floor`` at ``steps``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def example_stream(seed0: int, make: Callable[[int], tuple[np.ndarray, np.ndarray]], *, limit: int) -> Any:
    """An endless torch ``IterableDataset`` of generated examples: ``make(seed)`` -> (input, target) arrays,
    seeds from ``seed0`` on, each data-loader worker taking every n-th (so none repeats), up to ``limit``
    (the first seed of the validation range: :class:`ConfigError` when reached). ``make`` must pickle
    (a module-level function or a ``functools.partial`` of one)."""
    import torch

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self) -> Any:
            info = torch.utils.data.get_worker_info()
            wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
            torch.set_num_threads(1)
            s = seed0 + wid
            while True:
                if s >= limit:
                    raise ConfigError("the training run has used every training seed")
                x, t = make(s)
                yield torch.from_numpy(x), torch.from_numpy(t)
                s += nw

    return Stream()


class Solver:
    """A training run: ``steps`` optimiser steps over the stages above (see the module docstring)."""

    desc = "training"  # the progress bar's label

    def __init__(self, *, steps: int, seed: int = 0, threads: int | None = None, out: str | Path | None = None,
                 valid_every: int = 0, checkpoint_every: int = 0, log: Callable[[str], None] | None = None) -> None:
        self.steps = int(steps)
        self.seed = int(seed)
        self.threads = threads  # torch's CPU threads (None: torch's choice)
        self.out = Path(out) if out is not None else None
        self.valid_every = int(valid_every)
        self.checkpoint_every = int(checkpoint_every)
        self.log = log or (lambda msg: None)
        self.step = 0
        self.elapsed = 0.0  # training wall seconds over every run that led here (kept in checkpoints)
        self.history: list[dict[str, Any]] = []
        self.rng = np.random.default_rng(self.seed)
        self.net: Any = None
        self.opt: Any = None
        self.sched: Any = None
        self.built = False

    # ------------------------------------------------------------------ stages to fill in
    def build(self) -> None:
        """Make ``self.net`` and ``self.opt`` (and ``self.sched``), load data (torch is already seeded)."""
        raise NotImplementedError

    def train_step(self) -> dict[str, float]:
        """One optimiser step (call :meth:`optimise` with the loss); its metrics."""
        raise NotImplementedError

    def valid(self) -> dict[str, float] | None:
        return None

    def checkpoint_state(self) -> dict[str, Any]:
        """Extra tensors and values a checkpoint keeps (a decoder, ...)."""
        return {}

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        pass

    def resumable_config(self) -> dict[str, Any]:
        """The settings a checkpoint must have been written with to be resumed (others: refused)."""
        return {}

    def postfix(self, metrics: dict[str, float]) -> dict[str, str]:
        return {"loss": f"{metrics['loss']:.3f}"} if "loss" in metrics else {}

    # ------------------------------------------------------------------------- shared
    def prepare(self) -> None:
        """Seed torch, set its threads, :meth:`build` (once)."""
        import torch

        if self.threads:
            torch.set_num_threads(int(self.threads))
        torch.manual_seed(self.seed)
        self.build()
        self.built = True

    def recalibrate_batchnorm(self, inputs: Any) -> None:
        """Set every BatchNorm's statistics of ``self.net`` to their average over ``inputs`` (network inputs,
        one batch each) with the weights as they are now, dropout off; then eval mode. Training's running
        averages lag the weights, and deep residual stacks amplify the lag (the events model's hi-hat F fell
        from 0.75 to 0 in eval mode at step 1000; recalibrated, 0.75)."""
        import torch

        norms = [m for m in self.net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if not norms:
            self.net.eval()
            return
        momenta = [m.momentum for m in norms]
        self.net.train()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average
        for d in (m for m in self.net.modules() if isinstance(m, torch.nn.Dropout)):
            d.eval()
        with torch.no_grad():
            for x in inputs:
                self.net(x)
        for m, mom in zip(norms, momenta, strict=True):
            m.momentum = mom
        self.net.eval()

    def optimise(self, loss: Any) -> None:
        """Zero the gradients, back-propagate ``loss``, step the optimiser and the scheduler; the step counts."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        self.step += 1

    @property
    def ckpt_path(self) -> Path:
        if self.out is None:
            raise ConfigError("this run keeps no checkpoints (no output folder)")
        return self.out / "last.ckpt"

    def save_checkpoint(self) -> None:
        """Write step, model, optimiser, scheduler, RNG states, history and the extras, atomically."""
        import torch

        state = {
            "model": self.net.state_dict(),
            "optimizer": self.opt.state_dict(),
            **({"scheduler": self.sched.state_dict()} if self.sched is not None else {}),
            "step": self.step,
            "numpy_rng": json.dumps(self.rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
            "history": json.dumps(self.history),
            "elapsed": json.dumps(self.elapsed),
            "config": json.dumps(self.resumable_config(), sort_keys=True),
            **self.checkpoint_state(),
        }
        self.ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.ckpt_path.with_name(".last.ckpt.tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.ckpt_path)

    def resume(self) -> bool:
        """Load ``last.ckpt`` from the output folder when there is one (a run with other settings is refused)."""
        import torch

        if self.out is None or not self.ckpt_path.exists():
            return False
        state = torch.load(self.ckpt_path, map_location="cpu", weights_only=True)
        if state.get("config") != json.dumps(self.resumable_config(), sort_keys=True):
            raise ConfigError(f"{self.ckpt_path} was written by a run with other settings; "
                              "use a new --out folder, or delete the checkpoint to start over")
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None and "scheduler" in state:
            self.sched.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.rng.bit_generator.state = json.loads(state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.history = json.loads(state["history"])
        self.elapsed = float(json.loads(state.get("elapsed", "0")))
        self.load_checkpoint_state(state)
        return True

    def run(self, *, progress: bool = False) -> dict[str, Any]:
        """Build (once), then train to ``steps``: validate every ``valid_every`` steps and at the end,
        checkpoint every ``checkpoint_every`` steps and at the end (when there is an output folder)."""
        if not self.built:
            self.prepare()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=self.steps, initial=self.step, unit="step", desc=self.desc, dynamic_ncols=True)
        t0 = time.perf_counter()
        start, start_elapsed = self.step, self.elapsed
        last: dict[str, float] = {}
        while self.step < self.steps:
            last = self.train_step()  # counts the step (optimise)
            self.elapsed = start_elapsed + time.perf_counter() - t0
            if bar is not None:
                bar.set_postfix(self.postfix(last))
                bar.update(1)
            if self.valid_every and (self.step % self.valid_every == 0 or self.step == self.steps):
                rec = {"step": self.step, **last, **(self.valid() or {})}
                self.history.append(rec)
                self.log(json.dumps(rec))
            elif not self.valid_every:
                self.history.append({"step": self.step, **last})
            if self.out is not None and self.checkpoint_every and (
                    self.step % self.checkpoint_every == 0 or self.step == self.steps):
                self.save_checkpoint()
        if bar is not None:
            bar.close()
        if self.net is not None:
            self.net.eval()
        return {"steps": self.step, "trained_steps": self.step - start,
                "seconds": round(time.perf_counter() - t0, 1), "last": last, "history": self.history}


class ModelSolver(Solver):
    """A solver whose product is a model with a ``save`` method (:meth:`model`): :meth:`export` validates once
    more (settings a validation chooses, such as a decoder's thresholds, go into the model) and saves it as
    ``cfg.out / cfg.name``; :meth:`train_and_export` is the whole run. The events and transcription trainers."""

    def __init__(self, cfg: Any, *, log: Callable[[str], None] | None = None) -> None:
        """``cfg``: a training config with ``steps``, ``seed``, ``threads``, ``out``, ``valid_every``,
        ``checkpoint_every``, ``batch``, ``workers`` and ``name``."""
        super().__init__(steps=cfg.steps, seed=cfg.seed, threads=cfg.threads, out=cfg.out,
                         valid_every=cfg.valid_every, checkpoint_every=cfg.checkpoint_every, log=log)
        self.cfg = cfg
        self.features: Any = None  # waveforms (B, samples) -> network inputs; set by ``build``
        self._loader: Any = None

    def make_example(self) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
        """The (picklable) function from a seed to one training example: (input, target)."""
        raise NotImplementedError

    def batches(self, limit: int) -> Any:
        """Batches of ``cfg.batch`` fresh examples (:func:`example_stream`, ``cfg.workers`` processes making
        them); a resumed run continues with seeds it has not seen, below ``limit``."""
        import torch

        if self._loader is None:
            seed0 = self.seed * 1_000_000 + self.step * self.cfg.batch
            ds = example_stream(seed0, self.make_example(), limit=limit)
            self._loader = iter(torch.utils.data.DataLoader(ds, batch_size=self.cfg.batch, num_workers=self.cfg.workers,
                                                            persistent_workers=self.cfg.workers > 0))
        return self._loader

    #: the seeds of the batches that set BatchNorm's statistics before validating and export, and how many
    RECALIBRATION_SEED0 = 9_000_000
    recalibration_batches = 8

    def recalibrate(self) -> None:
        """BatchNorm statistics from :attr:`recalibration_batches` fresh training batches (seeds of their own)
        through ``self.features``, with the weights as they are now (:meth:`recalibrate_batchnorm`)."""
        import torch

        make = self.make_example()

        def inputs() -> Any:
            for b in range(self.recalibration_batches):
                seeds = [self.RECALIBRATION_SEED0 + b * self.cfg.batch + i for i in range(self.cfg.batch)]
                yield self.features(torch.from_numpy(np.stack([make(s)[0] for s in seeds])))

        self.recalibrate_batchnorm(inputs())

    def model(self) -> Any:
        """The model as trained so far (its network is ``self.net``)."""
        raise NotImplementedError

    def export(self, path: str | Path | None = None) -> Path:
        """Validate (with the final weights), and save the model; returns the weights' path."""
        self.history.append({"step": self.step, **(self.valid() or {})})
        target = Path(path) if path is not None else Path(self.cfg.out) / self.cfg.name
        return Path(self.model().save(target))

    @classmethod
    def train_and_export(cls, cfg: Any, *, progress: bool = False,
                         log: Callable[[str], None] | None = None) -> tuple[Any, Path]:
        """Train (resuming ``cfg.out``'s checkpoint when there is one), then export the model there."""
        solver = cls(cfg, log=log)
        solver.prepare()
        solver.resume()
        solver.run(progress=progress)
        return solver, solver.export()
