"""What soundalike accepts as input, in one place, and a deadline that long work checks as it goes.

Every command that decodes audio takes ``--max-duration`` with :data:`DEFAULT_MAX_DURATION` as its
default; the web app refuses longer uploads the same way. Audio shorter than :data:`MIN_SECONDS` or
quieter than :data:`SILENCE_DBFS` is refused before any model sees it (a model would still give it
confident answers).

:func:`deadline` bounds the work of one request: decoding and the encoder's batches call
:func:`check_deadline`, which raises :class:`~soundalike.errors.TimeLimitError` once the time is up, so
work that has timed out stops instead of running on in a worker thread.
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

from soundalike.errors import ParameterError, TimeLimitError

#: Seconds of audio a file (or the window asked for) may hold; every command's ``--max-duration`` default.
DEFAULT_MAX_DURATION = 3600.0
#: Shortest audio soundalike analyses, in seconds (identification needs 0.5 s; a model chunk is ~1.5 s).
MIN_SECONDS = 0.5
#: Audio whose loudest sample is below this level (dBFS) is silence.
SILENCE_DBFS = -80.0
#: The same level as a sample value.
SILENT_PEAK = 10.0 ** (SILENCE_DBFS / 20.0)
#: Offsets past this many seconds (about 11.6 days) cannot point into any audio soundalike reads.
MAX_OFFSET = 1e6

_deadline: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("soundalike_deadline",
                                                                                       default=None)


def check_max_duration(value: float | None) -> float | None:
    """``value`` if it is a usable ``max_duration`` (positive seconds, or None for no limit)."""
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise ParameterError(f"--max-duration must be a positive number of seconds, got {value!r}")
    return value


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Within this block (in this thread or task), :func:`check_deadline` raises once ``seconds`` have passed.

    ``None`` leaves any outer deadline in force. Nested deadlines keep the earlier of the two.
    """
    if seconds is None:
        yield
        return
    now = time.monotonic()
    outer = _deadline.get()
    end = now + float(seconds)
    token = _deadline.set((end, float(seconds)) if outer is None or end < outer[0] else outer)
    try:
        yield
    finally:
        _deadline.reset(token)


def check_deadline() -> None:
    """Raise :class:`TimeLimitError` when the current :func:`deadline` has passed; cheap enough for inner loops."""
    d = _deadline.get()
    if d is not None and time.monotonic() > d[0]:
        raise TimeLimitError(f"the work took over its time limit of {d[1]:g} s and was stopped; send a shorter "
                             "excerpt (offset/duration) or raise the limit")
