"""Killing an ``index`` run mid-way, for the tests that check it resumes without loss."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path


def kill_when_indexed(cmd: list[str], catalog: str | Path, *, at_least: int = 3, timeout: float = 240.0) -> int:
    """Start ``cmd`` in its own process group, SIGKILL the whole group once the catalog at ``catalog`` holds
    ``at_least`` tracks (or after ``timeout`` s, or when it exits), and return the count it had reached."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # a local Ray cluster started by it dies with it
    db, n, deadline = Path(catalog) / "catalog.sqlite", 0, time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=1) as c:
                    n = c.execute("SELECT COUNT(*) FROM tracks").fetchone()[0]
            except sqlite3.OperationalError:
                n = 0
            if n >= at_least:
                break
        time.sleep(0.05)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    return int(n)
