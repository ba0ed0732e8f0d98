""""What happens when?": onsets, beats, tempo and drum hits of an audio file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundalike.limits import DEFAULT_MAX_DURATION

if TYPE_CHECKING:
    from soundalike.events.decode import Events


def events(path: str | Path, *, what: tuple[str, ...] = ("onsets", "beats", "drums"), model: Any = None,
           offset: float = 0.0, duration: float | None = None, max_duration: float | None = DEFAULT_MAX_DURATION,
           progress: Callable[[float], None] | None = None) -> Events:
    """Events of an audio file (or of ``offset``/``duration`` of it): see :func:`soundalike.events.detect_events`.
    ``progress(seconds)`` is called as the file is analysed."""
    from soundalike.audio.io import load
    from soundalike.errors import ParameterError
    from soundalike.events import detect_events, events_model
    from soundalike.events.decode import WHAT

    bad = set(what) - set(WHAT)
    if bad or not what:
        raise ParameterError(f"--what takes a comma-separated list of {', '.join(WHAT)}; got {','.join(what) or '(none)'}")
    m = events_model(model)
    y, sr = load(path, sr=m.frontend.sample_rate, offset=offset, duration=duration, max_duration=max_duration)
    ev = detect_events(y, sr, model=m, what=what, progress=progress)
    if offset:
        ev.shift(offset)
    return ev
