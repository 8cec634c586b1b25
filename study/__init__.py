"""The driver side of the service: config, tuner wiring, tracking, queries, reports, CLI.

From Python (study.api): `study.run(config, resume=False, verbose=False,
tracking_uri=None)` runs a study and returns its answer (study.answer.model.Answer);
`study.best_freeze(experiment=None, tracking_uri=None)` reads the latest finished one
back. Both are looked up on first use, so `import study` imports no Ray, MLflow or torch.
"""

from __future__ import annotations

__all__ = ["best_freeze", "run"]


def __getattr__(name: str):
    if name in __all__:  # study.api imports nothing heavy either: it does so when called
        from study import api

        globals()[name] = found = getattr(api, name)
        return found
    raise AttributeError(f"module 'study' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
