"""The CLI for the registered encoders and shipped models (models): each command's parser next to its handler."""

from __future__ import annotations

import argparse
from typing import Any

from soundalike.cli.common import (
    emit,
)


def cmd_models(args: argparse.Namespace) -> int:
    from soundalike.events import SHIPPED_EVENTS_MODEL
    from soundalike.events.model import EVENTS_NETS
    from soundalike.models.factory import DEFAULT_MODEL, list_pretrained
    from soundalike.models.heads import HEADS, list_shipped_heads
    from soundalike.models.registry import get_encoder_entry, list_encoders
    from soundalike.restore import SHIPPED_RESTORE_MODEL
    from soundalike.restore.model import RESTORE_NETS
    from soundalike.transcribe import SHIPPED_NOTES_MODEL
    from soundalike.transcribe.model import NOTES_NETS

    payload: dict[str, Any] = {
        "encoders": {n: get_encoder_entry(n).description for n in list_encoders()},
        "pretrained": list_pretrained(),
        "default": DEFAULT_MODEL,
        "heads": sorted(HEADS),
        "shipped_heads": list_shipped_heads(),
        "events_nets": sorted(EVENTS_NETS),
        "shipped_events_model": SHIPPED_EVENTS_MODEL.name,
        "transcription_nets": sorted(NOTES_NETS),
        "shipped_transcription_model": SHIPPED_NOTES_MODEL.name,
        "restoration_nets": sorted(RESTORE_NETS),
        "shipped_restoration_model": SHIPPED_RESTORE_MODEL.name,
    }

    def text() -> None:
        print("encoders (for `soundalike train --encoder`):")
        for n, desc in payload["encoders"].items():
            print(f"  {n:<24} {desc}")
        print("shipped models (for --model):")
        for n in payload["pretrained"]:
            print(f"  {n}{'  (default)' if n == DEFAULT_MODEL else ''}")
        print("tag heads (for `soundalike train-head --head`): " + ", ".join(payload["heads"]))
        print("shipped tag heads (for --heads / --tag-heads): " + ", ".join(payload["shipped_heads"]))
        print(f"events networks (for `soundalike train-events`): {', '.join(payload['events_nets'])}; "
              f"shipped: {payload['shipped_events_model']}")
        print(f"transcription networks (for `soundalike train-notes`): {', '.join(payload['transcription_nets'])}; "
              f"shipped: {payload['shipped_transcription_model']}")
        print(f"restoration networks (for `soundalike train-restore`): {', '.join(payload['restoration_nets'])}; "
              f"shipped: {payload['shipped_restoration_model']}")

    emit(args, payload, text)
    return 0


# ------------------------------------------------------------------ parser


def register(sub: Any) -> None:
    """Add this group's commands to the ``soundalike`` sub-parsers."""
    sp = sub.add_parser("models", help="list registered encoders and shipped models")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp.set_defaults(func=cmd_models)
