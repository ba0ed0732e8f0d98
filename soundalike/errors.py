"""One exception tree for soundalike.

Every error that bad input can cause is a :class:`SoundalikeError`; its message
says what was wrong and what to do about it. The CLI prints the message and
exits with status 2 instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path


class SoundalikeError(Exception):
    """Root of every error soundalike raises on purpose."""


class ParameterError(SoundalikeError, ValueError):
    """An argument or configuration value is out of range or inconsistent."""


class AudioDecodeError(SoundalikeError):
    """A file could not be decoded to audio (corrupt, empty, non-audio, unreadable)."""

    verb = "cannot decode"

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.verb} {self.path!r}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # picklable: crosses process and Ray boundaries
        return type(self), (self.path, self.reason)


class AudioTooLongError(AudioDecodeError):
    """A file is longer than the configured limit."""

    verb = "refused"


class AudioTooShortError(AudioDecodeError):
    """A file holds too little audio to analyse (under :data:`soundalike.limits.MIN_SECONDS`)."""

    verb = "cannot analyse"


class SilentAudioError(AudioDecodeError):
    """A file decodes to silence: there is nothing to embed, tag or identify."""

    verb = "cannot analyse"


class NotAFileError(AudioDecodeError):
    """A path names a named pipe, device, socket or folder: soundalike reads regular files only."""

    verb = "skipped"


class TimeLimitError(SoundalikeError):
    """Work ran past its time limit and was stopped (a web request's decode and analysis)."""


class ModelError(SoundalikeError):
    """A model file is missing, unreadable, or does not describe a known encoder."""


class CatalogError(SoundalikeError):
    """A catalog is missing, locked, or damaged."""


class CatalogCorruptError(CatalogError):
    """The catalog's database is damaged; ``soundalike check --catalog C --repair`` rebuilds what is intact."""


class CatalogMismatchError(CatalogError):
    """A catalog was filled by another model or front-end than the one in use."""


class TrackNotFoundError(CatalogError, KeyError):
    """A track id or path is not in the catalog."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class RenderError(SoundalikeError):
    """The demo corpus could not be rendered (missing soundfont or renderer)."""


class DatasetError(SoundalikeError):
    """A data set could not be fetched or prepared (package missing, archive unreadable)."""


class ConfigError(ParameterError):
    """A YAML training config is malformed or names unknown fields."""


class ListenImportError(SoundalikeError):
    """A listening-history file has rows that cannot be imported; nothing from it was imported."""

    def __init__(self, message: str, problems: list[tuple[int, str]]) -> None:
        self.problems = problems  # (line number, what is wrong)
        super().__init__(message)


class RecommenderError(SoundalikeError):
    """The hybrid recommender cannot be fitted or loaded (no listens, an unreadable stored model)."""
