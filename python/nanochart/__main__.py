"""`python -m nanochart` is the `nanochart` command."""

import sys

from .cli import main

sys.exit(main())
