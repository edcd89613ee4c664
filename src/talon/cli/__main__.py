"""`python -m talon.cli ...`: the same program as the `talon` console script."""

import sys

from talon.cli import main

sys.exit(main())
