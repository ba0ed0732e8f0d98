"""The catalog on disk (SQLite + FAISS), bound to the model that filled it: a store of tracks, their
embeddings and side data. Use cases over it live in :mod:`soundalike.tasks`."""

from soundalike.index.catalog import Catalog
from soundalike.index.rows import IndexReport, Match, Track

__all__ = ["Catalog", "IndexReport", "Match", "Track"]
