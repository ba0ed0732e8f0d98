"""Front-end: waveform -> log-mel spectrogram -> fixed-size chunks."""

from soundalike.features.mel import (
    FrontendConfig,
    MelFrontend,
    chunk_power,
    log_mel,
    log_mel_chunks,
    mel_filterbank,
    n_chunks,
    power_to_db,
)

__all__ = [
    "FrontendConfig",
    "MelFrontend",
    "chunk_power",
    "log_mel",
    "log_mel_chunks",
    "mel_filterbank",
    "n_chunks",
    "power_to_db",
]
