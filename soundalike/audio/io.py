"""Decode audio files to mono float32 waveforms.

Decoders sit behind one interface and are tried in order: PyAV (FFmpeg inside
the wheel: MP3, OGG/Vorbis, Opus, FLAC, WAV, M4A/AAC and most else), then
soundfile (libsndfile: WAV, FLAC, OGG, MP3). Each raises a private
``_BackendError``; if every backend fails, :class:`AudioDecodeError` names the
file and every backend's reason. Resampling uses soxr (HQ).

Channels are averaged, ``(L + R) / 2`` like librosa, not FFmpeg's
``(L + R) / sqrt(2)`` down-mix.
"""

from __future__ import annotations

import io
import math
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from soundalike.errors import (
    AudioDecodeError,
    AudioTooLongError,
    AudioTooShortError,
    NotAFileError,
    ParameterError,
    SilentAudioError,
    SoundalikeError,
)
from soundalike.limits import (
    MAX_OFFSET,
    MIN_SECONDS,
    SILENCE_DBFS,
    SILENT_PEAK,
    check_deadline,
    check_max_duration,
)

#: File name extensions ``soundalike index`` picks up when it walks a folder.
AUDIO_EXTENSIONS = frozenset(
    {".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav", ".wave", ".m4a", ".aac", ".mp4", ".aif", ".aiff", ".wma"}
)

# A decoded stream shorter than this fraction of what its header promised is
# reported as truncated (VBR MP3 headers without a Xing tag over-estimate a bit).
_TRUNCATED_FRACTION = 0.8


def is_audio_path(path: str | Path) -> bool:
    """True when ``path`` has one of :data:`AUDIO_EXTENSIONS` (case-insensitive)."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


@dataclass
class AudioInfo:
    """What a container says about itself, before decoding."""

    path: str
    duration: float | None  # seconds, as declared by the header (None if unknown)
    sample_rate: int
    channels: int
    codec: str
    tags: dict[str, str] = field(default_factory=dict)
    bit_rate: int = 0  # bit/s, when the header says (lossy codecs)


@dataclass
class DecodedAudio:
    """A decoded waveform with what was learned while decoding it."""

    samples: np.ndarray  # float32 [shape=(n,)], mono, in [-1, 1]; decode(mono=False): [shape=(channels, n)]
    sr: int
    info: AudioInfo
    backend: str

    @property
    def duration(self) -> float:
        return self.samples.shape[-1] / float(self.sr)


class _BackendError(Exception):
    def __init__(self, reason: str, *, recognised: bool = True) -> None:
        super().__init__(reason)
        self.recognised = recognised  # False: this backend does not know the format at all


_STDERR_LOCK = threading.Lock()


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence C libraries that print to file descriptor 2 (libsndfile's MP3 decoder: "Note: Trying to
    resync...", "Illegal Audio-MPEG-Header"); what they mean reaches the user as a typed error instead."""
    with _STDERR_LOCK:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr to silence
            yield
            return
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _looks_like_text(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(2048)
    except OSError:
        return False
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return sum(c.isprintable() or c in "\r\n\t" for c in text) >= 0.95 * len(text)


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def regular_file(path: str | Path) -> os.stat_result:
    """``os.stat`` of ``path`` (symlinks followed) when it is a regular file; otherwise a typed error that says
    what it is: missing, a dangling link, a named pipe, a device, a socket or a folder (never opened: a FIFO
    would block the reader forever)."""
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        why = "a symbolic link to a file that does not exist" if os.path.islink(p) else "the file does not exist"
        raise AudioDecodeError(p, why) from None
    except OSError as exc:
        raise AudioDecodeError(p, f"cannot read the file ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise NotAFileError(p, f"it is {_file_kind(st.st_mode)}, not a regular file; soundalike reads audio files only")
    return st


def check_sound(y: np.ndarray, sr: int, path: str | Path = "<waveform>") -> None:
    """Refuse audio too short (:data:`~soundalike.limits.MIN_SECONDS`) or silent
    (:data:`~soundalike.limits.SILENCE_DBFS`) to analyse: a model would still answer it, confidently and wrongly."""
    seconds = len(y) / float(sr)
    if seconds < MIN_SECONDS:
        got = f"{len(y)} sample{'s' * (len(y) != 1)}" if seconds < 0.01 else f"{seconds:.2f} s"
        raise AudioTooShortError(path, f"only {got} of audio; soundalike needs at least {MIN_SECONDS:g} s")
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak < SILENT_PEAK:
        level = f"{20 * math.log10(peak):.0f} dBFS" if peak > 0 else "digital silence"
        raise SilentAudioError(path, f"the audio is silent ({level}, below {SILENCE_DBFS:g} dBFS): nothing to "
                                     "analyse")


def too_long(path: str | Path, seconds: float | None, limit: float) -> AudioTooLongError:
    """The error for audio over ``limit`` seconds (``seconds`` None: found while decoding, length unknown)."""
    what = f"more than {limit:g} s" if seconds is None else f"{seconds:.1f} s"
    return AudioTooLongError(path, f"{what} of audio is over the limit of {limit:g} s; raise the limit "
                                   "(--max-duration) or pass a shorter window (--offset, --duration)")


def _check_window(offset: float, duration: float | None) -> None:
    if not math.isfinite(offset) or offset < 0:
        raise ParameterError(f"offset must be a finite number of seconds >= 0, got {offset!r}")
    if offset > MAX_OFFSET:
        raise ParameterError(f"offset {offset:g} s is past the end of any audio soundalike reads "
                             f"(at most {MAX_OFFSET:g} s)")
    if duration is not None and (not math.isfinite(duration) or duration <= 0):
        raise ParameterError(f"duration must be a positive number of seconds or None, got {duration!r}")


def _clean_tags(raw: dict) -> dict[str, str]:
    tags: dict[str, str] = {}
    for key, value in raw.items():
        k = str(key).strip().lower()
        v = str(value).strip()
        if k and v and len(v) < 2000:
            tags.setdefault(k, v)
    return tags


# --------------------------------------------------------------------------- PyAV


def _wav_declared_seconds(fh, sr: int, ctx) -> float | None:
    """Seconds a RIFF/WAVE header's ``data`` chunk promises (FFmpeg trusts the file size instead)."""
    import struct

    pos = fh.tell()
    try:
        fh.seek(0)
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        bytes_per_frame = None
        while True:
            hdr = fh.read(8)
            if len(hdr) < 8:
                return None
            cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid == b"fmt ":
                fmt = fh.read(size + (size & 1))
                if len(fmt) >= 16:
                    channels, _, _, block_align = struct.unpack("<HIIH", fmt[2:14])
                    bytes_per_frame = block_align or None
            elif cid == b"data":
                if not bytes_per_frame or size in (0, 0xFFFFFFFF):  # streaming writers leave it open
                    return None
                return size / bytes_per_frame / sr
            else:
                fh.seek(size + (size & 1), 1)
    except (OSError, struct.error):
        return None
    finally:
        fh.seek(pos)


def _to_mono(frame: Any, planar: bool, mono: bool = True) -> np.ndarray:
    """A resampled float frame -> mono float32 [shape=(n,)]: the mean of its channels; with ``mono`` False,
    every channel [shape=(C, n)]."""
    arr = frame.to_ndarray()  # planar: (C, n); packed: (1, n * C) interleaved
    if planar:
        if not mono:
            return arr
        return arr.mean(axis=0) if arr.shape[0] > 1 else arr[0]
    channels = max(1, len(frame.layout.channels))
    arr = arr.reshape(-1, channels)
    if not mono:
        return np.ascontiguousarray(arr.T)
    return arr.mean(axis=1) if channels > 1 else arr[:, 0]


def _pyav_decode(path: str, offset: float, duration: float | None, max_duration: float | None, mono: bool = True):
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a hard dependency
        raise _BackendError(f"PyAV is not installed ({exc})") from exc

    try:
        fh = open(path, "rb")  # a file object: FFmpeg never parses the name as a URL/protocol
    except OSError as exc:
        raise _BackendError(f"cannot read the file ({exc.strerror or exc})") from exc
    with fh:
        try:
            container = av.open(fh, mode="r", metadata_errors="ignore")
        except Exception as exc:  # av raises many FFmpegError subclasses
            raise _BackendError(f"not a recognised audio container ({exc})", recognised=False) from exc
        with container:
            if not container.streams.audio:
                raise _BackendError("the file holds no audio stream", recognised=False)
            stream = container.streams.audio[0]
            ctx = stream.codec_context
            native_sr = int(ctx.sample_rate or stream.rate or 0)
            if native_sr <= 0:
                raise _BackendError("the audio stream declares no sample rate")
            declared = _wav_declared_seconds(fh, native_sr, ctx)
            if declared is not None:
                pass
            elif stream.duration is not None and stream.time_base is not None:
                declared = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                declared = container.duration / 1_000_000.0
            tags = _clean_tags({**dict(container.metadata), **dict(stream.metadata)})
            info = AudioInfo(path, declared, native_sr, int(ctx.channels or 0), str(ctx.name), tags)
            if declared is not None and offset > 0 and offset >= declared:
                raise AudioDecodeError(path, f"offset {offset:.2f} s is past the end of the audio ({declared:.2f} s)")

            want = None if duration is None else int(round(duration * native_sr))
            if max_duration is not None:
                span = (declared - offset) if declared is not None else None
                if duration is not None:
                    span = duration if span is None else min(span, duration)
                if span is not None and span > max_duration + 1e-6:
                    raise too_long(path, span, max_duration)
            max_keep = None if max_duration is None else int(math.ceil(max_duration * native_sr))

            # MP3 and others start their timeline at the encoder delay: frame times are relative to it
            t_start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
            start_time: float | None = 0.0
            if offset > 0:
                try:
                    container.seek(int((offset + t_start) * 1_000_000), backward=True, any_frame=False)
                    start_time = None  # taken from the first decoded frame
                except Exception:
                    start_time = 0.0  # not seekable: decode from the start and skip

            # planar float for mono and stereo (what most decoders give: no conversion); packed float above
            # that, one plane whatever the channel count (PyAV 18 crashes reading 8 planar planes)
            planar = int(ctx.channels or 1) <= 2
            resampler = av.AudioResampler(format="fltp" if planar else "flt")
            blocks: list[np.ndarray] = []
            have = 0
            skip = None if start_time is None else int(round(offset * native_sr))
            failure: str | None = None
            try:
                for frame in container.decode(stream):
                    check_deadline()
                    if skip is None:
                        t0 = frame.time - t_start if frame.time is not None else 0.0
                        skip = max(0, int(round((offset - t0) * native_sr)))
                    for out in resampler.resample(frame):
                        part = _to_mono(out, planar, mono)
                        if skip:
                            cut = min(skip, part.shape[-1])
                            part = part[..., cut:]
                            skip -= cut
                        if part.shape[-1]:
                            blocks.append(np.asarray(part, dtype=np.float32))
                            have += part.shape[-1]
                    if want is not None and have >= want:
                        break
                    if max_keep is not None and max_duration is not None and have > max_keep:
                        raise too_long(path, None, max_duration)
            except SoundalikeError:
                raise
            except Exception as exc:  # corrupt packet mid-stream
                failure = str(exc) or type(exc).__name__
            channels = max(1, int(ctx.channels or 1))
            y = (np.concatenate(blocks, axis=-1) if blocks
                 else np.zeros(0 if mono else (channels, 0), np.float32))
            if want is not None:
                y = y[..., :want]
            expected = want / native_sr if want is not None else None
            if declared is not None:
                rest = max(0.0, declared - offset)
                expected = rest if expected is None else min(expected, rest)
            got = y.shape[-1] / native_sr
            # a verdict on the file itself, not on this decoder: no fallback would do better
            if failure is not None and (expected is None or got < _TRUNCATED_FRACTION * expected):
                raise AudioDecodeError(path, f"corrupt audio data after {got:.2f} s ({failure})")
            if expected is not None and expected > 2.0 and got < _TRUNCATED_FRACTION * expected - 1.0:
                raise AudioDecodeError(
                    path, f"truncated: the header promises {expected:.1f} s but only {got:.1f} s decode; "
                    "the file was cut short (re-copy or re-download it)"
                )
            return y, native_sr, info


# ---------------------------------------------------------------------- soundfile


def _soundfile_decode(path: str, offset: float, duration: float | None, max_duration: float | None,
                      mono: bool = True):
    try:
        import soundfile as sf
    except (ImportError, OSError) as exc:
        raise _BackendError(f"soundfile is unavailable ({exc})") from exc
    try:
        with _quiet_stderr(), sf.SoundFile(path) as f:
            sr = int(f.samplerate)
            total = int(f.frames)
            declared = total / sr if total > 0 else None
            info = AudioInfo(path, declared, sr, int(f.channels), str(f.subtype or f.format),
                             _clean_tags(f.copy_metadata()))
            start = int(round(offset * sr))
            n = -1 if duration is None else int(round(duration * sr))
            span = (total - start) if n < 0 else min(n, total - start)
            if max_duration is not None and span > max_duration * sr + 1:
                raise too_long(path, span / sr, max_duration)
            if start:
                if not f.seekable():
                    raise _BackendError("the stream cannot seek")
                if start >= total > 0:
                    return np.zeros(0 if mono else (int(f.channels), 0), np.float32), sr, info
                f.seek(start)
            data = f.read(frames=n, dtype="float32", always_2d=True)
    except (AudioTooLongError, _BackendError):
        raise
    except Exception as exc:
        raise _BackendError(f"not a recognised audio file ({exc})", recognised=False) from exc
    if not mono:
        return np.ascontiguousarray(data.T, dtype=np.float32), sr, info
    y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(y, dtype=np.float32), sr, info


_Backend = Callable[..., tuple[np.ndarray, int, AudioInfo]]
#: Decoders in the order they are tried.
BACKENDS: dict[str, _Backend] = {"pyav": _pyav_decode, "soundfile": _soundfile_decode}


def resample(y: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono float32 waveform with soxr (HQ).

    y : np.ndarray [shape=(n,)] -> np.ndarray [shape=(round(n * target_sr / orig_sr),)]
    """
    if orig_sr == target_sr or len(y) == 0:
        return np.asarray(y, dtype=np.float32)
    import soxr

    return np.asarray(soxr.resample(y, orig_sr, target_sr, quality="HQ"), dtype=np.float32)


def channels_first(y: Any) -> np.ndarray:
    """A caller's waveform as float32 channels [shape=(channels, samples)] (a mono ``(samples,)`` becomes one
    channel), finite; a :class:`ParameterError` says what is wrong with one that cannot be."""
    x = np.asarray(y, np.float32)
    if x.ndim not in (1, 2):
        raise ParameterError(f"a waveform is (samples,) or (channels, samples), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ParameterError("the waveform holds NaN or infinite samples")
    return x[None] if x.ndim == 1 else x


def mono_waveform(y: Any, sr: int, target_sr: int) -> np.ndarray:
    """A caller's waveform as the models take it: float32, mono (channels first are averaged), finite, at
    ``target_sr``; a :class:`ParameterError` says what is wrong with one that cannot be."""
    x = channels_first(y)
    return resample(x[0] if len(x) == 1 else x.mean(axis=0), orig_sr=sr, target_sr=target_sr)


def decode(
    path: str | Path,
    *,
    sr: int | None,
    offset: float = 0.0,
    duration: float | None = None,
    max_duration: float | None = None,
    backends: tuple[str, ...] | None = None,
    require_sound: bool = False,
    mono: bool = True,
) -> DecodedAudio:
    """Decode ``path`` to a mono float32 waveform, with its container info (``mono=False``: every channel,
    ``(channels, samples)``).

    ``sr=None`` keeps the native rate. ``offset``/``duration`` (seconds) seek
    instead of decoding the whole file. ``max_duration`` raises
    :class:`AudioTooLongError` for a longer file (or window) before decoding it all.
    ``require_sound`` refuses audio too short or silent to analyse (:func:`check_sound`).
    Only regular files are opened (:func:`regular_file`); NaN or infinite samples are refused.
    """
    _check_window(offset, duration)
    check_max_duration(max_duration)
    if sr is not None and (not isinstance(sr, int) or sr <= 0):
        raise ParameterError(f"sr must be a positive integer or None, got {sr!r}")
    p = os.fspath(path)
    st = regular_file(p)
    if st.st_size == 0:
        raise AudioDecodeError(p, "the file is empty (0 bytes)")
    if not os.access(p, os.R_OK):
        raise AudioDecodeError(p, "permission denied: the file is not readable")

    reasons: list[str] = []
    recognised = False
    for name in backends or tuple(BACKENDS):
        try:
            y, native_sr, info = BACKENDS[name](p, offset, duration, max_duration, **({} if mono else {"mono": False}))
        except _BackendError as exc:
            reasons.append(f"{name}: {exc}")
            recognised |= exc.recognised
            continue
        recognised = True
        if y.shape[-1] == 0:
            if offset > 0 and info.duration is not None and offset >= info.duration:
                raise AudioDecodeError(
                    p, f"offset {offset:.2f} s is past the end of the audio ({info.duration:.2f} s)"
                )
            reasons.append(f"{name}: no audio samples decoded")
            continue
        if not np.all(np.isfinite(y)):
            bad = int(np.count_nonzero(~np.isfinite(y)))
            raise AudioDecodeError(p, f"{bad} samples are NaN or infinite: the audio data is corrupt (re-export "
                                      "the file as ordinary PCM)")
        if sr is not None and native_sr != sr:
            y = resample(y, orig_sr=native_sr, target_sr=sr) if mono else np.stack(
                [resample(c, orig_sr=native_sr, target_sr=sr) for c in y])
            native_sr = sr
        if require_sound:
            check_sound(y if mono else y.mean(axis=0), native_sr, p)
        return DecodedAudio(y, native_sr, info, name)
    if not recognised:
        what = "it is a text file" if _looks_like_text(p) else "no decoder recognises its format"
        raise AudioDecodeError(p, f"not an audio file: {what} (soundalike reads "
                                  f"{', '.join(sorted(e.lstrip('.') for e in AUDIO_EXTENSIONS))})")
    raise AudioDecodeError(p, "; ".join(reasons) or "no decoder available")


def declared_span(path: str | Path, *, offset: float = 0.0, duration: float | None = None) -> float | None:
    """Seconds of ``path`` from ``offset`` (at most ``duration``) by its header, without decoding; None when
    the header does not say (or the file cannot be read: decoding it says best what is wrong)."""
    try:
        declared = info(path).duration
    except AudioDecodeError:
        declared = None
    span = None if declared is None else max(0.0, declared - offset)
    if duration is not None:
        span = duration if span is None else min(span, duration)
    return span


def decode_windows(path: str | Path, *, sr: int, step: int, extra: int, offset: float = 0.0,
                   duration: float | None = None, max_duration: float | None = None,
                   window_seconds: float = 120.0, mono: bool = True
                   ) -> Iterator[tuple[int, int, int | None, DecodedAudio]]:
    """Decode ``path`` in bounded memory: ``(start, lo, hi, audio)`` for consecutive windows.

    ``audio`` holds the samples from ``start``; the work of this window is what starts in ``[lo, hi)``
    (``hi`` None: up to the end). Spans ``[lo, hi)`` follow each other (about ``window_seconds``, a multiple
    of ``step``); each window also holds ``step`` samples before ``lo`` (so a frame near ``lo`` sees real
    audio, not padding) and ``extra`` after ``hi`` (so a chunk that starts before ``hi`` ends inside it).
    A file that fits in one window is decoded once, whole: one ``(0, 0, None, audio)``.
    ``max_duration`` applies to the whole file (or the ``offset``/``duration`` part of it); the audio is
    checked as :func:`decode` with ``require_sound`` does.
    """
    _check_window(offset, duration)
    check_max_duration(max_duration)
    if step <= 0 or extra < 0:
        raise ParameterError("step must be positive and extra >= 0")
    per = max(1, int(window_seconds * sr) // step) * step
    span = declared_span(path, offset=offset, duration=duration)
    if span is None or span * sr <= per + extra:
        yield 0, 0, None, decode(path, sr=sr, offset=offset, duration=duration, max_duration=max_duration,
                                 require_sound=True, mono=mono)
        return
    if max_duration is not None and span > max_duration + 1e-6:
        raise too_long(os.fspath(path), span, max_duration)
    total = int(span * sr)
    lo = 0
    loud = False
    while lo < total:
        last = lo + per + extra >= total
        start = max(0, lo - step)
        audio = decode(path, sr=sr, offset=offset + start / sr, duration=min(lo + per + extra, total) / sr - start / sr,
                       mono=mono)
        loud = loud or float(np.max(np.abs(audio.samples))) >= SILENT_PEAK
        if last and not loud:  # the whole file was silent
            check_sound(audio.samples if mono else audio.samples.mean(axis=0), sr, os.fspath(path))
        yield start, lo, None if last else lo + per, audio
        if last:
            break
        lo += per


def window_slice(start: int, lo: int, hi: int | None, step: int, n: int) -> slice:
    """Which of a window's ``n`` chunks (every ``step`` samples from ``start``) are its own: those that start
    in ``[lo, hi)`` (see :func:`decode_windows`)."""
    first = -(-(lo - start) // step)
    last = n if hi is None else min(n, -(-(hi - start) // step))
    return slice(first, max(first, last))


def load(
    path: str | Path,
    *,
    sr: int | None,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
    max_duration: float | None = None,
) -> tuple[np.ndarray, int]:
    """Load an audio file as a float32 waveform.

    Parameters
    ----------
    path : file to decode (MP3, OGG/Vorbis, Opus, FLAC, WAV, M4A/AAC, ...)
    sr : target sample rate; ``None`` keeps the file's own rate
    mono : only mono output is supported (channels are averaged)
    offset, duration : seconds; the decoder seeks rather than decoding everything
    max_duration : refuse (``AudioTooLongError``) files or windows longer than this

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
    sr : int
    """
    if not mono:
        raise ParameterError("only mono=True is supported: soundalike models take one channel")
    out = decode(path, sr=sr, offset=offset, duration=duration, max_duration=max_duration)
    return out.samples, out.sr


def info(path: str | Path) -> AudioInfo:
    """Read a file's header (duration, rate, channels, codec, tags) without decoding it."""
    p = os.fspath(path)
    regular_file(p)
    try:
        import av

        with open(p, "rb") as fh, av.open(fh, metadata_errors="ignore") as c:
            if not c.streams.audio:
                raise AudioDecodeError(p, "the file holds no audio stream")
            s = c.streams.audio[0]
            dur = float(s.duration * s.time_base) if s.duration is not None and s.time_base else None
            if dur is None and c.duration is not None:  # type: ignore[union-attr]
                dur = c.duration / 1_000_000.0  # type: ignore[union-attr]
            tags = _clean_tags({**dict(c.metadata), **dict(s.metadata)})
            rate = int(s.codec_context.bit_rate or s.bit_rate or 0)
            return AudioInfo(p, dur, int(s.codec_context.sample_rate or 0), int(s.codec_context.channels or 0),
                             str(s.codec_context.name), tags, rate)
    except AudioDecodeError:
        raise
    except Exception as exc:
        raise AudioDecodeError(p, f"not a recognised audio container ({exc})") from exc


# ------------------------------------------------------------------ writing

_PYAV_WRITERS = {  # suffix: (container format, codec, sample format, allowed rate, frame size)
    ".mp3": ("mp3", "libmp3lame", "fltp", None, 1152),
    ".m4a": ("mp4", "aac", "fltp", None, 1024),
    ".aac": ("adts", "aac", "fltp", None, 1024),
    ".opus": ("ogg", "libopus", "flt", 48000, 960),
}
_SOUNDFILE_WRITERS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}


#: Sample rates the PyAV codecs without a fixed rate take.
_CODEC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
#: The sample formats soundfile writes WAV and FLAC in, by what the input was (its ``AudioInfo.codec``).
_PCM_SUBTYPES = {"pcm_s16le": "PCM_16", "pcm_s24le": "PCM_24", "pcm_s32le": "PCM_32", "pcm_f32le": "FLOAT",
                 "pcm_u8": "PCM_U8", "PCM_16": "PCM_16", "PCM_24": "PCM_24", "FLOAT": "FLOAT"}


def writable_suffixes() -> list[str]:
    return sorted([*_SOUNDFILE_WRITERS, *_PYAV_WRITERS])


class AudioWriter:
    """Write audio block by block (bounded memory whatever the length): ``channels`` float32 channels at
    ``sr``, the format by the path's suffix (WAV, FLAC and OGG/Vorbis through soundfile; MP3, M4A/AAC and
    Opus through PyAV, resampled to a rate the codec takes). ``subtype`` (soundfile's, such as ``PCM_24``)
    for WAV and FLAC; ``bitrate`` in bit/s for the lossy PyAV codecs. The file appears at ``path`` only when
    :meth:`close` succeeds (a ``.part`` file beside it until then; removed on failure). A context manager."""

    def __init__(self, path: str | Path, sr: int, *, channels: int = 1, subtype: str | None = None,
                 bitrate: int | None = None) -> None:
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        if self.suffix not in _SOUNDFILE_WRITERS and self.suffix not in _PYAV_WRITERS:
            raise ParameterError(f"cannot write {self.suffix or 'files without a suffix'!r}; use one of "
                                 f"{', '.join(writable_suffixes())}")
        if channels < 1 or channels > 8:
            raise ParameterError(f"cannot write {channels} channels (1 to 8)")
        self.sr, self.channels = int(sr), int(channels)
        self.tmp = self.path.with_name(f".{self.path.name}.part")
        self._sf: Any = None
        self._av: Any = None
        if self.suffix in _SOUNDFILE_WRITERS:
            import soundfile as sf

            fmt, default = _SOUNDFILE_WRITERS[self.suffix]
            sub = _PCM_SUBTYPES.get(subtype or "", default) if self.suffix != ".ogg" else default
            if fmt == "FLAC" and sub in ("FLOAT", "PCM_32"):
                sub = "PCM_24"  # FLAC holds integers up to 24 bits
            self._sf = sf.SoundFile(str(self.tmp), "w", samplerate=self.sr, channels=self.channels, format=fmt,
                                    subtype=sub)
        else:
            import av

            container_fmt, codec, sample_fmt, rate, self._frame = _PYAV_WRITERS[self.suffix]
            self.rate = rate or (self.sr if self.sr in _CODEC_RATES else 44100)
            self._sample_fmt = sample_fmt
            self.layout = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels}c")
            self._fh = open(self.tmp, "wb")
            self._av = av.open(self._fh, "w", format=container_fmt)
            self._stream: Any = self._av.add_stream(codec, rate=self.rate, layout=self.layout)
            if bitrate:
                self._stream.bit_rate = int(bitrate)
            self._pending = np.zeros((self.channels, 0), np.float32)
            self._pts = 0
            self._resampler: Any = None
            if self.rate != self.sr:
                import soxr

                self._resampler = soxr.ResampleStream(self.sr, self.rate, self.channels, dtype="float32",
                                                      quality="HQ")

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def write(self, y: np.ndarray) -> None:
        """Append samples: ``(n,)`` for one channel or ``(channels, n)``; clipped to [-1, 1]."""
        x = np.asarray(y, np.float32)
        x = x[None] if x.ndim == 1 else x
        if x.shape[0] != self.channels:
            raise ParameterError(f"this writer takes {self.channels} channels, got {x.shape[0]}")
        x = np.clip(x, -1.0, 1.0)
        if self._sf is not None:
            self._sf.write(np.ascontiguousarray(x.T))
            return
        if self._resampler is not None:
            x = np.ascontiguousarray(self._resampler.resample_chunk(np.ascontiguousarray(x.T)).T)
        self._encode(x, last=False)

    def _encode(self, x: np.ndarray, *, last: bool) -> None:
        import av

        buf = np.concatenate([self._pending, x], axis=1)
        if last and buf.shape[1] % self._frame:
            buf = np.pad(buf, ((0, 0), (0, -buf.shape[1] % self._frame)))
        whole = buf.shape[1] // self._frame * self._frame
        for i in range(0, whole, self._frame):
            block = buf[:, i: i + self._frame]
            if self._sample_fmt == "flt":  # packed: one plane of interleaved samples
                block = block.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format=self._sample_fmt,
                                               layout=self.layout)
            frame.sample_rate = self.rate
            frame.pts = self._pts
            self._pts += self._frame
            for pkt in self._stream.encode(frame):
                self._av.mux(pkt)
        self._pending = buf[:, whole:]

    def close(self) -> Path:
        """Finish the file and move it into place."""
        try:
            if self._sf is not None:
                self._sf.close()
            else:
                if self._resampler is not None:
                    tail = self._resampler.resample_chunk(np.zeros((0, self.channels), np.float32), last=True)
                    self._encode(np.ascontiguousarray(np.asarray(tail, np.float32).T), last=True)
                else:
                    self._encode(np.zeros((self.channels, 0), np.float32), last=True)
                for pkt in self._stream.encode(None):
                    self._av.mux(pkt)
                self._av.close()
                self._fh.close()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        try:
            if self._sf is not None and not self._sf.closed:
                self._sf.close()
            if self._av is not None:
                try:
                    self._av.close()
                except Exception:  # a container that never got a packet
                    pass
                self._fh.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def save(path: str | Path, y: np.ndarray, sr: int, *, bitrate: int | None = None, subtype: str | None = None) -> Path:
    """Write a float32 waveform, mono ``(n,)`` or ``(channels, n)``; the format follows the suffix
    (:class:`AudioWriter`). Written atomically."""
    x = np.asarray(y, dtype=np.float32)
    x = x.reshape(1, -1) if x.ndim != 2 else x
    with AudioWriter(path, sr, channels=x.shape[0], bitrate=bitrate, subtype=subtype) as w:
        w.write(x)
    return Path(path)


def encode(y: np.ndarray, sr: int, fmt: str = ".mp3", *, bitrate: int | None = None) -> bytes:
    """Encode a mono float32 waveform to bytes with PyAV (``fmt``: .mp3, .m4a, .aac or .opus).

    The waveform is resampled to a rate the codec takes when needed;
    ``bitrate`` is in bit/s (default: the codec's).
    """
    import tempfile

    key = fmt.lower() if fmt.startswith(".") else f".{fmt.lower()}"
    if key not in _PYAV_WRITERS:
        raise ParameterError(f"cannot encode {fmt!r}; use one of {', '.join(sorted(_PYAV_WRITERS))}")
    # AAC at 44.1 kHz whatever the input (what augmentations have always heard)
    rate = 44100 if key in (".m4a", ".aac") else _PYAV_WRITERS[key][3] or (sr if sr in _CODEC_RATES else 44100)
    x = resample(np.clip(np.asarray(y, dtype=np.float32).reshape(-1), -1.0, 1.0), orig_sr=sr, target_sr=rate)
    with tempfile.TemporaryDirectory(prefix="soundalike-encode-") as tmp:
        path = Path(tmp) / f"audio{key}"
        save(path, x, rate, bitrate=bitrate)
        return path.read_bytes()


def decode_bytes(data: bytes, *, sr: int | None) -> np.ndarray:
    """Decode an in-memory encoded file (as :func:`encode` writes) to mono float32 at ``sr``."""
    import av

    blocks: list[np.ndarray] = []
    native = 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = container.streams.audio[0]
            native = int(stream.codec_context.sample_rate)
            planar = int(stream.codec_context.channels or 1) <= 2
            resampler = av.AudioResampler(format="fltp" if planar else "flt")
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    blocks.append(_to_mono(out, planar))
    except (av.FFmpegError, IndexError) as exc:
        raise AudioDecodeError("<memory>", f"cannot decode the encoded bytes ({exc})") from exc
    y = np.concatenate(blocks).astype(np.float32) if blocks else np.zeros(0, np.float32)
    return y if sr is None else resample(y, orig_sr=native, target_sr=sr)


def codec_roundtrip(y: np.ndarray, sr: int, fmt: str = ".mp3", *, bitrate: int | None = None) -> np.ndarray:
    """Encode and decode again: what a file re-encoded at ``bitrate`` sounds like.

    Returns a waveform at ``sr`` of the same length as ``y``, time-aligned with it
    (the decoder drops the encoder delay; the tail is padded or cut).
    """
    out = decode_bytes(encode(y, sr, fmt, bitrate=bitrate), sr=sr)
    n = len(y)
    return out[:n] if len(out) >= n else np.concatenate([out, np.zeros(n - len(out), np.float32)])
