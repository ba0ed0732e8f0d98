"""Write the hostile-input corpus: every file that once crashed, hung, leaked or fooled soundalike.

    python tests/hostile/make_corpus.py OUT [--long-seconds 7200]

Then try it as a hostile user would, for example::

    soundalike index OUT --catalog /tmp/hostile-catalog      # exit 1: every bad file listed with a reason
    soundalike info --catalog /tmp/hostile-catalog --tracks
    soundalike similar OUT/eight-channels.flac --catalog /tmp/hostile-catalog

Each case's expected outcome is printed (and written to OUT/cases.json); `tests/test_hostile.py` checks them
all, through the library, the CLI and the web app.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from soundalike.testing.hostile import write_corpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder to write the corpus into")
    ap.add_argument("--long-seconds", type=float, default=0.0,
                    help="also write a long Opus file of this many seconds (7200: the 2-hour case; ~1 min to make)")
    args = ap.parse_args()
    cases = write_corpus(args.out, long_opus_seconds=args.long_seconds)
    (args.out / "cases.json").write_text(json.dumps([asdict(c) for c in cases], indent=2) + "\n")
    for c in cases:
        print(f"{c.expect:<9} {c.name!r:<26} {c.what}")


if __name__ == "__main__":
    main()
