"""Entry point that works as `python study/run.py ...` and as the file `ray submit` copies.

`ray submit cluster.yaml study/run.py -- --config study/config/presets/<name>.yaml` copies this
file alone to the head node and runs it there, where the project is installed; so this
file only hands its arguments to the CLI. With no sub-command it means `study run`.
"""

from __future__ import annotations

import sys
from pathlib import Path

here = Path(__file__).resolve().parent
# Run as a script, Python puts this file's folder first on sys.path, where the package's
# own modules (config.py, report.py, ...) would shadow top-level names; drop it, and
# make the checkout importable when the package is not installed.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
if (here.parent / "study" / "__init__.py").is_file():
    sys.path.insert(0, str(here.parent))

from study.cli.commands import main  # noqa: E402

COMMANDS = {"run", "best-freeze", "archs", "pretrain", "validate", "ui", "-h", "--help"}

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not argv or argv[0] not in COMMANDS:
        argv = ["run", *argv]
    sys.exit(main(argv))
