"""The Free Music Archive data set (FMA), for users who have it on disk.

``tracks.csv`` (in ``fma_metadata``) has a three-row header: row 1 names the
column group (``album``, ``artist``, ``set``, ``track``), row 2 the field
(``genre_top``, ``split``, ``subset``, ...), row 3 only ``track_id``. Audio
lives at ``FMA_ROOT/XYZ/XYZABC.mp3`` for track id XYZABC (six digits).
:func:`read_fma` pairs the two; :func:`write_fma_manifest` writes a
``manifest.jsonl`` (label = top genre) that the rest of soundalike reads.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from soundalike.errors import DatasetError


@dataclass(frozen=True)
class FmaTrack:
    track_id: int
    path: str  # absolute path of the MP3
    genre_top: str
    split: str  # training / validation / test
    subset: str  # small / medium / large


@dataclass
class FmaTracks:
    tracks: list[FmaTrack]
    no_genre: int = 0  # rows without a top genre (FMA leaves it empty for many tracks)
    missing_audio: int = 0  # rows of the wanted subset whose MP3 is not under the root
    genres: list[str] = field(default_factory=list)


def tracks_csv(metadata: str | Path) -> Path:
    p = Path(metadata).expanduser()
    csv_path = p / "tracks.csv" if p.is_dir() else p
    if not csv_path.is_file():
        raise DatasetError(f"no FMA tracks.csv at {csv_path}; --metadata takes the fma_metadata folder or the file")
    return csv_path


def read_fma(metadata: str | Path, fma_root: str | Path, *, subset: str | None = None) -> FmaTracks:
    """Tracks of ``tracks.csv`` that have a top genre and an MP3 under ``fma_root`` (optionally one subset;
    FMA's subsets nest: small is inside medium is inside large)."""
    root = Path(fma_root).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"FMA audio folder {root} does not exist")
    with open(tracks_csv(metadata), newline="", encoding="utf-8") as fh:
        rows = csv.reader(fh)
        try:
            groups, names, first = next(rows), next(rows), next(rows)
        except StopIteration:
            raise DatasetError("tracks.csv ends inside its three-row header") from None
        if not first or first[0] != "track_id":
            raise DatasetError("tracks.csv does not start with FMA's three-row header (row 3 should be 'track_id')")
        cols = {(g, n): i for i, (g, n) in enumerate(zip(groups, names, strict=False))}
        try:
            genre_i, split_i, subset_i = cols[("track", "genre_top")], cols[("set", "split")], cols[("set", "subset")]
        except KeyError as exc:
            raise DatasetError(f"tracks.csv lacks the column {exc.args[0]}") from None
        order = ["small", "medium", "large"]
        out = FmaTracks([])
        for row in rows:
            if not row or not row[0].strip().isdigit():
                continue
            sub = row[subset_i]
            if subset is not None and (sub not in order or order.index(sub) > order.index(subset)):
                continue
            genre = row[genre_i].strip()
            if not genre:
                out.no_genre += 1
                continue
            tid = int(row[0])
            path = root / f"{tid:06d}"[:3] / f"{tid:06d}.mp3"
            if not path.is_file():
                out.missing_audio += 1
                continue
            out.tracks.append(FmaTrack(tid, str(path), genre, row[split_i], sub))
    out.genres = sorted({t.genre_top for t in out.tracks})
    if not out.tracks:
        raise DatasetError(f"no FMA track of tracks.csv has both a top genre and an MP3 under {root} "
                           f"({out.no_genre} without genre, {out.missing_audio} without audio)")
    return out


def write_fma_manifest(fma: FmaTracks, out: str | Path) -> Path:
    """``manifest.jsonl`` with one row per track: path, label (= top genre), genre, split, subset, track_id."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as fh:
        for t in fma.tracks:
            row = {**asdict(t), "label": t.genre_top, "genre": t.genre_top}
            fh.write(json.dumps(row) + "\n")
    return out
