"""``--where`` conditions on stored tags, ``tag:NAME OP VALUE``, and on stored rhythm, ``FIELD OP VALUE``.

``OP`` is one of ``>``, ``>=``, ``<``, ``<=`` (and ``=`` for a field); for a tag ``VALUE`` is a score in
[0, 1] and ``NAME`` a tag of the catalog's heads, spaces allowed (``"tag:male vocal>0.3"``); a field is
one of ``tempo`` (BPM), ``tempo_confidence``, ``beats_per_bar``, ``onset_rate`` (onsets per second),
kept by catalogs indexed with ``--events`` (``"tempo>120"``). Several conditions must all hold.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from soundalike.errors import ParameterError

_PATTERN = re.compile(r"^\s*tag\s*:\s*(?P<tag>.+?)\s*(?P<op>>=|<=|>|<)\s*(?P<value>[-+]?(\d+(\.\d*)?|\.\d+))\s*$")
_FIELD = re.compile(r"^\s*(?P<tag>[a-z_]+)\s*(?P<op>>=|<=|>|<|=)\s*(?P<value>[-+]?(\d+(\.\d*)?|\.\d+))\s*$")
_OPS = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal, "=": np.equal}
#: The rhythm fields ``--where`` compares (see :class:`soundalike.index.sides.Rhythm`).
FIELDS: tuple[str, ...] = ("tempo", "tempo_confidence", "beats_per_bar", "onset_rate")


@dataclass(frozen=True)
class TagCondition:
    tag: str  # a tag name, or a rhythm field (``kind == "field"``)
    op: str
    value: float
    kind: str = "tag"

    def test(self, scores: np.ndarray) -> np.ndarray:
        """Which of ``scores`` (one tag's column) meet the condition."""
        return np.asarray(_OPS[self.op](scores, self.value))

    def __str__(self) -> str:
        return f"tag:{self.tag}{self.op}{self.value:g}" if self.kind == "tag" else f"{self.tag}{self.op}{self.value:g}"


def split_where(where: Sequence[str] | str) -> tuple[list[str], list[TagCondition]]:
    """(tag conditions, still text; rhythm-field conditions, parsed) of ``where``."""
    exprs = [where] if isinstance(where, str) else list(where)
    tags, fields = [], []
    for expr in exprs:
        m = _FIELD.match(expr)
        if m is None:
            tags.append(expr)
            continue
        if m["tag"] not in FIELDS:
            raise ParameterError(f"cannot filter by {m['tag']!r}: --where compares a tag (tag:NAME>VALUE, e.g. "
                                 f"\"tag:{m['tag']}>0.5\") or one of {', '.join(FIELDS)} (e.g. \"tempo>120\")")
        fields.append(TagCondition(m["tag"], m["op"], float(m["value"]), kind="field"))
    return tags, fields


def parse_where(where: Sequence[str] | str, tags: Sequence[str], *, catalog: str = "the catalog") -> list[TagCondition]:
    """Parse conditions against the known ``tags``; a typed error names the fix for anything else."""
    exprs = [where] if isinstance(where, str) else list(where)
    if exprs and not tags:
        raise ParameterError(f"{catalog} keeps no tags, so it cannot filter by them; index it with tag heads "
                             "(`soundalike index ... --tag-heads default`)")
    out = []
    for expr in exprs:
        m = _PATTERN.match(expr)
        if m is None:
            raise ParameterError(f"cannot read condition {expr!r}: write tag:NAME>VALUE (or >=, <, <=), "
                                 f"e.g. \"tag:piano>0.5\", or FIELD>VALUE for {', '.join(FIELDS)}")
        tag, value = m["tag"], float(m["value"])
        if tag not in tags:
            close = difflib.get_close_matches(tag, tags, n=3, cutoff=0.5) or [t for t in tags if tag in t][:3]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ParameterError(f"{catalog} has no tag {tag!r}{hint} (`soundalike tag --list-tags` shows them)")
        if not 0.0 <= value <= 1.0:
            raise ParameterError(f"tag scores lie in [0, 1]; {expr!r} compares with {value:g}")
        out.append(TagCondition(tag, m["op"], value))
    return out
