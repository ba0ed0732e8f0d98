""""Which notes?": the notes of an audio file, for the CLI, the web app and the API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from soundalike.limits import DEFAULT_MAX_DURATION

if TYPE_CHECKING:
    from soundalike.transcribe import Transcription

#: A long file is read in windows of this many seconds (bounded memory) ...
WINDOW_SECONDS = 120.0
#: ... each with this much audio after it, so a note that starts in the window ends inside it (a note
#: longer than this is cut there), and the network's context either side.
LOOKAHEAD_SECONDS = 10.0
CONTEXT_SECONDS = 2.0


def transcribe(path: str | Path, *, model: Any = None, offset: float = 0.0, duration: float | None = None,
               max_duration: float | None = DEFAULT_MAX_DURATION,
               progress: Callable[[float], None] | None = None) -> Transcription:
    """The notes of an audio file (or of ``offset``/``duration`` of it), with times from the file's start:
    see :func:`soundalike.transcribe.transcribe_waveform`. A long file is decoded and transcribed window by
    window (:data:`WINDOW_SECONDS`), so memory stays bounded; ``progress(seconds)`` is called as it goes."""
    from soundalike.audio.io import declared_span, decode_windows
    from soundalike.errors import SilentAudioError
    from soundalike.transcribe import Transcription, transcribe_waveform, transcription_model
    from soundalike.transcribe.notes import CHROMA_FPS, CHROMA_MAX_SECONDS

    m = transcription_model(model)
    sr = m.frontend.sample_rate
    context = int(CONTEXT_SECONDS * sr)
    notes = []
    chroma = []
    end = 0.0
    windows = decode_windows(path, sr=sr, step=context, extra=int(LOOKAHEAD_SECONDS * sr), offset=offset,
                             duration=duration, max_duration=max_duration, window_seconds=WINDOW_SECONDS)
    try:
        for start, lo, hi, audio in windows:
            part = transcribe_waveform(audio.samples, sr, model=m)
            if progress is not None:  # this window's own audio (its context and look-ahead belong to others)
                progress(((hi if hi is not None else start + len(audio.samples)) - lo) / sr)
            t0, t1 = lo / sr, (float("inf") if hi is None else hi / sr)
            part.shift(start / sr)
            notes += [n for n in part.notes if t0 <= n.onset < t1]
            a = int(round((lo - start) / sr * CHROMA_FPS))  # this window's own chroma frames
            b = None if hi is None else a + int(round((hi - lo) / sr * CHROMA_FPS))
            chroma.append(part.chroma[a:b])
            end = max(end, start / sr + part.duration)
    except SilentAudioError:  # silence is an answer: no notes
        span = declared_span(path, offset=offset, duration=duration) or 0.0
        return Transcription(span, [], m.name, np.zeros((int(span * CHROMA_FPS), 12), np.float32))
    seq = np.concatenate(chroma)[: int(CHROMA_MAX_SECONDS * CHROMA_FPS)] if chroma else np.zeros((0, 12), np.float32)
    result = Transcription(end, sorted(notes, key=lambda n: (n.onset, n.pitch)), m.name, seq)
    if offset:
        result.shift(offset)
    return result
