"""`python -m study ...` does what `study ...` does."""

import sys

from study.cli.commands import main

sys.exit(main())
