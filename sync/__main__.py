"""``python -m sync``: the same as ``resolve-sync``."""

from sync.cli import main

raise SystemExit(main())
