"""Helpers for tests and examples: generated signals and tiny encoders."""

from soundalike.testing.synth import chirp, noise, synth_track, tone, write_tracks

__all__ = ["chirp", "noise", "synth_track", "tone", "write_tracks"]
