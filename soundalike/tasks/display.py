"""How answers look in a notebook: ``similar`` and ``recommend`` return lists that render in Jupyter as a table
with a player per track and bars for tags (``_repr_html_``) and convert to a pandas DataFrame
(``.to_pandas()``, when pandas is installed); :class:`~soundalike.tasks.identify.Identification` and
:class:`~soundalike.tagging.tagger.TagResult` do the same through :func:`table_html` and :func:`to_frame`.

Players point at the audio files by their path relative to the notebook's folder (Jupyter serves the files
under its root), so nothing is embedded and a table of long tracks stays small.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from typing import Any

from soundalike.errors import ParameterError


def to_frame(rows: Sequence[dict[str, Any]]) -> Any:
    """A pandas DataFrame of ``rows`` (dicts); a :class:`ParameterError` says how to get pandas."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is in the test extra
        raise ParameterError("to_pandas needs pandas: pip install pandas") from None
    return pd.DataFrame(list(rows))


def audio_src(path: str) -> str:
    """``path`` as a notebook page can fetch it: relative to the working folder when it lies under it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if rel.startswith("..") else rel.replace(os.sep, "/")


def bar(value: float, *, width: int = 80, colour: str = "#2563eb") -> str:
    """A horizontal bar for a score in [0, 1] (clipped), with the number beside it."""
    v = min(1.0, max(0.0, float(value)))
    return (f'<span style="display:inline-block;width:{width}px;background:#eee;border-radius:3px;'
            f'vertical-align:middle"><span style="display:block;width:{v * width:.0f}px;height:8px;'
            f'background:{colour};border-radius:3px"></span></span> {float(value):.3f}')


def tag_bars(scores: dict[str, float], top: int = 5) -> str:
    items = sorted(scores.items(), key=lambda kv: -kv[1])[:top]
    return "<br>".join(f"{html.escape(str(t))} {bar(v, width=50, colour='#16a34a')}" for t, v in items)


def track_cell(track: Any) -> str:
    name = html.escape(track.display_name)
    labels = ", ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in (track.labels or {}).items()
                       if not isinstance(v, dict | list))
    return (f"<b>{name}</b> <span style='color:#6b6b70'>#{track.id} · {track.duration:.0f} s</span>"
            + (f"<br><span style='color:#6b6b70;font-size:0.85em'>{labels}</span>" if labels else ""))


def player(track: Any) -> str:
    return f'<audio controls preload="none" src="{html.escape(audio_src(track.path))}"></audio>'


def table_html(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "") -> str:
    """An HTML table; cells are HTML already (escape text with :func:`html.escape`)."""
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left;vertical-align:top'>{c}</td>" for c in r) + "</tr>"
                   for r in rows)
    cap = f"<caption style='text-align:left'>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Results(list):
    """A list of answers (each with ``rank``, ``score``, ``track`` and ``to_dict``) that renders as a table in
    Jupyter and converts to pandas; otherwise a plain list."""

    caption = ""

    def __init__(self, items: Any = (), *, tags: dict[int, dict[str, float]] | None = None) -> None:
        super().__init__(items)
        #: the catalog's stored top tags of each answer's track (by id), drawn as bars
        self.tags = dict(tags or {})

    @classmethod
    def of(cls, items: Any, catalog: Any) -> Results:
        """``items`` with their tracks' stored top tags, when ``catalog`` keeps tags."""
        items = list(items)
        tags = catalog.top_tags([r.track.id for r in items]) if items and catalog.has_tags else {}
        return cls(items, tags=tags)

    def to_pandas(self) -> Any:
        """One row per answer: its ``to_dict()`` (rank, score, the track's fields)."""
        return to_frame([r.to_dict() for r in self])

    def extra(self, item: Any) -> str:
        return ""

    def _repr_html_(self) -> str:
        rows = [[str(r.rank), bar(r.score), track_cell(r.track), self.extra(r),
                 tag_bars(self.tags.get(r.track.id, {})), player(r.track)] for r in self]
        return table_html(["#", "score", "track", "why", "tags", "listen"], rows, self.caption or
                          f"{len(self)} {type(self).__name__.lower()}")


class Matches(Results):
    """What ``similar`` returns."""

    def extra(self, item: Any) -> str:
        if item.hamming is not None:
            return f"{item.hamming} bits differ"
        if item.song_score is not None and item.moment_score is not None:
            return f"song {item.song_score:.3f}, moments {item.moment_score:.3f}"
        return ""


class Recommendations(Results):
    """What ``recommend`` returns."""

    def extra(self, item: Any) -> str:
        return html.escape(item.reason) + (" (new: nobody has played it)" if item.new else "")

