"""``soundalike serve``: the web app and JSON API over one catalog (FastAPI; needs the ``serve`` extra)."""
