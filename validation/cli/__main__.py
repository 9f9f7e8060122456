"""``python -m validation.cli``: the same as the ``cldro`` console script."""

import sys

from validation.cli import main

sys.exit(main())
