""""Clean it up": restore an audio file into another, for the CLI, the web app and the API."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.limits import DEFAULT_MAX_DURATION

#: A long file is read and written in windows of this many seconds (bounded memory) ...
WINDOW_SECONDS = 60.0
#: ... each with this much audio either side (more than the network's reach), and the last
#: :data:`CROSSFADE_SECONDS` of one window's output faded into the next's (each window sets its own level).
CONTEXT_SECONDS = 3.0
CROSSFADE_SECONDS = 0.25


@dataclass
class RestoreReport:
    """What :func:`restore_file` did."""

    output: str
    duration: float
    sample_rate: int
    channels: int
    format: str
    denoise: bool
    declip: bool
    strength: float
    clipped_fraction: float  # of the input's samples, in the runs declipping refilled
    model: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_output(src: str | Path, dst: str | Path) -> None:
    """Refuse an output that is the input itself (the restored audio would replace the original) or that
    cannot be written in any format soundalike writes."""
    from soundalike.audio.io import writable_suffixes
    from soundalike.errors import ParameterError

    name = os.path.basename(os.fspath(dst))
    if os.path.abspath(os.fspath(src)) == os.path.abspath(os.fspath(dst)) or (
            os.path.exists(dst) and os.path.exists(src) and os.path.samefile(src, dst)):
        raise ParameterError(f"-o {name} is the input file; restoring in place would replace the original: "
                             "choose another name, such as " + _suggest(src))
    if Path(dst).suffix.lower() not in writable_suffixes():
        raise ParameterError(f"cannot write {name!r}: its suffix picks the format; use one of "
                             f"{', '.join(writable_suffixes())}")
    if os.path.isdir(dst):
        raise ParameterError(f"-o {name} is a folder; give a file name")


#: The file suffix that keeps a codec (``AudioInfo.codec``) as it is; others become FLAC (lossless).
CODEC_SUFFIXES = {"mp3": ".mp3", "mp3float": ".mp3", "vorbis": ".ogg", "flac": ".flac", "aac": ".m4a", "opus": ".opus",
                  "pcm_s16le": ".wav", "pcm_s24le": ".wav", "pcm_s32le": ".wav", "pcm_f32le": ".wav", "pcm_u8": ".wav"}


def suffix_for_codec(codec: str) -> str:
    """The suffix to write audio of ``codec`` in: the same codec where soundalike writes it, else ``.flac``."""
    return CODEC_SUFFIXES.get(codec, ".flac")


def _suggest(src: str | Path) -> str:
    p = Path(src)
    return f"{p.stem}-restored{p.suffix or '.flac'}"


def restore_file(src: str | Path, dst: str | Path, *, denoise: bool = True, declip: bool = True,
                 strength: float = 1.0, model: Any = None, max_duration: float | None = DEFAULT_MAX_DURATION,
                 progress: Callable[[float], None] | None = None) -> RestoreReport:
    """Restore ``src`` into ``dst`` (:func:`soundalike.restore.restore_waveform`), at ``src``'s sample rate
    and channels, in the format ``dst``'s suffix names (for the same suffix as ``src``'s, its sample format
    or bit rate too). A long file is decoded, restored and written window by window (:data:`WINDOW_SECONDS`),
    so memory stays bounded; ``progress(seconds)`` is called as it goes. ``dst`` appears only when all of it
    is written; ``src`` is never written."""
    from soundalike.audio.io import AudioWriter, decode_windows, info
    from soundalike.restore import restoration_model, restore_waveform
    from soundalike.restore.model import clipped_samples

    check_output(src, dst)
    m = restoration_model(model)
    head = info(src)
    sr = head.sample_rate
    same = Path(src).suffix.lower() == Path(dst).suffix.lower()
    context = int(CONTEXT_SECONDS * sr)
    fade = int(CROSSFADE_SECONDS * sr)
    clipped = 0
    total = 0
    channels = 0
    writer: AudioWriter | None = None
    tail: np.ndarray | None = None
    try:
        for start, lo, hi, audio in decode_windows(src, sr=sr, step=context, extra=context, max_duration=max_duration,
                                                   window_seconds=WINDOW_SECONDS, mono=False):
            x = audio.samples
            if writer is None:
                channels = x.shape[0]
                writer = AudioWriter(dst, sr, channels=channels, subtype=head.codec if same else None,
                                     bitrate=head.bit_rate if same and head.bit_rate else None)
            out = restore_waveform(x, sr, denoise=denoise, declip=declip, strength=strength, model=m)
            own = out[:, lo - start: None if hi is None else hi - start]
            if declip:
                for c in range(channels):
                    clip = clipped_samples(x[c, lo - start: None if hi is None else hi - start], m.settings)
                    clipped += 0 if clip is None else int(clip.fraction * own.shape[1])
            if tail is not None:  # fade the last window's look-ahead into this one's start
                k = min(tail.shape[1], own.shape[1])
                ramp = np.linspace(0.0, 1.0, k, dtype=np.float32)
                own[:, :k] = tail[:, :k] * (1 - ramp) + own[:, :k] * ramp
            tail = None if hi is None else out[:, hi - start: hi - start + fade].copy()
            writer.write(own)
            total += own.shape[1]
            if progress is not None:
                progress(own.shape[1] / sr)
        if writer is None:  # pragma: no cover - decode_windows yields at least once or raises
            raise RuntimeError("no audio")
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return RestoreReport(output=str(dst), duration=round(total / sr, 3), sample_rate=sr, channels=channels,
                         format=Path(dst).suffix.lower().lstrip("."), denoise=denoise, declip=declip,
                         strength=float(strength), clipped_fraction=round(clipped / max(1, total * channels), 6),
                         model=m.name)
