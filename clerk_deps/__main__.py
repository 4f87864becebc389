"""``python -m clerk_deps``: the same as the ``clerk-deps`` command."""

from .cli import main

raise SystemExit(main())
