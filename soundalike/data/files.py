"""Finding audio on disk: walking folders, manifests of labels, content hashes."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from soundalike.audio.io import is_audio_path
from soundalike.errors import ParameterError


def file_sha256(path: str | Path, *, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def walk_audio(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Absolute paths of audio files: named files as given, folders walked (hidden entries skipped).

    Only names are looked at: what each path is (a regular file, a pipe, a dangling link) is for the
    reader to check (:func:`soundalike.audio.io.regular_file`)."""
    seen: set[str] = set()
    for p in paths:
        root = Path(p).expanduser()
        if not root.exists():
            raise ParameterError(f"{root} does not exist")
        root = root.resolve()
        if not root.is_dir():
            if str(root) not in seen:
                seen.add(str(root))
                yield root
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith(".") or not is_audio_path(name):
                    continue
                f = Path(dirpath) / name
                if str(f) not in seen:
                    seen.add(str(f))
                    yield f


def read_manifest(path: str | Path) -> dict[str, dict[str, Any]]:
    """JSONL rows with a ``path`` (relative to the manifest's folder) -> labels by absolute path."""
    mpath = Path(path).expanduser().resolve()
    if not mpath.is_file():
        raise ParameterError(f"manifest {mpath} does not exist")
    out: dict[str, dict[str, Any]] = {}
    with open(mpath) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rel = row.pop("path")
            except (ValueError, KeyError, AttributeError) as exc:
                raise ParameterError(f"{mpath}:{n}: not a JSON object with a 'path' ({exc})") from exc
            out[str((mpath.parent / rel).resolve())] = row
    return out
