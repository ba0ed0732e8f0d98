"""Helpers for tests and examples: generated signals and tiny encoders."""

from soundalike.testing.synth import (
    chirp,
    class_track,
    noise,
    synth_track,
    tone,
    write_labelled_tracks,
    write_mod,
    write_tracks,
)

__all__ = ["chirp", "class_track", "noise", "synth_track", "tone", "write_labelled_tracks", "write_mod", "write_tracks"]

