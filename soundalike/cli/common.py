"""What every soundalike command shares: output (text or JSON), threads, progress, the catalog argument,
and the options that mean the same everywhere (--json, --catalog, --model, --threads, --max-duration)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from soundalike.errors import SoundalikeError
from soundalike.limits import DEFAULT_MAX_DURATION

EXIT_USAGE = 2


def emit(args: argparse.Namespace, payload: Any, text: Callable[[], None]) -> None:
    if getattr(args, "json", False):
        json.dump(payload, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        text()


def notice(catalog: Any) -> str | None:
    """Print a catalog's model notice (made with a model the default has replaced) to stderr; return it."""
    note = getattr(catalog, "model_notice", None)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return note


def threads(args: argparse.Namespace) -> None:
    n = getattr(args, "threads", None)
    if n:
        import torch

        torch.set_num_threads(int(n))
        try:
            import faiss

            faiss.omp_set_num_threads(int(n))
        except ImportError:  # pragma: no cover
            pass


def progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "json", False) and not getattr(args, "quiet", False) and sys.stderr.isatty() or bool(
        getattr(args, "progress", False))


@contextmanager
def audio_progress(args: argparse.Namespace, desc: str) -> Iterator[Callable[[float], None]]:
    """A progress bar counting seconds of audio done (when :func:`progress` wants one); yields the
    ``progress(seconds)`` callback the file tasks take, and closes the bar however the work ends."""
    bar = None
    if progress(args):
        from tqdm import tqdm

        bar = tqdm(unit="s", desc=desc, dynamic_ncols=True, bar_format="{desc}: {n:.0f} s of audio [{elapsed}]")

    def step(seconds: float) -> None:
        if bar is not None:
            bar.update(seconds)

    try:
        yield step
    finally:
        if bar is not None:
            bar.close()


def shown(path: str) -> str:
    """A file name as one line of text: control characters (a newline in a name) are escaped."""
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")


def catalog_arg(args: argparse.Namespace) -> str:
    cat = args.catalog or os.environ.get("SOUNDALIKE_CATALOG")
    if not cat:
        raise SoundalikeError("no catalog given: pass --catalog DIR (or set SOUNDALIKE_CATALOG)")
    return str(cat)


# ---------------------------------------------------------------- commands


def clock(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    m, s = divmod(abs(seconds), 60.0)
    return f"{sign}{int(m)}:{s:04.1f}"


def encoder_choices() -> list[str]:
    from soundalike.models.registry import list_encoders

    return list_encoders()


def add_common(sp: argparse.ArgumentParser, *, catalog: bool = False, model: bool = False, threads: bool = False) -> None:
    sp.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    if catalog:
        sp.add_argument("--catalog", "-c", metavar="DIR", help="catalog folder (default: $SOUNDALIKE_CATALOG)")
    if model:
        sp.add_argument("--model", "-m", metavar="NAME|PATH",
                        help="model: a shipped name or a .safetensors path (default: the catalog's own; "
                             "for a new catalog, the shipped default)")
    if threads:
        sp.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for the CNN and search (default: torch's choice)")

def add_excerpt(sp: argparse.ArgumentParser, what: str) -> None:
    sp.add_argument("--offset", type=float, default=0.0, help=f"start of the excerpt of {what} to use, seconds")
    sp.add_argument("--duration", type=float, default=None, help=f"length of the excerpt of {what}, seconds")
    add_max_duration(sp)

def add_max_duration(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--max-duration", type=float, default=DEFAULT_MAX_DURATION, metavar="SECONDS",
                    help=f"refuse audio longer than this (default {DEFAULT_MAX_DURATION:g}; long files are read "
                         "in bounded memory whatever the limit)")


def train_logged(args: argparse.Namespace, train: Any, cfg: Any) -> int:
    """Run ``train(cfg, progress=..., log=...)`` (a model trainer returning (solver, exported path)) with its
    log lines appended to ``cfg.out/log.jsonl``, then print what it made (``--json``: as JSON)."""
    import json

    os.makedirs(cfg.out, exist_ok=True)
    with open(os.path.join(cfg.out, "log.jsonl"), "a") as log:
        def write(msg: str) -> None:
            log.write(msg + "\n")
            log.flush()

        solver, path = train(cfg, progress=progress(args), log=write)
    last = solver.history[-1] if solver.history else {}
    emit(args, {"model": str(path), "steps": solver.step, "valid": last},
         lambda: print(f"trained {solver.step} steps -> {path}\nvalidation: {json.dumps(last)}"))
    return 0
