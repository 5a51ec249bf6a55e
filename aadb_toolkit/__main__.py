"""``python -m aadb_toolkit`` is the same as ``aadb``."""

from .cli import main

raise SystemExit(main())
