"""``python -m soundalike.cli`` runs the command line (the same as ``soundalike`` and ``python -m soundalike``)."""

from soundalike.cli import main

raise SystemExit(main())
