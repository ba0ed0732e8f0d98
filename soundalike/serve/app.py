"""The web app: a FastAPI JSON API over one catalog, plus a plain HTML/CSS/JS page (no build step).

Uploads arrive as the raw request body (``curl --data-binary @song.mp3``; the page sends the file the
same way) or as the file field of a ``multipart/form-data`` form (``curl -F file=@song.mp3``). They are streamed into a private temporary directory (mode 0700) with a size cap (413 past
it), decoded with a time limit (what the bytes are is decided by decoding: 415 for anything that is not
audio), and always deleted. Inference runs in a bounded pool of worker threads, each with its own
catalog connection. Audio is served only by catalog id, with HTTP range requests; no file path appears in
any URL or answer.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from soundalike.errors import (
    AudioDecodeError,
    AudioTooLongError,
    AudioTooShortError,
    CatalogCorruptError,
    ParameterError,
    SilentAudioError,
    SoundalikeError,
    TimeLimitError,
    TrackNotFoundError,
)
from soundalike.limits import DEFAULT_MAX_DURATION, deadline

if TYPE_CHECKING:
    from soundalike.index.catalog import Catalog

STATIC = Path(__file__).with_name("static")
AUDIO_TYPES = {".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg",
               ".flac": "audio/flac", ".wav": "audio/wav", ".m4a": "audio/mp4", ".aac": "audio/aac",
               ".webm": "audio/webm", ".aiff": "audio/aiff", ".aif": "audio/aiff"}


#: OpenAPI description of an upload: the audio file as the raw request body, or as a form's file field.
BINARY_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "the audio file"}}}}}}}


@dataclass(frozen=True)
class ServeConfig:
    catalog: str
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 8000
    max_upload_mb: float = 50.0  # bigger uploads get 413
    decode_timeout: float = 30.0  # seconds for decoding + inference of one upload; then the work is stopped
    segments_timeout: float = 600.0  # the same for a long recording's segments (/api/segments)
    max_duration: float = DEFAULT_MAX_DURATION  # longer uploads are refused (413)
    workers: int = 2  # inference threads; more requests wait their turn
    k: int = 10
    shards: int = 0  # > 0: song search over this many Ray actors holding index shards (needs Ray)
    ray_address: str | None = None  # the Ray cluster for shards (default: the running one, else a local one)

    def __post_init__(self) -> None:
        if (self.max_upload_mb <= 0 or self.decode_timeout <= 0 or self.segments_timeout <= 0 or self.workers < 1
                or self.k < 1 or self.max_duration <= 0):
            raise ParameterError(f"bad server settings {self}")


class Engine:
    """Runs catalog work in a bounded pool of threads, each with its own :class:`Catalog` (SQLite
    connections belong to one thread)."""

    def __init__(self, cfg: ServeConfig) -> None:
        from soundalike.index.catalog import Catalog

        self.cfg = cfg
        first = Catalog.open(cfg.catalog, shards=cfg.shards, ray_address=cfg.ray_address)  # fail now, not later
        if cfg.shards:
            first.vector_index()  # start the shard actors before the first request
        self.has_fingerprints, self.has_tags = first.has_fingerprints, first.has_tags
        self.name = first.root.name
        first.close()
        self.root = str(first.root)
        self.busy = 0  # timed (upload) requests being worked on now
        self.stopped = 0  # timed requests whose work was stopped at their deadline
        self._count = threading.Lock()
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="soundalike-serve")
        # catalog reads (health, track lists, the map) never queue behind decoding and inference
        self._light = ThreadPoolExecutor(max_workers=2, thread_name_prefix="soundalike-light")
        self._map: tuple[int, dict[str, Any]] | None = None
        self.uploads = Path(tempfile.mkdtemp(prefix="soundalike-uploads-"))  # 0700: only this user reads it

    def catalog(self) -> Catalog:
        cat = getattr(self._local, "catalog", None)
        if cat is None:
            from soundalike.index.catalog import Catalog

            cat = self._local.catalog = Catalog.open(self.cfg.catalog, shards=self.cfg.shards,
                                                     ray_address=self.cfg.ray_address)
        return cat

    async def run(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None,
                  light: bool = False) -> Any:
        """``fn(catalog, *args)`` in a worker thread. With ``timeout`` the work runs under a
        :func:`~soundalike.limits.deadline` counted from now (time spent queueing counts): decoding and the
        encoder stop at their next check once it has passed, so a request that timed out frees its worker."""
        loop = asyncio.get_running_loop()
        end = None if timeout is None else time.monotonic() + timeout

        def call() -> Any:
            if end is None:
                return fn(self.catalog(), *args)
            left = end - time.monotonic()
            if left <= 0:
                raise TimeLimitError(f"the request waited its whole time limit ({timeout:g} s) for a free worker; "
                                     "try again in a moment")
            with self._count:
                self.busy += 1
            try:
                with deadline(left):
                    return fn(self.catalog(), *args)
            except TimeLimitError:
                with self._count:
                    self.stopped += 1
                raise
            finally:
                with self._count:
                    self.busy -= 1

        fut = loop.run_in_executor(self._light if light else self._pool, call)
        return await asyncio.wait_for(fut, timeout) if timeout else await fut

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._light.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.uploads, ignore_errors=True)

    def public_message(self, exc: BaseException) -> str:
        """What an error says to a web client: never a server path (the upload's temporary file, the catalog
        folder, a track's file)."""
        if isinstance(exc, AudioDecodeError):
            text = f"{exc.verb} the upload: {exc.reason}"
            names = [exc.path]
        else:
            text, names = str(exc), []
        for name in (*names, str(self.uploads), self.root, str(self.cfg.catalog)):
            if name:
                text = text.replace(name, "the upload" if name in names else f"catalog {self.name}")
        return _PATH.sub("<path>", text)

    # -------------------------------------------------------------- answers (run in the pool)
    @staticmethod
    def web_track(track: Any, tags: Any = None) -> dict[str, Any]:
        """A track as the API shows it: no file path, an audio URL by id, its top tags."""
        d = {"id": track.id, "name": track.display_name, "title": track.title, "artist": track.artist,
             "album": track.album, "genre": track.genre, "duration": round(track.duration, 3),
             "labels": track.labels, "audio_url": f"/api/tracks/{track.id}/audio"}
        if tags is not None:
            d["tags"] = tags
        return d



#: An absolute file path inside a message (what is left after the known ones were named).
_PATH = re.compile(r"(?<![\w.>])/(?:[^\s'\"/:]+/)+[^\s'\"]*")

#: Headers on every answer: no MIME sniffing, no framing, no third-party scripts or styles, no referrer.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                               "style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'self'",
}
#: The /docs page's own scripts may run inline (Swagger UI starts itself with an inline script).
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline'; object-src 'none'; frame-ancestors 'none'")


def error_status(exc: SoundalikeError) -> int:
    """The HTTP status of a typed error."""
    for kind, status in ((TrackNotFoundError, 404), (AudioTooLongError, 413), (AudioTooShortError, 422),
                         (SilentAudioError, 422), (AudioDecodeError, 415), (CatalogCorruptError, 503)):
        if isinstance(exc, kind):
            return status
    return 422


def create_app(cfg: ServeConfig) -> Any:
    """The FastAPI app for ``cfg.catalog``."""
    engine = Engine(cfg)
    cap = int(cfg.max_upload_mb * 2**20)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            engine.close()

    app = FastAPI(title="soundalike", version=__import__("soundalike").__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="What sounds like this, what is this, and where did it come from: a JSON API "
                              "over one soundalike catalog. Uploads are an audio file: the raw request body, "
                              "or the file field of a multipart/form-data form.")
    app.state.engine = engine

    @app.exception_handler(SoundalikeError)
    async def _typed(_: Request, exc: SoundalikeError) -> JSONResponse:
        return JSONResponse({"detail": engine.public_message(exc), "error": type(exc).__name__},
                            status_code=error_status(exc))

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[..., Any]) -> Any:
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if request.url.path == "/docs":
            response.headers["Content-Security-Policy"] = DOCS_CSP
        return response

    docs_assets = _swagger_assets()
    if docs_assets is not None:
        app.mount("/docs-assets", StaticFiles(directory=docs_assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Any:
        """Swagger UI from files served here (no CDN: it works offline), or a note where it is not installed."""
        from fastapi.openapi.docs import get_swagger_ui_html
        from fastapi.responses import HTMLResponse

        if docs_assets is None:
            return HTMLResponse("<!doctype html><title>soundalike API</title><p>The interactive API page needs "
                                "the <code>swagger-ui-bundle</code> package (<code>pip install "
                                "'soundalike[serve]'</code>); the API description is at "
                                "<a href=\"/openapi.json\">/openapi.json</a>.</p>")
        return get_swagger_ui_html(openapi_url="/openapi.json", title="soundalike API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")

    async def receive_upload(request: Request) -> Path:
        """Stream the upload into the private upload folder, refusing more than the cap (413): the raw body,
        or the first file of a ``multipart/form-data`` body (``curl -F file=@song.mp3``, a browser form)."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise HTTPException(413, f"upload of {int(declared) / 2**20:.1f} MB is over the {cfg.max_upload_mb:g} MB cap")
        path = engine.uploads / secrets.token_hex(16)
        kind = request.headers.get("content-type", "")
        try:
            with open(path, "xb") as fh:
                sink = _CappedFile(fh, cap, cfg.max_upload_mb)
                if kind.lower().startswith("multipart/form-data"):
                    await _receive_multipart(request, kind, sink)
                else:
                    async for block in request.stream():
                        sink.write(block)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if sink.size == 0:
            path.unlink(missing_ok=True)
            raise HTTPException(422, "empty upload: send an audio file as the request body or as a form's file")
        return path

    async def with_upload(request: Request, work: Callable[..., Any], timeout: float | None = None) -> Any:
        path = await receive_upload(request)
        limit = timeout or cfg.decode_timeout
        try:
            return await engine.run(work, path, timeout=limit)
        except (TimeoutError, TimeLimitError):
            raise HTTPException(422, f"decoding and analysing the upload took over {limit:g} s and "
                                     "was stopped; send a shorter excerpt (offset, duration)") from None
        finally:
            path.unlink(missing_ok=True)

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, Any]:
        n = await engine.run(lambda cat: len(cat), light=True)
        return {"status": "ok", "catalog": engine.name, "tracks": n, "busy": engine.busy,
                "workers": cfg.workers}

    @app.post("/api/similar", tags=["search"],
              openapi_extra=BINARY_BODY)
    async def similar(request: Request, k: int = Query(cfg.k, ge=1, le=200), offset: float = Query(0.0, ge=0),
                      duration: float | None = Query(None, gt=0), where: Annotated[list[str] | None, Query()] = None,
                      identify: bool = True) -> dict[str, Any]:
        """The k catalog tracks that sound most like the uploaded audio; also its spectrogram, its tags, what
        its own file tags name it (``upload``: title, artist, album, null where untagged), and, when it is an
        excerpt of a catalog track, which one and where."""

        def work(cat: Catalog, path: Path) -> dict[str, Any]:
            from soundalike.tasks.similar import analyse

            res = analyse(cat, path, k=k, offset=offset, duration=duration, where=where,
                          identify=identify, max_duration=cfg.max_duration)
            tags = cat.top_tags([m.track.id for m in res.matches])
            out: dict[str, Any] = {
                "k": k, "where": where or [], "duration": round(res.duration, 3),
                "matches": [{"rank": m.rank, "score": round(float(m.score), 4),
                             **engine.web_track(m.track, tags.get(m.track.id))} for m in res.matches],
                "spectrogram": res.spectrogram}
            if res.tags is not None:
                out["tags"] = res.tags
            out["upload"] = {key: res.metadata.get(key) for key in ("title", "artist", "album")}
            if identify and cat.has_fingerprints:
                out["excerpt_of"] = web_source(res.excerpt_of)
            out["seconds"] = round(res.seconds, 3)
            return out

        return await with_upload(request, work)

    def web_source(m: Any) -> dict[str, Any] | None:
        """An identification as the API shows it: the track (no path), the offset and the confidence."""
        if m is None:
            return None
        return {"offset": round(m.offset, 3), "confidence": round(m.confidence, 4), **engine.web_track(m.track)}

    def need_fingerprints() -> None:
        if not engine.has_fingerprints:
            raise HTTPException(409, "this catalog keeps no fingerprints; `soundalike fingerprints --catalog C` adds them")

    @app.post("/api/identify", tags=["search"],
              openapi_extra=BINARY_BODY)
    async def identify(request: Request, offset: float = Query(0.0, ge=0),
                       duration: float | None = Query(None, gt=0)) -> dict[str, Any]:
        """Which catalog track the uploaded excerpt comes from, and where (``match`` null: no match)."""
        need_fingerprints()

        def work(cat: Catalog, path: Path) -> dict[str, Any] | None:
            from soundalike.tasks.identify import identify as identify_file

            res = identify_file(cat, path, offset=offset, duration=duration, top=3, max_duration=cfg.max_duration)
            return web_source(res.match)

        return {"match": await with_upload(request, work)}

    @app.post("/api/segments", tags=["search"],
              openapi_extra=BINARY_BODY)
    async def segments(request: Request, offset: float = Query(0.0, ge=0),
                       duration: float | None = Query(None, gt=0)) -> dict[str, Any]:
        """Every catalog track heard in an uploaded long recording (a mix, a broadcast): start and end in
        the recording, the offset into the track, and the gaps where nothing matched."""
        need_fingerprints()

        def work(cat: Catalog, path: Path) -> dict[str, Any]:
            from soundalike.tasks.identify import identify_segments

            res = identify_segments(cat, path, offset=offset, duration=duration, max_duration=cfg.max_duration)
            return {"duration": round(res.duration, 3), "seconds": round(res.seconds, 3),
                    "segments": [{"start": round(s.start, 3), "end": round(s.end, 3), "offset": round(s.offset, 3),
                                  "confidence": round(s.confidence, 4), **engine.web_track(res.tracks[s.track_id])}
                                 for s in res.segments],
                    "gaps": [{"start": a, "end": b} for a, b in res.gaps]}

        return await with_upload(request, work, timeout=cfg.segments_timeout)

    @app.post("/api/events", tags=["events"],
              openapi_extra=BINARY_BODY)
    async def events(request: Request, what: str = "onsets,beats,drums", offset: float = Query(0.0, ge=0),
                     duration: float | None = Query(None, gt=0)) -> dict[str, Any]:
        """When things happen in the uploaded audio: note onsets, beats and downbeats with the tempo (BPM, a
        confidence, a tempo curve when it drifts), and kick / snare / hi-hat hits with their strengths."""
        from soundalike.events.decode import parse_what

        kinds = parse_what(what)

        def work(cat: Catalog, path: Path) -> dict[str, Any]:
            import time

            from soundalike.tasks.events import events as file_events

            t0 = time.perf_counter()
            ev = file_events(path, what=kinds, offset=offset, duration=duration, max_duration=cfg.max_duration)
            return {**ev.to_dict(), "seconds": round(time.perf_counter() - t0, 3)}

        return await with_upload(request, work)

    @app.post("/api/transcribe", tags=["transcription"],
              openapi_extra=BINARY_BODY)
    async def transcribe(request: Request, offset: float = Query(0.0, ge=0),
                         duration: float | None = Query(None, gt=0),
                         program: int = Query(0, ge=0, le=127)) -> dict[str, Any]:
        """The notes of the uploaded audio (onset and offset in seconds, MIDI pitch, velocity), and the same
        notes as a standard MIDI file (``midi_base64``; its track plays General MIDI ``program``)."""

        def work(cat: Catalog, path: Path) -> dict[str, Any]:
            import base64
            import time

            from soundalike.tasks.transcribe import transcribe as file_notes
            from soundalike.transcribe.notes import midi_bytes

            t0 = time.perf_counter()
            res = file_notes(path, offset=offset, duration=duration, max_duration=cfg.max_duration)
            midi = base64.b64encode(midi_bytes(res.notes, program=program)).decode("ascii")
            return {**res.to_dict(), "midi_base64": midi, "seconds": round(time.perf_counter() - t0, 3)}

        return await with_upload(request, work)

    @app.post("/api/restore", tags=["restoration"], openapi_extra=BINARY_BODY,
              responses={200: {"content": {"audio/*": {}}, "description": "the restored audio"}})
    async def restore(request: Request, denoise: bool = True, declip: bool = True,
                      strength: float = Query(1.0, ge=0.0, le=1.0),
                      format: str = Query("same", pattern="^(same|wav|flac|ogg|mp3|m4a|opus)$")) -> Response:
        """The uploaded audio cleaned up: noise out (``denoise``) and clipped peaks refilled (``declip``),
        ``strength`` from 0 (the input) to 1. The answer is the audio itself, at the upload's sample rate and
        channels, in ``format`` (``same``: the upload's). Headers say what was done: ``X-Restore-Duration``
        (seconds) and ``X-Restore-Clipped`` (the share of samples that were clipped and refilled)."""
        if not denoise and not declip:
            raise HTTPException(422, "nothing to do: ask for denoise, declip or both")

        def work(cat: Catalog, path: Path) -> tuple[bytes, Any]:
            from soundalike.audio.io import info
            from soundalike.tasks.restore import restore_file, suffix_for_codec

            suffix = suffix_for_codec(info(path).codec) if format == "same" else f".{format}"
            dst = path.with_name(path.name + "-restored" + suffix)
            try:
                report = restore_file(path, dst, denoise=denoise, declip=declip, strength=strength,
                                      max_duration=cfg.max_duration)
                return dst.read_bytes(), report
            finally:
                dst.unlink(missing_ok=True)

        data, report = await with_upload(request, work, timeout=cfg.decode_timeout * 4)
        media = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "mp3": "audio/mpeg",
                 "m4a": "audio/mp4", "aac": "audio/aac", "opus": "audio/ogg"}[report.format]
        return Response(data, media_type=media, headers={
            "X-Restore-Duration": f"{report.duration:.3f}", "X-Restore-Clipped": f"{report.clipped_fraction:.6f}",
            "X-Restore-Format": report.format,
            "Content-Disposition": f'attachment; filename="restored.{report.format}"'})

    @app.post("/api/tag", tags=["tags"],
              openapi_extra=BINARY_BODY)
    async def tag(request: Request, timeline: bool = False, offset: float = Query(0.0, ge=0),
                  duration: float | None = Query(None, gt=0)) -> dict[str, Any]:
        """Tag scores of the uploaded audio for the whole of it and, with ``timeline``, per ~1.5 s chunk."""
        if not engine.has_tags:
            raise HTTPException(409, "this catalog keeps no tags; `soundalike index ... --tag-heads default` adds them")

        def work(cat: Catalog, path: Path) -> dict[str, Any]:
            from soundalike.tasks.tag import tag_query

            d = tag_query(str(path), catalog=cat, offset=offset, duration=duration,
                          max_duration=cfg.max_duration).to_dict(timeline=timeline)
            d.pop("path", None)
            return dict(d)

        return await with_upload(request, work)

    @app.get("/api/tracks", tags=["catalog"])
    async def tracks(q: str = "", limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0)) -> dict[str, Any]:
        """Catalog tracks whose name, title, artist, album or labels contain ``q`` (case-insensitive)."""

        def work(cat: Any) -> dict[str, Any]:
            needle = q.lower().strip()
            found = []
            for t in cat.tracks():
                hay = " ".join(str(x) for x in (t.display_name, t.title, t.artist, t.album, t.genre,
                                                *t.labels.values()) if x).lower()
                if needle in hay:
                    found.append(t)
            page = found[offset : offset + limit]
            tags = cat.top_tags([t.id for t in page], 3)
            return {"total": len(found), "offset": offset, "limit": limit,
                    "tracks": [engine.web_track(t, tags.get(t.id)) for t in page]}

        return await engine.run(work, light=True)

    @app.get("/api/tracks/{track_id}", tags=["catalog"])
    async def track(track_id: int) -> dict[str, Any]:
        """One track: its fields, labels and top 10 tags."""

        def work(cat: Any) -> dict[str, Any]:
            t = cat.track(int(track_id))
            return engine.web_track(t, cat.top_tags([t.id], 10).get(t.id))

        return await engine.run(work, light=True)

    @app.get("/api/users", tags=["recommend"])
    async def users(limit: int = Query(1000, ge=1, le=100000)) -> dict[str, Any]:
        """Users with imported listens (name, listens, plays), by name: who ``/api/recommend`` can serve."""
        rows = await engine.run(lambda cat: cat.users(limit), light=True)
        return {"users": [{"user": u, "listens": n, "plays": p} for u, n, p in rows]}

    @app.get("/api/recommend", tags=["recommend"])
    async def recommend(user: str | None = None, seed_track: int | None = None, k: int = Query(20, ge=1, le=200),
                        max_per: int | None = Query(None, ge=1), per: str = "album", method: str = "hybrid",
                        include_heard: bool = False) -> dict[str, Any]:
        """Tracks for ``user`` (from their imported listens) or following ``seed_track``: the hybrid of ALS
        and audio (``method=audio`` or ``als`` for one part), heard tracks left out, at most ``max_per`` per
        album/artist/label (``per``), each with the reason it is there."""

        def work(cat: Any) -> dict[str, Any]:
            from soundalike.recommend.rank import recommend_ranking

            ranking = recommend_ranking(cat, user=user, seed_track=seed_track, k=k, max_per=max_per, per=per,
                                        exclude_heard=not include_heard, method=method)
            recs = []
            for r in ranking.recommendations:
                d = r.to_dict()
                recs.append({**{key: d[key] for key in ("rank", "score", "reason", "because", "source", "new",
                                                        "parts")}, "track": engine.web_track(r.track)})
            return {"user": user, "seed_track": seed_track, "method": ranking.method, "blend": ranking.blend,
                    "recommendations": recs}

        return await engine.run(work)

    @app.get("/api/playlist", tags=["recommend"])
    async def mix(seed_track: int | None = None, user: str | None = None, n: int = Query(30, ge=2, le=200),
                  max_per: int | None = Query(None, ge=1),
                  per: str = Query("artist", pattern="^(artist|label|album)$")) -> dict[str, Any]:
        """An instant mix around ``seed_track`` or ``user``'s taste: ``n`` tracks, each once, at most
        ``max_per`` per artist/label/album (``per``), in an order where each step is small (``step``: its
        cost, 1 - cosine of the song embeddings, plus tempo where the catalog keeps it)."""

        def work(cat: Any) -> dict[str, Any]:
            from soundalike.tasks.playlist import playlist

            d = playlist(cat, seed_track, user=user, n=n, max_per=max_per, per=per).to_dict()
            rows = {t.id: t for t in cat.tracks([t["id"] for t in d["tracks"]])}
            d["tracks"] = [{"position": t["position"], "step": t["step"], "track": engine.web_track(rows[t["id"]])}
                           for t in d["tracks"]]
            return d

        return await engine.run(work)

    @app.get("/api/tracks/{track_id}/audio", tags=["catalog"], response_class=FileResponse)
    async def audio(track_id: int) -> FileResponse:
        """The track's audio file, streamed (HTTP range requests work: seek in the player)."""
        t = await engine.run(lambda cat: cat.track(int(track_id)), light=True)
        if not os.path.isfile(t.path):
            raise HTTPException(404, f"the audio of track {track_id} is no longer on disk")
        kind = AUDIO_TYPES.get(Path(t.path).suffix.lower(), "application/octet-stream")
        return FileResponse(t.path, media_type=kind, content_disposition_type="inline",
                            filename=f"track-{track_id}{Path(t.path).suffix.lower()}")

    @app.get("/api/map", tags=["catalog"])
    async def embedding_map(label_key: str = "label") -> dict[str, Any]:
        """Song embeddings in 2-D (PCA), with each track's label for colour."""

        def work(cat: Any) -> dict[str, Any]:
            gen = cat.generation
            if engine._map is not None and engine._map[0] == gen and engine._map[1]["label_key"] == label_key:
                return engine._map[1]
            ts = cat.tracks()
            if not ts:
                return {"method": "pca", "label_key": label_key, "points": [], "labels": [], "explained": []}
            x = np.stack([cat.embeddings(t.id)[1] for t in ts]).astype(np.float64)
            x -= x.mean(axis=0)
            _, s, vt = np.linalg.svd(x, full_matrices=False)
            xy = x @ vt[:2].T if len(vt) >= 2 else np.pad(x @ vt[:1].T, ((0, 0), (0, 1)))
            span = np.abs(xy).max(axis=0)
            xy = xy / np.where(span > 0, span, 1.0)
            var = (s**2) / max(float((s**2).sum()), 1e-12)

            def label(t: Any) -> str:
                v = t.labels.get(label_key) or t.labels.get("collection") or t.genre
                return str(v) if v is not None else "unlabelled"

            labels = [label(t) for t in ts]
            out = {"method": "pca", "label_key": label_key, "labels": sorted(set(labels)),
                   "explained": [round(float(v), 4) for v in var[:2]],
                   "points": [{"id": t.id, "name": t.display_name, "label": lab, "x": round(float(p[0]), 4),
                               "y": round(float(p[1]), 4)} for t, lab, p in zip(ts, labels, xy, strict=True)]}
            engine._map = (gen, out)
            return out

        return await engine.run(work, light=True)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


class _CappedFile:
    """Writes to ``fh`` and counts; past ``cap`` bytes, 413."""

    def __init__(self, fh: Any, cap: int, cap_mb: float) -> None:
        self.fh, self.cap, self.cap_mb, self.size = fh, cap, cap_mb, 0

    def write(self, block: bytes) -> None:
        self.size += len(block)
        if self.size > self.cap:
            raise HTTPException(413, f"upload is over the {self.cap_mb:g} MB cap")
        self.fh.write(block)


async def _receive_multipart(request: Request, kind: str, sink: _CappedFile) -> None:
    """Stream the first file part of a ``multipart/form-data`` body into ``sink``.

    Parsed as it arrives (python-multipart's push parser), so the cap holds without the body ever being
    held in memory or spooled elsewhere; other fields are ignored.
    """
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(kind)
    boundary = params.get(b"boundary")
    if not boundary:
        raise HTTPException(422, "a multipart/form-data upload needs a boundary in its Content-Type")
    state: dict[str, Any] = {"field": b"", "value": b"", "is_file": False, "target": None, "done": False}

    def on_part_begin() -> None:
        state.update(is_file=False)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        if state["field"].lower() == b"content-disposition":
            _, opts = parse_options_header(state["value"])
            state["is_file"] = b"filename" in opts
        state.update(field=b"", value=b"")

    def on_headers_finished() -> None:
        state["target"] = state["is_file"] and not state["done"]

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["target"]:
            sink.write(data[start:end])

    def on_part_end() -> None:
        if state["target"]:
            state.update(done=True, target=False)

    parser = MultipartParser(boundary, {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                                        "on_header_value": on_header_value, "on_header_end": on_header_end,
                                        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
                                        "on_part_end": on_part_end})
    try:
        async for block in request.stream():
            parser.write(block)
        parser.finalize()
    except HTTPException:
        raise
    except Exception as exc:  # python-multipart's MultipartParseError and friends
        raise HTTPException(422, f"the multipart/form-data body cannot be read ({type(exc).__name__})") from None
    if not state["done"]:
        raise HTTPException(422, "the multipart/form-data body holds no file: send the audio as a file field "
                                 "(curl -F file=@song.mp3)")


def _swagger_assets() -> Path | None:
    """The folder of Swagger UI's files from the ``swagger-ui-bundle`` package, if it is installed."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    p = Path(swagger_ui_path)
    return p if (p / "swagger-ui-bundle.js").is_file() else None


def serve(cfg: ServeConfig) -> None:
    """Run the app with uvicorn until interrupted."""
    import uvicorn

    app = create_app(cfg)
    print(f"soundalike: serving catalog {cfg.catalog} at http://{cfg.host}:{cfg.port}/  (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")
