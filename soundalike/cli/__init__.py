"""The ``soundalike`` command: one module per command group (each keeps its parsers next to its handlers),
thin over the library (:mod:`soundalike.tasks` for the use cases).

Every command prints human-readable text, or one JSON document with ``--json``.
Errors print ``error: ...`` (what went wrong and what to do) and exit 2.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence

from soundalike import __version__
from soundalike.cli import (
    catalog,
    events,
    listens,
    models,
    playlist,
    restore,
    search,
    serve,
    tags,
    training,
    transcribe,
)
from soundalike.cli.common import EXIT_USAGE
from soundalike.errors import SoundalikeError

#: The command groups, in the order ``soundalike --help`` lists them.
GROUPS = (catalog, search, tags, events, transcribe, restore, playlist, listens, serve, training, models)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="soundalike",
        description="Find music that sounds alike: index audio into a catalog of CNN embeddings, then ask "
                    "which tracks sound most like a file or a track, or which track (and where) a short, degraded "
                    "excerpt comes from.",
        epilog="Start with: soundalike demo-corpus demo/corpus && soundalike index demo/corpus/audio "
               "--catalog demo/catalog --manifest demo/corpus/manifest.jsonl && soundalike similar 1 --catalog demo/catalog",
    )
    p.add_argument("--version", action="version", version=f"soundalike {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:  # `soundalike` alone: what it can do
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    args.argv = argv  # what a command that relaunches itself (train: tcmalloc, --background) runs again
    try:
        return int(args.func(args) or 0)
    except SoundalikeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.DatabaseError as exc:  # a read the catalog's own translation did not see
        from soundalike.index.db import corrupt_error, is_corruption

        if not is_corruption(exc):
            raise
        print(f"error: {corrupt_error(getattr(args, 'catalog', None) or 'DIR', exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: everything finished so far is saved; run the same command again to continue",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # `soundalike similar ... | head`
        return 0
