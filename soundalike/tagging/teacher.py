"""Teacher tags: musicnn (MTT_musicnn, 50 MagnaTagATune tags) run offline over training audio.

musicnn needs its own environment (numpy 1.26, tensorflow-cpu, tf_keras; see
:data:`TEACHER_SETUP`), so it runs as a subprocess of that environment's Python
(:mod:`soundalike.tagging._musicnn_worker`). Its per-chunk scores (one row per
3 s) land in a folder, one ``.npy`` per track keyed by the file's content
hash, beside ``teacher.json``: the tags, the files, the teacher's versions and
how the folder was made. A killed run resumes where it stopped.

Under numpy 2 musicnn silently returns the same tags for every input;
:func:`check_teacher` refuses a folder whose tracks all got the same scores.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import DatasetError

#: How to make the teacher environment (what `soundalike` expects at ``.venv-teacher``).
TEACHER_SETUP = ("python3 -m venv .venv-teacher && .venv-teacher/bin/pip install 'numpy==1.26.4' tensorflow-cpu "
                 "tf_keras librosa && .venv-teacher/bin/pip install --no-deps musicnn==0.1.0")
WORKER = Path(__file__).with_name("_musicnn_worker.py")


@dataclass(frozen=True)
class TeacherConfig:
    python: str = ".venv-teacher/bin/python"  # the teacher environment's interpreter
    model: str = "MTT_musicnn"  # musicnn model: MTT_musicnn (50 MagnaTagATune tags)
    input_length: float = 3.0  # seconds per scored chunk


def musicnn_patch_seconds(input_length: float) -> float:
    """Seconds between the starts of musicnn's score rows (and each row's length) for ``input_length``.

    musicnn cuts its 16 kHz, hop-256 spectrogram into patches of
    ``librosa.time_to_frames(input_length, n_fft=512) + 1`` frames, without overlap: 187 frames (2.992 s)
    for 3 s. Aligning with the nominal 3 s drifts by about 1 s over a 3-minute track.
    """
    frames = int((round(input_length * 16000) - 512 // 2) // 256) + 1
    return frames * 256 / 16000


@dataclass
class TeacherTags:
    """Scores of one teacher run: ``scores[path]`` is float32 [shape=(n_rows, n_tags)] in [0, 1]; row ``i``
    covers ``[i * chunk_seconds, (i + 1) * chunk_seconds)``."""

    tags: tuple[str, ...]
    scores: dict[str, np.ndarray]
    chunk_seconds: float
    info: dict[str, Any]


def content_key(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:24]


def run_teacher(files: Sequence[str | Path], out: str | Path, *, config: TeacherConfig | None = None,
                progress: bool = False, env: dict[str, str] | None = None) -> TeacherTags:
    """Score ``files`` with the teacher into folder ``out`` (resumable), check the result, and load it."""
    cfg = config or TeacherConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not Path(cfg.python).exists():
        raise DatasetError(f"no teacher environment at {cfg.python}; make it with: {TEACHER_SETUP}")
    paths = [str(Path(f).expanduser().resolve()) for f in files]
    if not paths:
        raise DatasetError("no audio files to tag")
    keys = [content_key(p) for p in paths]
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=out, delete=False) as fh:
        json.dump({"files": paths, "keys": keys, "out": str(out), "model": cfg.model,
                   "input_length": cfg.input_length}, fh)
        job = fh.name
    run_env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3",
               **(env or {})}
    errors: list[str] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(paths), unit="file", desc="teacher tags", dynamic_ncols=True)
    try:
        proc = subprocess.Popen([cfg.python, str(WORKER), job], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=run_env)
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "error" in msg:
                errors.append(f"{msg['file']}: {msg['error']}")
            if bar is not None:
                bar.update(1)
        stderr = proc.stderr.read() if proc.stderr else ""
        if proc.wait() != 0:
            raise DatasetError(f"the teacher failed (exit {proc.returncode}): {stderr.strip()[-800:]}")
    finally:
        if bar is not None:
            bar.close()
        os.unlink(job)
    done = {k: p for k, p in zip(keys, paths, strict=True) if (out / f"{k}.npy").exists()}
    if not (out / "worker.json").exists() or not done:
        raise DatasetError(f"the teacher scored none of {len(paths)} files: {errors[:3]}")
    worker = json.loads((out / "worker.json").read_text())
    manifest_path = out / "teacher.json"
    old = json.loads(manifest_path.read_text())["files"] if manifest_path.exists() else {}
    meta = {"teacher": asdict(cfg), **{k: v for k, v in worker.items() if k != "tags"}, "tags": worker["tags"],
            "files": {**old, **done}, "failed": errors, "made_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "made_by": "soundalike.tagging.teacher.run_teacher", "python": sys.version.split()[0]}
    manifest_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    tags = load_teacher(out)
    check_teacher(tags)
    return tags


def load_teacher(folder: str | Path) -> TeacherTags:
    """Read a folder written by :func:`run_teacher`."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "teacher.json").read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{folder} holds no readable teacher.json ({exc}); run the teacher first") from exc
    tags = tuple(meta["tags"])
    scores = {}
    for key, path in meta["files"].items():
        arr = np.load(folder / f"{key}.npy")
        if arr.ndim != 2 or arr.shape[1] != len(tags):
            raise DatasetError(f"{folder / key}.npy has shape {arr.shape}; expected (chunks, {len(tags)})")
        scores[path] = arr.astype(np.float32)
    return TeacherTags(tags, scores, musicnn_patch_seconds(float(meta["teacher"]["input_length"])), meta)


def check_teacher(tags: TeacherTags, *, tolerance: float = 1e-4) -> None:
    """Refuse a run in which every track got the same mean scores (musicnn under numpy 2 does that)."""
    means = np.stack([s.mean(axis=0) for s in tags.scores.values()])
    if len(means) >= 2 and float(np.abs(means - means[0]).max()) < tolerance:
        raise DatasetError(
            f"the teacher gave all {len(means)} tracks the same tags: its environment is broken (musicnn under "
            f"numpy 2 does this silently). Recreate it with: {TEACHER_SETUP}")
