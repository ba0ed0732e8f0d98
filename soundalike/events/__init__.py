""""What happens when?": note onsets, beats and downbeats, tempo, and drum hits (kick, snare, hi-hat).

::

    import soundalike
    ev = soundalike.events("song.mp3")    # this package is callable: soundalike.tasks.events.events
    from soundalike.events import detect_events, load_events_model
    ev = detect_events(y, sr)             # an Events: .onsets, .beats, .downbeats, .tempo, .drums["kick"], ...
    ev = detect_events(y, sr, what=("beats",))

One network (:mod:`soundalike.events.model`: multi-resolution mel CNN + dilated TCN) gives frame-wise
activations for every kind in one pass; :mod:`soundalike.events.decode` turns them into events (peak
picking; a Viterbi decoder over beat interval and phase for beats and tempo). The shipped model was
trained on generated, rendered music whose events are known (:mod:`soundalike.events.pieces`,
:mod:`soundalike.events.train`); see ``model_cards/events_tcn-gm.md``.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from soundalike.events.decode import Events
    from soundalike.events.model import EventsModel

#: The shipped events model (weights + JSON inside the package).
SHIPPED_EVENTS_MODEL = Path(__file__).resolve().parent.parent / "models" / "weights" / "events" / "events_tcn-gm"

_MODELS: dict[str, Any] = {}


def load_events_model(path: str | Path | None = None) -> EventsModel:
    """The events model at ``path`` (``NAME.safetensors`` + ``NAME.json``), or the shipped one (``None`` or
    ``"default"``); loaded once per process."""
    from soundalike.events.model import load_events_model as _load
    from soundalike.models.framewise import load_cached

    return load_cached(_MODELS, path, SHIPPED_EVENTS_MODEL, _load)


def events_model(model: EventsModel | str | Path | None = None) -> EventsModel:
    """``model`` itself when it is a loaded :class:`EventsModel`, else :func:`load_events_model` of it."""
    return model if model is not None and not isinstance(model, (str, Path)) else load_events_model(model)


def detect_events(y: Any, sr: int, *, model: EventsModel | str | Path | None = None,
                  what: tuple[str, ...] = ("onsets", "beats", "drums"), progress: Any = None) -> Events:
    """Events of a waveform (mono, or channels first: averaged) at rate ``sr``; ``what``: any of
    ``onsets``, ``beats`` (with downbeats and tempo), ``drums``. ``progress(seconds)``: called as chunks
    are done. Silence gives no events."""
    import numpy as np

    from soundalike.audio.io import mono_waveform
    from soundalike.events.decode import Events, decode_events
    from soundalike.events.pieces import DRUM_CLASSES
    from soundalike.limits import SILENT_PEAK

    m = events_model(model)
    y = mono_waveform(y, sr, m.frontend.sample_rate)
    duration = len(y) / m.frontend.sample_rate
    if len(y) == 0 or float(np.max(np.abs(y))) < SILENT_PEAK:
        drums = "drums" in what
        return Events(duration=duration, drums={k: [] for k in DRUM_CLASSES} if drums else {},
                      drum_strengths={k: [] for k in DRUM_CLASSES} if drums else {})
    step = (lambda n: progress(n / m.frontend.sample_rate)) if progress is not None else None
    act = m.activations(y, progress=step)
    return decode_events(act, outputs=m.outputs, fps=m.frontend.fps, settings=m.decoder, what=tuple(what),
                         duration=duration)


class _CallableModule(types.ModuleType):
    """``soundalike.events(path, ...)``: the events of an audio file (:func:`soundalike.tasks.events.events`),
    while ``soundalike.events`` stays the package its functions are imported from."""

    def __call__(self, path: str | Path, **kwargs: Any) -> Events:
        from soundalike.tasks.events import events

        return events(path, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["SHIPPED_EVENTS_MODEL", "detect_events", "events_model", "load_events_model"]
