"""Listening history: ``soundalike listens import FILE.csv``.

The CSV has a header with ``user``, ``track`` and ``timestamp`` columns and an optional ``plays`` column:

    user,track,timestamp,plays
    ana,music/a.mp3,2026-03-01T12:00:00Z,3
    ben,17,1767225600,1

``track`` is a catalog track id or an audio path (absolute, or relative to the CSV's folder);
``timestamp`` is ISO 8601 (a missing zone means UTC) or unix seconds; ``plays`` is a positive integer
(default 1). The whole file is checked first. Rows naming unknown tracks, or with a bad timestamp or play
count, are errors: then nothing is imported, and the error lists them with line numbers (``skip_invalid``
imports the good rows and counts the rest). A row already in the catalog, or repeated in the file, counts
as a duplicate and is skipped. Everything is written in one transaction.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soundalike.errors import ListenImportError, ParameterError

REQUIRED = ("user", "track", "timestamp")


@dataclass
class ListenImport:
    """What one import did."""

    rows: int = 0  # data rows read
    imported: int = 0
    duplicates: int = 0  # already in the catalog, or repeated in the file
    invalid: int = 0  # skipped with skip_invalid
    users: int = 0  # distinct users among the valid rows
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, what is wrong)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["problems"] = [{"line": n, "problem": p} for n, p in self.problems]
        return d


def parse_time(text: str) -> float:
    """ISO 8601 (UTC when no zone is given) or unix seconds -> unix seconds."""
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ParameterError(f"timestamp {text!r} is neither ISO 8601 nor unix seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def import_listens(catalog: Any, path: str | Path, *, skip_invalid: bool = False) -> ListenImport:
    """Check and import ``path`` into ``catalog`` (all or nothing, unless ``skip_invalid``)."""
    src = Path(path).expanduser()
    if not src.is_file():
        raise ParameterError(f"listens file {src} does not exist")
    ids = {t.id for t in catalog.tracks()}
    by_path = {t.path: t.id for t in catalog.tracks()}
    rep = ListenImport()
    good: list[tuple[str, int, float, int]] = []
    seen: set[tuple[str, int, float]] = set()
    with open(src, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ListenImportError(f"{src} needs a header with columns {', '.join(REQUIRED)} (and optionally "
                                    f"plays); missing: {', '.join(missing)}", [(1, f"missing columns {missing}")])
        for row in reader:
            line = reader.line_num
            rep.rows += 1
            user = (row.get("user") or "").strip()
            ref = (row.get("track") or "").strip()
            try:
                if not user:
                    raise ParameterError("empty user")
                if ref.isdigit() and int(ref) in ids:
                    tid = int(ref)
                else:
                    p = Path(ref).expanduser()
                    full = str((p if p.is_absolute() else src.parent / p).resolve()) if ref else ""
                    if full not in by_path:
                        raise ParameterError(f"unknown track {ref!r}: not a track id or an indexed file of this "
                                             "catalog (index it first)")
                    tid = by_path[full]
                at = parse_time(row.get("timestamp") or "")
                plays_text = (row.get("plays") or "").strip()
                plays = int(plays_text) if plays_text else 1
                if plays < 1:
                    raise ParameterError(f"plays must be a positive whole number, got {plays_text!r}")
            except (ParameterError, ValueError) as exc:
                rep.problems.append((line, str(exc) if isinstance(exc, ParameterError) else f"bad value: {exc}"))
                continue
            key = (user, tid, at)
            if key in seen:
                rep.duplicates += 1
                continue
            seen.add(key)
            good.append((user, tid, at, plays))
    if rep.problems and not skip_invalid:
        shown = "; ".join(f"line {n}: {p}" for n, p in rep.problems[:10])
        more = f" (and {len(rep.problems) - 10} more)" if len(rep.problems) > 10 else ""
        raise ListenImportError(f"{len(rep.problems)} of {rep.rows} rows in {src} cannot be imported, so nothing "
                                f"was: {shown}{more}. Fix them, or pass --skip-invalid to import the other "
                                f"{rep.rows - len(rep.problems)}", rep.problems)
    rep.invalid = len(rep.problems)
    rep.imported = catalog.add_listens(good)
    rep.duplicates += len(good) - rep.imported
    rep.users = len({u for u, *_ in good})
    return rep


def write_listens(path: str | Path, rows: Sequence[tuple[str, int, float, int]]) -> Path:
    """Write (user, track id, unix time, plays) rows as a CSV that :func:`import_listens` reads."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["user", "track", "timestamp", "plays"])
        w.writerows(rows)
    return p
