"""Instant mixes: a playlist from a seed vector, each step a small one.

- :func:`pick_tracks`: the ``n`` catalog tracks nearest a seed (a track's song embedding, an audio file's, or
  a user's taste), each track once, at most ``max_per`` sharing one artist, label or album;
- :func:`order_tracks`: an order through them that starts at the track nearest the seed and keeps each step
  short: a nearest-neighbour path improved by 2-opt moves (reversing a stretch when that shortens the path)
  over the steps' cost: cosine distance of the song embeddings, plus ``tempo_weight`` x the tempo ratio's
  octave distance where the catalog keeps tempo (``index --events``);
- :func:`write_m3u8`: an extended M3U playlist (UTF-8, ``#EXTINF`` with duration and name, paths relative to
  the playlist's folder).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import ParameterError
from soundalike.recommend.rank import group_of

#: What ``max_per`` counts tracks by (:func:`~soundalike.recommend.rank.group_of`).
CAP_KEYS = ("artist", "label", "album")


@dataclass
class Playlist:
    """An ordered mix: the tracks, and the cost of each step between consecutive ones."""

    seed: str
    tracks: list[Any] = field(default_factory=list)  # catalog Track rows, in play order
    steps: list[float] = field(default_factory=list)  # len(tracks) - 1 step costs
    cap: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_step(self) -> float:
        return float(np.mean(self.steps)) if self.steps else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "n": len(self.tracks), "mean_step": round(self.mean_step, 4), "cap": self.cap,
                "tracks": [{"position": i + 1, **t.to_dict(),
                            "step": None if i == 0 else round(self.steps[i - 1], 4)}
                           for i, t in enumerate(self.tracks)]}


def pick_tracks(ids: np.ndarray, songs: np.ndarray, seed: np.ndarray, tracks: Any, *, n: int,
                exclude: set[int] | frozenset[int] = frozenset(), max_per: int | None = None,
                per: str = "artist") -> list[int]:
    """Indices into ``ids`` of the ``n`` tracks whose song embeddings are nearest ``seed`` (cosine), none in
    ``exclude``, none with a file already taken (copies of one file count once), at most ``max_per`` per
    ``per`` group (``tracks(ids)``: their rows)."""
    if per not in CAP_KEYS:
        raise ParameterError(f"per must be one of {', '.join(CAP_KEYS)}")
    if max_per is not None and max_per < 1:
        raise ParameterError("max_per must be at least 1")
    unit = songs / np.maximum(np.linalg.norm(songs, axis=1, keepdims=True), 1e-12)
    s = np.asarray(seed, np.float64)
    order = np.argsort(-(unit @ (s / max(float(np.linalg.norm(s)), 1e-12))), kind="stable")
    rows = {t.id: t for t in tracks([int(ids[i]) for i in order[: max(4 * n, 200)]])}
    counts: Counter[str] = Counter()
    hashes: set[str] = set()
    out: list[int] = []
    for i in order:
        tid = int(ids[i])
        if tid in exclude:
            continue
        t = rows.get(tid)
        if t is None:
            t = tracks([tid])[0]
        if t.file_hash and t.file_hash in hashes:
            continue
        g = group_of(t, per) if max_per else None
        if g is not None and counts[g] >= (max_per or 0):
            continue
        out.append(int(i))
        hashes.add(t.file_hash)
        if g is not None:
            counts[g] += 1
        if len(out) == n:
            break
    return out


def step_costs(songs: np.ndarray, tempos: np.ndarray | None = None, tempo_weight: float = 0.5) -> np.ndarray:
    """Pairwise step costs [shape=(n, n)]: 1 - cosine of the song embeddings, plus ``tempo_weight`` x the
    distance of the tempi in octaves folded to half and double time (``|log2 r|`` for the nearest of r, 2r,
    r / 2); a track without a tempo (NaN) adds nothing."""
    unit = songs / np.maximum(np.linalg.norm(songs, axis=1, keepdims=True), 1e-12)
    cost = 1.0 - unit @ unit.T
    if tempos is not None and tempo_weight > 0:
        t = np.log2(np.asarray(tempos, np.float64))
        d = np.abs(t[:, None] - t[None, :])
        d = np.minimum(d, np.abs(d - 1.0))  # half or double time is a small step
        cost = cost + tempo_weight * np.nan_to_num(d, nan=0.0)
    np.fill_diagonal(cost, 0.0)
    return np.asarray(np.maximum(cost, 0.0))


def path_cost(cost: np.ndarray, order: list[int]) -> float:
    return float(sum(cost[a, b] for a, b in zip(order[:-1], order[1:], strict=True)))


def order_tracks(cost: np.ndarray, start: int = 0, *, rounds: int = 20) -> list[int]:
    """An open path through every row of ``cost`` from ``start``: nearest neighbour first, then 2-opt moves
    (reverse ``order[i:j+1]``, the start fixed) while one shortens it, at most ``rounds`` passes."""
    n = len(cost)
    if n == 0:
        return []
    order = [start]
    left = set(range(n)) - {start}
    while left:
        here = order[-1]
        nxt = min(left, key=lambda j: (cost[here, j], j))
        order.append(nxt)
        left.remove(nxt)
    for _ in range(rounds):
        better = False
        for i in range(1, n - 1):
            for j in range(i + 1, n):
                a, b = order[i - 1], order[i]
                c = order[j]
                d = order[j + 1] if j + 1 < n else None
                before = cost[a, b] + (cost[c, d] if d is not None else 0.0)
                after = cost[a, c] + (cost[b, d] if d is not None else 0.0)
                if after < before - 1e-12:
                    order[i: j + 1] = order[i: j + 1][::-1]
                    better = True
        if not better:
            break
    return order


def write_m3u8(playlist: Playlist, path: str | Path) -> Path:
    """Write ``playlist`` as extended M3U (UTF-8): ``#EXTM3U``, then per track ``#EXTINF:SECONDS,NAME`` and its
    path relative to the playlist's folder (absolute when it is on another drive). Written atomically."""
    from soundalike.models.checkpoint import atomic_write

    p = Path(path)
    if p.suffix.lower() not in (".m3u8", ".m3u"):
        raise ParameterError(f"{p.name}: a playlist is written as .m3u8")
    folder = p.resolve().parent
    lines = ["#EXTM3U", f"#PLAYLIST:{_one_line(playlist.seed)}"]
    for t in playlist.tracks:
        try:
            rel = os.path.relpath(Path(t.path).resolve(), folder)
        except ValueError:  # another drive (Windows)
            rel = str(Path(t.path).resolve())
        lines += [f"#EXTINF:{int(math.ceil(t.duration))},{_one_line(t.display_name)}", rel.replace(os.sep, "/")]
    text = "\n".join(lines) + "\n"
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(p, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return p


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
