"""Catalog on disk (SQLite + FAISS) bound to the model that filled it."""

from soundalike.index.catalog import Catalog, IndexReport, Match, Track, walk_audio

__all__ = ["Catalog", "IndexReport", "Match", "Track", "walk_audio"]
