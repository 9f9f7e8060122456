"""``python -m validation.cli``: the ``cldro`` command without an installed entry point."""

from validation.cli import main

raise SystemExit(main())
