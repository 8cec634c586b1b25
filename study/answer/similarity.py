"""A target's similarity to the source, read back from a study run for the answer.

study.stages.similarity measures and logs it; here it is read from the run's metrics,
attached to each (target, size) of the answer and formatted for its tables.
"""

from __future__ import annotations

from study.answer.model import Answer
from study.tracking import client as tracking


def read_similarity(run) -> dict[str, dict[str, float]]:
    """{target: {arch: similarity}} from a study run's metrics ({} if never measured)."""
    found: dict[str, dict[str, float]] = {}
    for name, value in run.data.metrics.items():
        parsed = tracking.parse_similarity_metric(name)
        if parsed is not None:
            found.setdefault(parsed[0], {})[parsed[1]] = value
    return found


def attach_similarity(answer: Answer, similarity: dict[str, dict[str, float]]) -> Answer:
    """Each answer item with its target's similarity per architecture (None: unmeasured)."""
    return answer.with_similarity(similarity)


def similarity_cell(values: dict[str, float] | None) -> str:
    """`0.912` for one architecture, `lenet5 0.912, cnn4 0.880` for several; `-` if none."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{next(iter(values.values())):.3f}"
    return ", ".join(f"{arch} {value:.3f}" for arch, value in sorted(values.items()))
