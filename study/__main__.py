"""`python -m study ...` does what `study ...` does."""

import sys

from study.cli import main

sys.exit(main())
