"""Per-track side data: one mechanism for every kind a catalog keeps beside the embeddings.

A :class:`SideTable` is a table keyed by track id, filled by one model that the catalog remembers in its
meta (``{prefix}_model_ref`` / ``_name`` / ``_fingerprint``). It loads that model on first use and refuses
one that changed; ``enable`` starts keeping the data (or switches to another model with ``rebuild``);
``fill`` computes the rows that are missing (a catalog from before the table, an interrupted run); rows are
written, copied for duplicate files and dropped with their track inside the catalog's transactions; and
``info`` says what is kept. Fingerprints, hash codes, tags, rhythm (tempo, a rhythm descriptor) and note features are the
kinds today; a new kind subclasses it the same way: say how to load the model, what identifies it, how a
waveform becomes a value and how a value becomes a row.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from soundalike.errors import (
    AudioDecodeError,
    CatalogError,
    CatalogMismatchError,
    ModelError,
    ParameterError,
)
from soundalike.index.rows import IndexReport, Match, Track
from soundalike.index.store import Store
from soundalike.limits import DEFAULT_MAX_DURATION


class SideTable:
    """One kind of per-track data made by one model (see the module docstring)."""

    prefix = ""  # meta keys: {prefix}_model_ref, _name, _fingerprint
    table = ""
    columns: tuple[str, ...] = ()  # besides track_id
    what = ""  # "fingerprints": for messages
    verb = ""  # "fingerprinted": "catalog C was fingerprinted with model M"
    flag = ""  # the CLI flag that replaces another model's rows
    desc = ""  # progress bar label
    counter = ""  # the IndexReport field counting filled rows

    def __init__(self, store: Store, encoder: Any) -> None:
        self.store = store
        self.encoder = encoder  # the catalog's own encoder (tag heads read its maps)
        self._model: Any = None
        self._cache: tuple[int, Any] | None = None

    # ------------------------------------------------------------- to define per kind
    def load(self, ref: str) -> Any:
        """The model a catalog names by ``ref``."""
        raise NotImplementedError

    #: True: the model wraps an encoder that names and fingerprints it (fingerprints, hash codes); False: the
    #: model does so itself (tag heads, the events model)
    via_encoder: bool = True

    @classmethod
    def identity(cls, model: Any) -> str:
        """What identifies the model's output (weights and front-end)."""
        return str((model.encoder if cls.via_encoder else model).fingerprint)

    @classmethod
    def model_meta(cls, model: Any) -> dict[str, str]:
        enc = model.encoder
        return {f"{cls.prefix}_model_fingerprint": cls.identity(model), f"{cls.prefix}_model_ref": str(enc.source),
                f"{cls.prefix}_model_name": str(enc.name)}

    def sample_rate(self, model: Any) -> int:
        return int(model.sample_rate)

    def compute(self, model: Any, samples: np.ndarray) -> Any:
        """A track's value from its waveform at :meth:`sample_rate`."""
        raise NotImplementedError

    def row(self, model: Any, value: Any) -> tuple[Any, ...]:
        """The table's columns (:attr:`columns`) for a value."""
        raise NotImplementedError

    def add_hint(self) -> str:
        raise NotImplementedError

    def rebuild_hint(self) -> str:
        raise NotImplementedError

    def extra_info(self, model_meta: dict[str, str]) -> dict[str, Any]:
        return {}

    # ---------------------------------------------------------------------- the model
    @property
    def enabled(self) -> bool:
        """Whether the catalog keeps this kind of data (a model was chosen for it)."""
        return self.store.meta_or(f"{self.prefix}_model_fingerprint") is not None

    @property
    def model_name(self) -> str:
        return self.store.meta(f"{self.prefix}_model_name")

    @property
    def model(self) -> Any:
        """The catalog's model for this data, loaded on first use and checked to be the one that made it."""
        if self._model is None:
            if not self.enabled:
                raise CatalogError(self.add_hint())
            ref = self.store.meta(f"{self.prefix}_model_ref")
            try:
                obj = self.load(ref)
            except ModelError as exc:
                raise CatalogError(f"catalog {self.store.root} was {self.verb} with model {ref!r}, which cannot be "
                                   f"loaded ({exc})") from exc
            want = self.store.meta(f"{self.prefix}_model_fingerprint")
            if self.identity(obj) != want:
                raise CatalogMismatchError(
                    f"catalog {self.store.root} was {self.verb} by {self.model_name!r} (fingerprint {want}), but "
                    f"{ref!r} now loads a different model ({self.identity(obj)}); {self.rebuild_hint()}")
            self._model = obj
        return self._model

    def use(self, model: Any) -> None:
        """Keep ``model`` as this table's model (just made or enabled with it)."""
        self._model = model

    # ------------------------------------------------------------------------ rows
    def put(self, track_id: int, value: Any) -> None:
        """Inside a transaction: store one track's value."""
        cols = ",".join(("track_id", *self.columns))
        qs = ",".join("?" * (1 + len(self.columns)))
        self.store.execute(f"INSERT OR REPLACE INTO {self.table}({cols}) VALUES ({qs})",
                           (int(track_id), *self.row(self.model, value)))

    def copy(self, src_id: int, dst_id: int) -> None:
        """Inside a transaction: give track ``dst_id`` the row of ``src_id`` (same content, another file)."""
        cols = ",".join(self.columns)
        self.store.execute(f"INSERT OR REPLACE INTO {self.table}(track_id, {cols}) SELECT ?, {cols} FROM "
                           f"{self.table} WHERE track_id = ?", (int(dst_id), int(src_id)))

    def delete(self, track_id: int) -> None:
        """Inside a transaction: drop one track's row (its file changed)."""
        self.store.execute(f"DELETE FROM {self.table} WHERE track_id = ?", (int(track_id),))

    def read(self, track_id: int) -> tuple[Any, ...] | None:
        row = self.store.execute(f"SELECT {','.join(self.columns)} FROM {self.table} WHERE track_id = ?",
                                 (int(track_id),)).fetchone()
        return None if row is None else tuple(row)

    def cached(self, build: Callable[[], Any]) -> Any:
        """``build()``, kept until the catalog changes (an in-memory index over every row)."""
        gen = self.store.generation
        if self._cache is None or self._cache[0] != gen:
            self._cache = (gen, build())
        return self._cache[1]

    def missing(self) -> list[tuple[int, str]]:
        """(track id, path) of the tracks without a row, by id."""
        return [(int(t), str(p)) for t, p in self.store.execute(
            f"SELECT t.id, t.path FROM tracks t LEFT JOIN {self.table} f ON f.track_id = t.id WHERE f.track_id "
            "IS NULL ORDER BY t.id")]

    def fill(self, report: IndexReport, *, max_duration: float | None = DEFAULT_MAX_DURATION,
             progress: bool | Any = False) -> None:
        """Compute the row of every track that has none; one transaction per track, so an interruption loses
        nothing done. Files that cannot be decoded any more are reported in ``report.failed``."""
        from soundalike.audio.io import decode

        model = self.model
        rows = self.missing()
        it: Any = rows
        if progress is True and rows:
            from tqdm import tqdm

            it = tqdm(rows, unit="track", desc=self.desc, dynamic_ncols=True)
        for tid, path in it:
            try:
                audio = decode(path, sr=self.sample_rate(model), max_duration=max_duration, require_sound=True)
            except (AudioDecodeError, OSError) as exc:
                report.failed.append((path, f"{self.desc} failed: {exc}"))
                continue
            value = self.compute(model, audio.samples)
            with self.store.transaction():
                self.put(tid, value)
            setattr(report, self.counter, getattr(report, self.counter) + 1)

    def enable(self, model: Any, *, rebuild: bool = False, progress: bool | Any = False,
               max_duration: float | None = DEFAULT_MAX_DURATION) -> IndexReport:
        """Start keeping this data with ``model`` and fill every track's row. A catalog that keeps rows of
        another model refuses (:class:`CatalogMismatchError`, nothing changed) unless ``rebuild`` drops them."""
        report = IndexReport()
        t0 = time.perf_counter()
        with self.store.write_lock():
            key = f"{self.prefix}_model_fingerprint"
            has = self.enabled
            same = has and self.store.meta(key) == self.identity(model)
            if has and not same and not rebuild:
                raise CatalogMismatchError(f"catalog {self.store.root} holds {self.what} of model {self.model_name!r};"
                                           f" pass {self.flag} to replace them with {self.name_of(model)!r}'s")
            if not same:
                with self.store.transaction():
                    self.store.execute(f"DELETE FROM {self.table}")
                    self.store.set_meta(self.model_meta(model))
            self.use(model)
            self.fill(report, max_duration=max_duration, progress=progress)
        report.wall_seconds = time.perf_counter() - t0
        return report

    @classmethod
    def name_of(cls, model: Any) -> str:
        return str((model.encoder if cls.via_encoder else model).name)

    def info(self) -> dict[str, Any] | None:
        """What is kept: the model and how many tracks have a row (None when nothing is kept)."""
        if not self.enabled:
            return None
        meta = {k: v for k, v in self.store.all_meta().items() if k.startswith(self.prefix + "_")}
        out: dict[str, Any] = {"model": meta[f"{self.prefix}_model_name"],
                               "model_ref": meta[f"{self.prefix}_model_ref"],
                               "model_fingerprint": meta[f"{self.prefix}_model_fingerprint"],
                               "tracks": self.store.count(self.table)}
        out.update(self.extra_info(meta))
        return out


class Fingerprints(SideTable):
    """Binary codes of 1 s windows every hop: what ``identify`` matches an excerpt against."""

    prefix, table, columns = "fp", "fingerprints", ("n", "hop", "codes")
    what, verb, flag, desc, counter = "fingerprints", "fingerprinted", "--rebuild", "fingerprinting", "fingerprinted"

    def load(self, ref: str) -> Any:
        from soundalike.fingerprint import load_fingerprinter

        return load_fingerprinter(ref)

    @classmethod
    def model_meta(cls, model: Any) -> dict[str, str]:
        return {**super().model_meta(model), "fp_bits": str(model.bits), "fp_hop": repr(model.hop_seconds)}

    def compute(self, model: Any, samples: np.ndarray) -> Any:
        return model.track_codes(samples, model.sample_rate)

    def row(self, model: Any, value: Any) -> tuple[Any, ...]:
        c = np.ascontiguousarray(value, dtype=np.uint8)
        return int(len(c)), float(model.hop_seconds), c.tobytes()

    def add_hint(self) -> str:
        r = self.store.root
        return (f"catalog {r} keeps no fingerprints, so it cannot identify excerpts; `soundalike fingerprints "
                f"--catalog {r}` adds them")

    def rebuild_hint(self) -> str:
        return f"rebuild the fingerprints with `soundalike fingerprints --catalog {self.store.root} --rebuild`"

    def extra_info(self, meta: dict[str, str]) -> dict[str, Any]:
        windows, nbytes = self.store.execute(
            "SELECT COALESCE(SUM(n), 0), COALESCE(SUM(LENGTH(codes)), 0) FROM fingerprints").fetchone()
        seconds = float(self.store.execute("SELECT COALESCE(SUM(duration), 0) FROM tracks").fetchone()[0])
        out = {"bits": int(meta["fp_bits"]), "hop_seconds": float(meta["fp_hop"]), "windows": int(windows),
               "code_bytes": int(nbytes), "bytes_per_hour": round(nbytes / (seconds / 3600.0)) if seconds > 0 else 0,
               "index": "hashed" if self.uses_hashed(int(windows)) else "exact"}
        pointer = self.store.root / f"{self.HASH_NAME}.json"
        try:
            folder = self.store.root / str(json.loads(pointer.read_text())["folder"])
            out["hashed_index_bytes"] = sum(f.stat().st_size for f in folder.iterdir())
        except (OSError, ValueError, KeyError):
            pass
        return out

    #: Index kinds for ``identify``: ``auto`` (exact below :attr:`HASH_MIN_WINDOWS`, hashed from there),
    #: ``exact`` (an in-memory scan of every window) or ``hashed`` (the persistent multi-probe hash).
    INDEX_KINDS = ("auto", "exact", "hashed")
    #: From this many windows (about 1,000 four-minute tracks) ``auto`` uses the hashed index: the exact scan
    #: costs about 1 ms per query window per million windows.
    HASH_MIN_WINDOWS = 500_000
    #: The hashed index: ``fingerprints.hash.json`` names its folder beside the database.
    HASH_NAME = "fingerprints.hash"

    index_kind = "auto"

    def use_index(self, kind: str) -> None:
        """Pick the window index kind (see :attr:`INDEX_KINDS`)."""
        if kind not in self.INDEX_KINDS:
            raise ParameterError(f"unknown fingerprint index {kind!r}; choose one of {', '.join(self.INDEX_KINDS)}")
        if kind != self.index_kind:
            self.index_kind, self._cache = kind, None

    def uses_hashed(self, windows: int | None = None) -> bool:
        """Whether ``identify`` searches the hashed index (see :attr:`INDEX_KINDS`)."""
        if self.index_kind != "auto":
            return self.index_kind == "hashed"
        if windows is None:
            windows = int(self.store.execute("SELECT COALESCE(SUM(n), 0) FROM fingerprints").fetchone()[0])
        return windows >= self.HASH_MIN_WINDOWS

    def refresh(self, *, progress: bool = False) -> None:
        """Bring the persistent hashed index up to date now (after ``index`` adds tracks), when it is in use,
        rather than at the first ``identify``."""
        if self.enabled and self.uses_hashed():
            self.window_index(progress=progress)

    def window_index(self, *, progress: bool = False) -> Any:
        """The index ``identify`` searches (rebuilt when the catalog changes): an in-memory exact
        :class:`~soundalike.fingerprint.index.BinaryIndex`, or the persistent
        :class:`~soundalike.fingerprint.index.HashedIndex` (see :attr:`INDEX_KINDS`)."""
        from soundalike.fingerprint.index import BinaryIndex

        fp = self.model
        nbytes = fp.bits // 8

        def build() -> Any:
            if self.uses_hashed():
                return self.hashed_index(progress=progress)
            rows = self.store.execute("SELECT track_id, hop, codes FROM fingerprints ORDER BY track_id").fetchall()
            return BinaryIndex.build(fp.bits, [(int(t), np.frombuffer(c, np.uint8).reshape(-1, nbytes), float(h))
                                               for t, h, c in rows])

        return self.cached(build)

    def _stamp(self) -> dict[str, Any]:
        """What a hashed index must have been built from to be current: this model and exactly these rows
        (track ids never come back once removed, and a track's codes change only with the model)."""
        import hashlib

        h = hashlib.sha256()
        for tid, n in self.store.execute("SELECT track_id, n FROM fingerprints ORDER BY track_id"):
            h.update(f"{tid}:{n};".encode())
        return {"model": self.identity(self.model), "rows": h.hexdigest()}

    def hashed_index(self, *, progress: bool = False) -> Any:
        """The persistent hashed index: loaded while it holds exactly the catalog's fingerprints, else rebuilt
        from SQLite into a new folder and swapped in atomically (in memory when the catalog is read-only)."""
        from soundalike.fingerprint.index import (
            HashedIndex,
            chunked,
            load_folder,
            restamp_folder,
            save_folder,
        )

        root, fp = self.store.root, self.model
        gen = self.store.generation
        current = load_folder(root, self.HASH_NAME)
        if current is not None and current.meta.get("generation") == gen:
            return current
        with self.store.snapshot():  # one consistent view of the rows for both passes of the build
            stamp = self._stamp()
            if current is not None and all(current.meta.get(k) == v for k, v in stamp.items()):
                restamp_folder(root, self.HASH_NAME, {"generation": gen})  # a change elsewhere in the catalog
                return current
            table = self.store.execute("SELECT track_id, n, hop FROM fingerprints ORDER BY track_id").fetchall()
            ids, lens, hops = ([r[i] for r in table] for i in range(3))

            def chunks() -> Any:
                return chunked(self.store.execute("SELECT codes FROM fingerprints ORDER BY track_id"), fp.bits // 8)

            bar: Any = None
            if progress and sum(lens):
                from tqdm import tqdm

                bar = tqdm(total=2 * sum(lens), unit="window", desc="fingerprint index", dynamic_ncols=True)

            def step(done: int, total: int) -> None:
                if bar is not None:
                    bar.update(done - bar.n)

            def make(folder: Any) -> Any:
                return HashedIndex.build(fp.bits, ids, lens, hops, chunks, folder=folder, progress=step)

            try:
                try:
                    return save_folder(make, root, self.HASH_NAME, {**stamp, "generation": gen})
                except OSError:  # a read-only catalog: the index lives in memory for this process
                    return make(None)
            finally:
                if bar is not None:
                    bar.close()


class HashCodes(SideTable):
    """One compact binary code per track, for Hamming search (``similar --hash``)."""

    prefix, table, columns = "hash", "hash_codes", ("code",)
    what, verb, flag, desc, counter = "hash codes", "hashed", "--rebuild-hash", "hashing", "hashed"

    def load(self, ref: str) -> Any:
        from soundalike.hashing.coder import load_hasher

        return load_hasher(ref)

    @classmethod
    def model_meta(cls, model: Any) -> dict[str, str]:
        return {**super().model_meta(model), "hash_bits": str(model.bits)}

    def compute(self, model: Any, samples: np.ndarray) -> Any:
        return model.code(samples)

    def row(self, model: Any, value: Any) -> tuple[Any, ...]:
        return (np.ascontiguousarray(value, dtype=np.uint8).tobytes(),)

    def add_hint(self) -> str:
        r = self.store.root
        return (f"catalog {r} keeps no hash codes; add them with `soundalike index MUSIC_FOLDER --catalog {r} "
                "--hash-model hash_cnn-music`")

    def rebuild_hint(self) -> str:
        return (f"rebuild the codes with `soundalike index MUSIC_FOLDER --catalog {self.store.root} --hash-model "
                f"{self.store.meta('hash_model_ref')} --rebuild-hash`")

    def extra_info(self, meta: dict[str, str]) -> dict[str, Any]:
        return {"bits": int(meta["hash_bits"])}

    @property
    def bits(self) -> int:
        return int(self.store.meta("hash_bits"))

    def code(self, track_id: int) -> np.ndarray | None:
        row = self.read(track_id)
        return None if row is None else np.frombuffer(row[0], np.uint8).copy()

    def index(self) -> tuple[Any, np.ndarray]:
        """(FAISS IndexBinaryFlat of every track's code, the track id of each row); rebuilt when the catalog
        changes."""
        from soundalike.index.vectors import faiss_module

        bits = self.bits

        def build() -> tuple[Any, np.ndarray]:
            rows = self.store.execute("SELECT track_id, code FROM hash_codes ORDER BY track_id").fetchall()
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            codes = (np.frombuffer(b"".join(r[1] for r in rows), np.uint8).reshape(-1, bits // 8) if rows
                     else np.zeros((0, bits // 8), np.uint8))
            index = faiss_module().IndexBinaryFlat(bits)
            if len(codes):
                index.add(np.ascontiguousarray(codes))
            return index, ids

        return self.cached(build)

    def search(self, code: np.ndarray, *, k: int, exclude: Iterable[int], allow: Iterable[int] | None,
               tracks: Callable[[list[int]], list[Track]]) -> list[Match]:
        """Nearest tracks to a packed code [shape=(bits / 8,)] by Hamming distance (score = 1 - d / bits)."""
        if k < 1:
            raise ParameterError("k must be at least 1")
        index, ids = self.index()
        bits = self.bits
        c = np.ascontiguousarray(np.asarray(code, dtype=np.uint8).reshape(1, -1))
        if c.shape[1] != bits // 8:
            raise ParameterError(f"a code of {c.shape[1] * 8} bits cannot search {bits}-bit hash codes")
        skip = set(exclude)
        if not len(ids):
            return []
        ok = None if allow is None else {int(i) for i in allow}
        dist, rows = index.search(c, min(k + len(skip), len(ids)) if ok is None else len(ids))
        pairs = [(int(ids[r]), int(d)) for r, d in zip(rows[0], dist[0], strict=True)
                 if r >= 0 and int(ids[r]) not in skip and (ok is None or int(ids[r]) in ok)][:k]
        by_id = {t.id: t for t in tracks([i for i, _ in pairs])}
        return [Match(rank=n + 1, score=1.0 - d / bits, track=by_id[i], hamming=d)
                for n, (i, d) in enumerate(pairs) if i in by_id]


class TagScores(SideTable):
    """Tag scores per chunk (the timeline, float16) and their mean, from heads on the catalog's encoder."""

    prefix, table, columns = "tag", "track_tags", ("scores", "n", "hop", "timeline")
    what, verb, flag, desc, counter = "tags", "tagged", "--rebuild-tags", "tagging", "tagged"
    via_encoder = False

    def load(self, ref: str) -> Any:
        from soundalike.tagging.tagger import load_tagger

        return load_tagger(json.loads(ref), model=self.encoder)

    @classmethod
    def model_meta(cls, model: Any) -> dict[str, str]:
        return {"tag_model_fingerprint": model.fingerprint, "tag_model_name": model.name,
                "tag_model_ref": json.dumps(model.refs), "tag_names": json.dumps(list(model.tags))}

    def sample_rate(self, model: Any) -> int:
        return int(self.encoder.frontend.sample_rate)

    @property
    def hop_seconds(self) -> float:
        fe = self.encoder.frontend
        return float(fe.frames_to_seconds(fe.chunk_hop_frames))

    def compute(self, model: Any, samples: np.ndarray) -> Any:
        return model.tag_waveform(samples, hop_frames=self.encoder.frontend.chunk_hop_frames).timeline

    def row(self, model: Any, value: Any) -> tuple[Any, ...]:
        from soundalike.tagging.tagger import summarise

        t = np.asarray(value, dtype=np.float32)
        return summarise(t).tobytes(), int(len(t)), self.hop_seconds, t.astype(np.float16).tobytes()

    def add_hint(self) -> str:
        r = self.store.root
        return (f"catalog {r} keeps no tags; add them with `soundalike index MUSIC_FOLDER --catalog {r} "
                "--tag-heads default`")

    def rebuild_hint(self) -> str:
        return (f"re-tag with `soundalike index MUSIC_FOLDER --catalog {self.store.root} --tag-heads HEADS "
                "--rebuild-tags`")

    def info(self) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        return {"heads": self.store.meta("tag_model_name"), "heads_ref": json.loads(self.store.meta("tag_model_ref")),
                "fingerprint": self.store.meta("tag_model_fingerprint"), "n_tags": len(self.names),
                "tracks": self.store.count(self.table)}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(json.loads(self.store.meta("tag_names"))) if self.enabled else ()

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(track ids [shape=(n,)], whole-track scores [shape=(n, n_tags)], columns in :attr:`names` order) of
        every tagged track; cached until the catalog changes."""
        n_tags = len(self.names)

        def build() -> tuple[np.ndarray, np.ndarray]:
            rows = self.store.execute("SELECT track_id, scores FROM track_tags ORDER BY track_id").fetchall()
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            scores = (np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(-1, n_tags) if rows
                      else np.zeros((0, n_tags), np.float32))
            return ids, scores

        return self.cached(build)

    def top(self, ids: Sequence[int], n: int = 5) -> dict[int, dict[str, float]]:
        """The ``n`` best tags (name: score, rounded) of each of ``ids`` that is tagged."""
        if not self.enabled:
            return {}
        all_ids, scores = self.matrix()
        rows = {int(i): r for i, r in zip(all_ids, scores, strict=True)}
        names = self.names
        return {int(i): {names[j]: round(float(rows[int(i)][j]), 3) for j in np.argsort(-rows[int(i)])[:n]}
                for i in ids if int(i) in rows}

    def filter(self, where: Sequence[str] | str) -> np.ndarray:
        """Ids of the tracks that meet every condition (``"tag:piano>0.5"``; see
        :func:`soundalike.tagging.filters.parse_where`)."""
        from soundalike.tagging.filters import parse_where

        names = self.names
        conds = parse_where(where, names, catalog=str(self.store.root))
        ids, scores = self.matrix()
        keep = np.ones(len(ids), dtype=bool)
        for c in conds:
            keep &= c.test(scores[:, names.index(c.tag)])
        return ids[keep]


class Rhythm(SideTable):
    """Tempo (BPM, and its confidence), beats per bar, onset rate and a rhythm descriptor per track, from the
    events model (:mod:`soundalike.events`); ``--where "tempo>120"`` filters on them."""

    prefix, table = "rhythm", "track_rhythm"
    columns = ("tempo", "confidence", "beats_per_bar", "onset_rate", "descriptor")
    what, verb, flag, desc, counter = "tempo and rhythm", "analysed for rhythm", "--rebuild-events", "events", "rhythm"
    via_encoder = False
    #: what ``--where`` may compare, and the column each reads
    FIELDS: dict[str, str] = {"tempo": "tempo", "tempo_confidence": "confidence", "beats_per_bar": "beats_per_bar",
                              "onset_rate": "onset_rate"}

    def load(self, ref: str) -> Any:
        from soundalike.events import load_events_model

        return load_events_model(ref)

    @classmethod
    def model_meta(cls, model: Any) -> dict[str, str]:
        from soundalike.events import SHIPPED_EVENTS_MODEL

        ref = "default" if str(model.source) == str(SHIPPED_EVENTS_MODEL) else str(model.source)
        return {"rhythm_model_fingerprint": cls.identity(model), "rhythm_model_ref": ref,
                "rhythm_model_name": str(model.name)}

    def sample_rate(self, model: Any) -> int:
        return int(model.frontend.sample_rate)

    def compute(self, model: Any, samples: np.ndarray) -> Any:
        from soundalike.events import detect_events

        return detect_events(samples, self.sample_rate(model), model=model)

    def row(self, model: Any, value: Any) -> tuple[Any, ...]:
        from soundalike.events.decode import rhythm_descriptor

        rate = len(value.onsets) / value.duration if value.duration > 0 else 0.0
        return (value.tempo, float(value.tempo_confidence), value.beats_per_bar, float(rate),
                rhythm_descriptor(value).tobytes())

    def add_hint(self) -> str:
        r = self.store.root
        return (f"catalog {r} keeps no tempo or rhythm; add them with `soundalike index MUSIC_FOLDER --catalog {r} "
                "--events`")

    def rebuild_hint(self) -> str:
        return (f"re-analyse with `soundalike index MUSIC_FOLDER --catalog {self.store.root} --events "
                "--rebuild-events`")

    def values(self, track_id: int) -> dict[str, Any] | None:
        """A track's stored tempo, confidence, beats per bar, onset rate and descriptor (None: no row)."""
        row = self.read(track_id)
        if row is None:
            return None
        tempo, conf, per_bar, rate, desc = row
        return {"tempo": None if tempo is None else round(float(tempo), 2), "tempo_confidence": round(float(conf), 3),
                "beats_per_bar": per_bar, "onset_rate": round(float(rate), 3),
                "descriptor": np.frombuffer(desc, np.float32).copy()}

    def filter(self, conditions: Sequence[Any]) -> np.ndarray:
        """Ids of the tracks whose stored values meet every condition (see
        :func:`soundalike.tagging.filters.parse_where`); a track without a tempo fails any tempo condition."""
        if conditions and not self.enabled:
            raise ParameterError(self.add_hint() + ", then filter by tempo")
        rows = self.store.execute(f"SELECT track_id, {', '.join(self.FIELDS.values())} FROM track_rhythm "
                                  "ORDER BY track_id").fetchall()
        ids = np.array([r[0] for r in rows], np.int64)
        keep = np.ones(len(ids), bool)
        for c in conditions:
            j = list(self.FIELDS).index(c.tag) + 1
            col = np.array([np.nan if r[j] is None else float(r[j]) for r in rows], np.float64)
            keep &= np.nan_to_num(c.test(col), nan=False).astype(bool) & ~np.isnan(col)
        return ids[keep]


class NoteFeatures(SideTable):
    """Per track, from the transcription model (:mod:`soundalike.transcribe`): its chroma sequence (the pitch
    classes sounding four times a second, float16), that sequence's summary
    (:func:`soundalike.transcribe.notes.chroma_feature`) and its note count. ``similar --by notes`` ranks by
    the summaries' cosine, then re-scores the nearest by how well the sequences line up
    (:func:`~soundalike.transcribe.notes.alignment_score`): the same work in another arrangement ranks
    first."""

    prefix, table, columns = "notes", "track_notes", ("n_notes", "feature", "sequence")
    #: how many nearest by feature are re-scored with their chroma sequences
    RERANK_DEPTH = 50
    what, verb, flag, desc, counter = "note features", "transcribed", "--rebuild-notes", "transcribing", "notes"
    via_encoder = False

    def load(self, ref: str) -> Any:
        from soundalike.transcribe import load_transcription_model

        return load_transcription_model(ref)

    @classmethod
    def model_meta(cls, model: Any) -> dict[str, str]:
        from soundalike.transcribe import SHIPPED_NOTES_MODEL

        ref = "default" if str(model.source) == str(SHIPPED_NOTES_MODEL) else str(model.source)
        return {"notes_model_fingerprint": cls.identity(model), "notes_model_ref": ref,
                "notes_model_name": str(model.name)}

    def sample_rate(self, model: Any) -> int:
        return int(model.frontend.sample_rate)

    def compute(self, model: Any, samples: np.ndarray) -> Any:
        from soundalike.transcribe import transcribe_waveform

        return transcribe_waveform(samples, self.sample_rate(model), model=model)

    def row(self, model: Any, value: Any) -> tuple[Any, ...]:
        from soundalike.transcribe.notes import CHROMA_FPS, CHROMA_MAX_SECONDS, chroma_feature

        seq = value.chroma[: int(CHROMA_MAX_SECONDS * CHROMA_FPS)]
        return len(value.notes), chroma_feature(seq).tobytes(), seq.astype(np.float16).tobytes()

    def add_hint(self) -> str:
        r = self.store.root
        return (f"catalog {r} keeps no note features; add them with `soundalike index MUSIC_FOLDER --catalog {r} "
                "--notes`")

    def rebuild_hint(self) -> str:
        return (f"re-transcribe with `soundalike index MUSIC_FOLDER --catalog {self.store.root} --notes "
                "--rebuild-notes`")

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(track ids [shape=(n,)], chroma summaries [shape=(n, FEATURE_DIM)]) of every transcribed track;
        cached until the catalog changes."""
        from soundalike.transcribe.notes import FEATURE_DIM

        def build() -> tuple[np.ndarray, np.ndarray]:
            rows = self.store.execute("SELECT track_id, feature FROM track_notes ORDER BY track_id").fetchall()
            ids = np.array([r[0] for r in rows], np.int64)
            feats = (np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(-1, FEATURE_DIM) if rows
                     else np.zeros((0, FEATURE_DIM), np.float32))
            return ids, feats

        return self.cached(build)

    @staticmethod
    def _sequence(blob: bytes) -> np.ndarray:
        return np.frombuffer(blob, np.float16).astype(np.float32).reshape(-1, 12)

    def feature(self, track_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        """A track's stored (chroma summary, chroma sequence [shape=(frames, 12)]), None when it has none."""
        row = self.read(track_id)
        if row is None:
            return None
        return np.frombuffer(row[1], np.float32).copy(), self._sequence(row[2])

    def sequences(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored chroma sequences of ``ids`` (those that have one), read in one query."""
        qs = ",".join("?" * len(ids))
        rows = self.store.execute(f"SELECT track_id, sequence FROM track_notes WHERE track_id IN ({qs})",
                                  [int(i) for i in ids]).fetchall() if ids else []
        return {int(t): self._sequence(blob) for t, blob in rows}

    def search(self, feature: np.ndarray, sequence: np.ndarray, *, k: int, exclude: Iterable[int],
               allow: Iterable[int] | None, tracks: Callable[[list[int]], list[Track]]) -> list[Match]:
        """The ``k`` tracks whose notes are nearest: the :attr:`RERANK_DEPTH` nearest by the cosine of chroma
        summaries (``feature``), re-scored as 0.5 x that cosine + 0.5 x how well their chroma sequences line
        up with ``sequence`` (:func:`~soundalike.transcribe.notes.alignment_score`), best first."""
        from soundalike.transcribe.notes import alignment_score

        if k < 1:
            raise ParameterError("k must be at least 1")
        if not self.enabled:
            raise CatalogError(self.add_hint() + ", then search with --by notes")
        ids, feats = self.matrix()
        keep = ~np.isin(ids, np.fromiter((int(i) for i in exclude), np.int64))
        if allow is not None:
            keep &= np.isin(ids, np.fromiter((int(i) for i in allow), np.int64))
        ids, feats = ids[keep], feats[keep]
        cosines = feats @ np.asarray(feature, np.float32)
        cands = [int(ids[i]) for i in np.argsort(-cosines, kind="stable")[: max(k, self.RERANK_DEPTH)]]
        cosine = dict(zip((int(i) for i in ids), cosines.tolist(), strict=True))
        stored = self.sequences(cands)
        scores = {t: 0.5 * cosine[t] + 0.5 * (alignment_score(sequence, stored[t]) if t in stored else 0.0)
                  for t in cands}
        order = sorted(cands, key=lambda t: -scores[t])[:k]
        by_id = {t.id: t for t in tracks(order)}
        return [Match(rank=n + 1, score=scores[t], track=by_id[t]) for n, t in enumerate(order) if t in by_id]


#: The side tables every catalog has, by the attribute a :class:`~soundalike.index.catalog.Catalog` gives them.
SIDE_TABLES: dict[str, type[SideTable]] = {"fingerprints": Fingerprints, "hash_codes": HashCodes,
                                           "tag_scores": TagScores, "rhythm": Rhythm, "notes": NoteFeatures}
