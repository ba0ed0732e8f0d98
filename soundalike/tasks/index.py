"""Indexing music as a user asks for it: open the catalog (or make it), switch on what it should keep, add."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundalike.index.catalog import Catalog
from soundalike.index.rows import IndexReport
from soundalike.limits import DEFAULT_MAX_DURATION


@dataclass
class IndexRequest:
    """What ``soundalike index`` is asked to do."""

    catalog: str | Path  # the catalog folder; made when it does not exist
    paths: Sequence[str | Path]  # audio files and folders
    manifest: str | Path | None = None  # JSON lines of labels, paths relative to the manifest
    prune: bool = False  # drop tracks under ``paths`` whose file is gone
    model: Any = None  # the encoder (a new catalog: default the shipped one; else it must be the catalog's)
    fingerprints: bool = True  # a new catalog keeps fingerprints for identify
    fingerprint_model: Any = None  # default: the shipped one
    hash_model: Any = None  # also keep this hash model's code per track
    rebuild_hash: bool = False  # replace another hash model's codes
    tag_heads: Any = None  # None: the default for a new catalog, nothing changed for an old one; "none": no tags
    rebuild_tags: bool = False  # replace other heads' tags
    events: Any = None  # keep tempo and rhythm per track: True (the shipped events model) or a model path
    rebuild_events: bool = False  # replace another events model's rows
    notes: Any = None  # keep a note feature per track: True (the shipped transcription model) or a model path
    rebuild_notes: bool = False  # replace another transcription model's rows
    index_type: str | None = None  # the vector index to ask for (None: keep / auto)
    max_duration: float | None = DEFAULT_MAX_DURATION
    progress: bool | Callable[[dict[str, Any]], None] = False
    ray: bool = False
    ray_address: str | None = None
    ray_workers: int = 2


def index_music(req: IndexRequest) -> tuple[IndexReport, Catalog]:
    """Run ``req``: hash codes and tags are switched on (or checked to be these models') before any track is
    added, so a mismatch fails before work is done. Returns the report (codes and tags made for tracks already
    in the catalog counted in) and the open catalog (the caller closes it)."""
    heads = None if req.tag_heads == "none" else req.tag_heads
    enabled: list[IndexReport] = []
    if Catalog.exists(req.catalog):
        catalog = Catalog.open(req.catalog, model=req.model)
        try:
            if req.hash_model:
                enabled.append(catalog.enable_hash_codes(req.hash_model, rebuild=req.rebuild_hash,
                                                         max_duration=req.max_duration, progress=req.progress is True))
            if req.index_type:
                catalog.set_index(req.index_type)
            if heads is not None:
                enabled.append(catalog.enable_tags(heads, rebuild=req.rebuild_tags, max_duration=req.max_duration,
                                                   progress=req.progress is True))
            if req.events:
                enabled.append(catalog.enable_events("default" if req.events is True else req.events,
                                                     rebuild=req.rebuild_events, max_duration=req.max_duration,
                                                     progress=req.progress is True))
            if req.notes:
                enabled.append(catalog.enable_notes("default" if req.notes is True else req.notes,
                                                    rebuild=req.rebuild_notes, max_duration=req.max_duration,
                                                    progress=req.progress is True))
        except BaseException:
            catalog.close()
            raise
    else:
        catalog = Catalog.create(req.catalog, model=req.model,
                                 fingerprint_model=(req.fingerprint_model or "default") if req.fingerprints else None,
                                 hash_model=req.hash_model, tag_heads=None if req.tag_heads == "none" else (heads or "default"),
                                 index=req.index_type or "auto",
                                 events_model=("default" if req.events is True else req.events) if req.events else None,
                                 notes_model=("default" if req.notes is True else req.notes) if req.notes else None)
    try:
        rep = catalog.add(req.paths, manifest=req.manifest, prune=req.prune, max_duration=req.max_duration,
                          progress=req.progress, ray=req.ray, ray_address=req.ray_address, ray_workers=req.ray_workers)
    except BaseException:
        catalog.close()
        raise
    try:
        catalog.fingerprints.refresh(progress=req.progress is True)  # a large catalog's hashed index, now
    except BaseException:
        catalog.close()
        raise
    for extra in enabled:  # codes / tags made for tracks already in the catalog, and files that failed then
        rep.hashed += extra.hashed
        rep.tagged += extra.tagged
        rep.rhythm += extra.rhythm
        rep.notes += extra.notes
        rep.failed = extra.failed + rep.failed
    return rep, catalog
