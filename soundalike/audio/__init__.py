"""Audio decoding: ``load`` a file as a mono float32 waveform at a chosen rate."""

from soundalike.audio.io import (
    AUDIO_EXTENSIONS,
    AudioInfo,
    decode,
    info,
    is_audio_path,
    load,
    resample,
    save,
)

__all__ = ["AUDIO_EXTENSIONS", "AudioInfo", "decode", "info", "is_audio_path", "load", "resample", "save"]
