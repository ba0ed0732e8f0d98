"""Running training the way a 2-core machine can carry it for hours: tcmalloc preloaded, in the background.

glibc's allocator makes torch page-fault on every large tensor; Debian's ``libtcmalloc-minimal4``, preloaded,
makes CPU training 2-3x faster (``../shared/FACTS.md``). ``soundalike train`` relaunches itself with it when
it is installed and not loaded yet (set ``SOUNDALIKE_TCMALLOC=0`` to skip), and ``--background`` detaches
the run with its output in ``OUT/train.log`` and its process id in ``OUT/train.pid``; running the same
command again resumes from the last checkpoint.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

#: Where Debian/Ubuntu (and most other distributions) put tcmalloc.
_TCMALLOC_GLOBS = ("/usr/lib/*/libtcmalloc_minimal.so.4", "/usr/lib/libtcmalloc_minimal.so.4",
                   "/usr/lib64/libtcmalloc_minimal.so.4", "/usr/lib/*/libtcmalloc.so.4")
ENV_SWITCH = "SOUNDALIKE_TCMALLOC"
_RELAUNCHED = "SOUNDALIKE_TCMALLOC_RELAUNCHED"


def find_tcmalloc() -> str | None:
    """Path of an installed tcmalloc shared library, or None."""
    for pattern in _TCMALLOC_GLOBS:
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[0]
    return None


def tcmalloc_loaded() -> bool:
    """Whether tcmalloc is mapped into this process (preloaded or linked)."""
    try:
        return "tcmalloc" in Path("/proc/self/maps").read_text()
    except OSError:
        return "tcmalloc" in os.environ.get("LD_PRELOAD", "")


def preload_env(env: dict[str, str] | None = None) -> tuple[dict[str, str], str | None]:
    """A copy of ``env`` (default: this process's) with tcmalloc added to ``LD_PRELOAD`` when it is installed
    and not switched off; and the library's path (None when it is not used)."""
    out = dict(os.environ if env is None else env)
    lib = find_tcmalloc() if out.get(ENV_SWITCH, "1") != "0" else None
    if lib and lib not in out.get("LD_PRELOAD", ""):
        out["LD_PRELOAD"] = ":".join(p for p in (lib, out.get("LD_PRELOAD", "")) if p)
    return out, lib


def command(argv: Sequence[str]) -> list[str]:
    """The command line that runs ``soundalike ARGV`` with this Python."""
    return [sys.executable, "-m", "soundalike.cli", *argv]


def relaunch_with_tcmalloc(argv: Sequence[str], *, cmd: Sequence[str] | None = None) -> str | None:
    """Replace this process by the same command (``soundalike ARGV``, or ``cmd``) with tcmalloc preloaded,
    when that helps and is possible.

    Returns (only when it does not relaunch) a line saying what happened, for the log.
    """
    if tcmalloc_loaded():
        return "tcmalloc: preloaded"
    if os.environ.get(ENV_SWITCH) == "0":
        return None
    if os.environ.get(_RELAUNCHED):  # preloading did not take (another architecture?): carry on without
        return "tcmalloc: found but could not be preloaded; training without it"
    env, lib = preload_env()
    env[_RELAUNCHED] = "1"
    if lib is None:
        return ("tcmalloc: not installed; training runs 2-3x faster with it (apt-get install "
                "libtcmalloc-minimal4)")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(cmd) if cmd else command(argv), env)
    return None  # pragma: no cover - execve does not return


def start_background(argv: Sequence[str], out: str | Path) -> tuple[int, Path]:
    """Start ``soundalike ARGV`` detached (its own session, tcmalloc preloaded when installed), writing its
    output to ``OUT/train.log`` and its pid to ``OUT/train.pid``. Returns (pid, log path)."""
    run = Path(out)
    run.mkdir(parents=True, exist_ok=True)
    log = run / "train.log"
    env, _ = preload_env()
    with open(log, "ab") as fh, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(command(argv), stdin=devnull, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=os.getcwd())
    (run / "train.pid").write_text(f"{proc.pid}\n")
    return proc.pid, log
