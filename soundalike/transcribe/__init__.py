""""Which notes?": polyphonic transcription to notes (onset, offset, MIDI pitch, velocity) and MIDI files.

::

    import soundalike
    t = soundalike.transcribe("song.mp3")     # this package is callable: soundalike.tasks.transcribe.transcribe
    t.notes[0]                                 # Note(onset=0.51, offset=0.98, pitch=64, velocity=80)
    from soundalike.transcribe import transcribe_waveform, write_midi
    write_midi(t.notes, "song.mid")

One network (:mod:`soundalike.transcribe.model`: a harmonically stacked log-frequency spectrogram and a
small CNN) gives onset, frame, offset and velocity activations per piano key and frame;
:mod:`soundalike.transcribe.decode` turns them into notes. The shipped model was trained on rendered music
whose notes are known (:mod:`soundalike.transcribe.pieces`, :mod:`soundalike.transcribe.train`); see
``model_cards/notes_hcnn-gm.md``. A transcription also carries its chroma (the pitch classes sounding,
four frames a second, from the same activations), which ``similar --by notes`` compares.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soundalike.transcribe.notes import Note, read_midi, write_midi

if TYPE_CHECKING:  # pragma: no cover
    from soundalike.transcribe.model import TranscriptionModel

#: The shipped transcription model (weights + JSON inside the package).
SHIPPED_NOTES_MODEL = Path(__file__).resolve().parent.parent / "models" / "weights" / "notes" / "notes_hcnn-gm"

_MODELS: dict[str, Any] = {}


def load_transcription_model(path: str | Path | None = None) -> TranscriptionModel:
    """The transcription model at ``path`` (``NAME.safetensors`` + ``NAME.json``), or the shipped one
    (``None`` or ``"default"``); loaded once per process."""
    from soundalike.models.framewise import load_cached
    from soundalike.transcribe.model import load_transcription_model as _load

    return load_cached(_MODELS, path, SHIPPED_NOTES_MODEL, _load)


def transcription_model(model: TranscriptionModel | str | Path | None = None) -> TranscriptionModel:
    """``model`` itself when it is a loaded model, else :func:`load_transcription_model` of it."""
    return model if model is not None and not isinstance(model, (str, Path)) else load_transcription_model(model)


@dataclass
class Transcription:
    """The notes of a recording, sorted by onset; times in seconds from its start; and its chroma: the
    pitch classes sounding, :data:`~soundalike.transcribe.notes.CHROMA_FPS` frames a second
    (:func:`~soundalike.transcribe.notes.activation_chroma`) [shape=(frames, 12)]."""

    duration: float
    notes: list[Note] = field(default_factory=list)
    model: str = ""
    chroma: Any = None

    def shift(self, seconds: float) -> None:
        """Move every note by ``seconds`` (an excerpt's offset into its file)."""
        self.notes = [Note(round(n.onset + seconds, 4), round(n.offset + seconds, 4), n.pitch, n.velocity)
                      for n in self.notes]

    def to_dict(self) -> dict[str, Any]:
        return {"duration": round(self.duration, 3), "model": self.model, "n_notes": len(self.notes),
                "notes": [n.to_dict() for n in self.notes]}


def transcribe_waveform(y: Any, sr: int, *, model: TranscriptionModel | str | Path | None = None,
                        progress: Any = None) -> Transcription:
    """The notes of a waveform (mono, or channels first: averaged) at rate ``sr``. ``progress(seconds)``:
    called as chunks are done. Silence gives no notes."""
    import numpy as np

    from soundalike.audio.io import mono_waveform
    from soundalike.limits import SILENT_PEAK
    from soundalike.transcribe.decode import decode_notes
    from soundalike.transcribe.model import HEADS
    from soundalike.transcribe.notes import CHROMA_FPS, activation_chroma

    m = transcription_model(model)
    sr_model = m.frontend.sample_rate
    y = mono_waveform(y, sr, sr_model)
    duration = len(y) / sr_model
    if len(y) == 0 or float(np.max(np.abs(y))) < SILENT_PEAK:
        return Transcription(duration, [], m.name, np.zeros((int(duration * CHROMA_FPS), 12), np.float32))
    step = (lambda n: progress(n / sr_model)) if progress is not None else None
    act = m.activations(y, progress=step)
    notes = [n for n in decode_notes(act, fps=m.frontend.fps, decoder=m.decoder) if n.onset < duration]
    return Transcription(duration, notes, m.name, activation_chroma(act[HEADS.index("frame")], m.frontend.fps))


class _CallableModule(types.ModuleType):
    """``soundalike.transcribe(path, ...)``: the notes of an audio file
    (:func:`soundalike.tasks.transcribe.transcribe`), while ``soundalike.transcribe`` stays the package."""

    def __call__(self, path: str | Path, **kwargs: Any) -> Transcription:
        from soundalike.tasks.transcribe import transcribe

        return transcribe(path, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["SHIPPED_NOTES_MODEL", "Note", "Transcription", "load_transcription_model", "read_midi",
           "transcribe_waveform", "transcription_model", "write_midi"]
