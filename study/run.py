"""Entry point that works as `python study/run.py ...` and as the file `ray submit` copies.

`ray submit cluster.yaml study/run.py -- --config study/config/presets/<name>.yaml` copies this
file alone to the head node and runs it there, where the project is installed; so this
file only hands its arguments to the CLI. With no sub-command it means `study run`.
Imported as the module `study.run` instead, it calls study.api.run: `study.run(...)` is
the package's Python API, whichever of the two the name finds.
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

if __name__ == "study.run":  # imported, not run: it took the name `study.run`, the Python API
    import types

    class _CallsTheApi(types.ModuleType):
        def __call__(self, *args, **kwargs):
            from study.api import run

            return run(*args, **kwargs)

    sys.modules[__name__].__class__ = _CallsTheApi  # so `study.run(...)` still runs a study

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not argv or argv[0] not in COMMANDS:
        argv = ["run", *argv]
    sys.exit(main(argv))
