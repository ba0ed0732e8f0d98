"""``python -m soundalike`` runs the command line (the same as the ``soundalike`` command)."""

from soundalike.cli import main

raise SystemExit(main())
