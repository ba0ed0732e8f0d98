"""The CLI for the web app and JSON API (serve): each command's parser next to its handler."""

from __future__ import annotations

import argparse
from typing import Any

from soundalike.cli.common import (
    add_max_duration,
    catalog_arg,
    threads,
)
from soundalike.errors import SoundalikeError


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from soundalike.serve.app import ServeConfig, serve
    except ImportError as exc:  # fastapi / uvicorn missing
        raise SoundalikeError(f"the web app needs the serve extra ({exc.name} is missing): "
                              "pip install 'soundalike[serve]'") from exc
    threads(args)
    shards = (args.shards or 2) if args.ray else 0
    serve(ServeConfig(catalog=catalog_arg(args), host=args.host, port=args.port, max_upload_mb=args.max_upload_mb,
                      decode_timeout=args.timeout, workers=args.workers, max_duration=args.max_duration,
                      shards=shards, ray_address=args.address))
    return 0


def register(sub: Any) -> None:
    """Add this group's commands to the ``soundalike`` sub-parsers."""
    sp = sub.add_parser("serve", help="the web app and JSON API over a catalog (upload, similar, tags, map)",
                        description="Start the web app (FastAPI + uvicorn) on a catalog: upload a song to see what "
                                    "sounds like it, its tags and, for an excerpt, where it comes from; browse and "
                                    "search the catalog and its embedding map. The JSON API is described at /docs. "
                                    "Binds to 127.0.0.1 unless --host says otherwise.")
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sp.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    sp.add_argument("--max-upload-mb", type=float, default=50.0, help="refuse bigger uploads with 413 (default 50)")
    sp.add_argument("--timeout", type=float, default=30.0,
                    help="seconds allowed to decode and analyse one upload (default 30)")
    sp.add_argument("--workers", type=int, default=2, help="inference threads (default 2; more requests queue)")
    add_max_duration(sp)
    sp.add_argument("--ray", action="store_true",
                    help="search song embeddings and fingerprint windows held in index shards by Ray actors (top-k merged "
                         "exactly)")
    sp.add_argument("--shards", type=int, default=None, metavar="N", help="--ray: index shards (default 2)")
    sp.add_argument("--address", metavar="ADDR", help="--ray: the cluster to join (default: running, else local)")
    sp.add_argument("--catalog", "-c", metavar="DIR", help="catalog folder (default: $SOUNDALIKE_CATALOG)")
    sp.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for torch and FAISS")
    sp.set_defaults(func=cmd_serve)
