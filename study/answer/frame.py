"""The answer from Python: a pandas table of it and the entries it picks, by (target, size).

`AnswerViews` is the part of study.answer.model.Answer a Python user reaches for
(`import study; answer = study.run(...)`, study.api): `to_frame()`, `best(...)` and
`recommendation(...)`. It reads the answer through its fields only (`results`, each
SizeResult's `target`, `size`, `ranking`, `verdict`, `recommendation`) and imports no
module of the answer, so that model.py can take it as a base without a cycle.

A (target, size) is looked up by the target's name and the size as an int or 'all'; either
may be left out where the answer (or the target) has only one. A name or size the answer
does not have raises BadInput naming the ones it has.
"""

from __future__ import annotations

import math

from study.errors import BadInput
from trainables.contract import ALL

# The columns of `to_frame()`, in order: the (target, size), the entry and its rank there,
# its test accuracy over the seeds, and what the (target, size) decided.
COLUMNS = (
    "target",
    "dataset",
    "size",
    "rank",
    "entry",
    "arch",
    "strategy",
    "family",
    "freeze",
    "freeze_frac",
    "test_acc",
    "test_acc_std",
    "ci95_low",
    "ci95_high",
    "seeds",
    "top_group",
    "verdict",
    "recommendation",
    "recommended",
)


def entry_row(item, rank: int, entry) -> dict:
    """One row of the frame: `entry` (an Entry), ranked `rank` (1: the best) in `item` (a
    SizeResult)."""
    low, high = entry.ci95 if entry.ci95 is not None else (math.nan, math.nan)
    return {
        "target": item.target,
        "dataset": item.dataset,
        "size": item.size,
        "rank": rank,
        "entry": entry.name,
        "arch": entry.arch,
        "strategy": entry.strategy,
        "family": entry.family,
        "freeze": entry.freeze,
        "freeze_frac": entry.freeze_frac,
        "test_acc": entry.test_acc,
        "test_acc_std": entry.test_acc_std,
        "ci95_low": low,
        "ci95_high": high,
        "seeds": entry.seeds,
        "top_group": entry.top_group,
        "verdict": item.verdict,
        "recommendation": item.recommendation,
        "recommended": item.recommendation is not None and entry.name == item.recommendation,
    }


def answer_frame(answer):
    """A pandas DataFrame of `answer`: one row per (target, size, entry of its ranking), best
    first within each (target, size); `size` as the answer writes it ('2', 'all')."""
    import pandas as pd  # only for the user who asks for a table (seconds to import)

    rows = [
        entry_row(item, rank, entry)
        for item in answer
        for rank, entry in enumerate(item.ranking, start=1)
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _one(what: str, names: list[str], given, where: str) -> str:
    """`given` (a name of `names`), or the only one of `names` when `given` is None."""
    listed = ", ".join(names) or "none"
    if given is None:
        if len(names) == 1:
            return names[0]
        raise BadInput(f"the answer has several {what}s{where} ({listed}): name one ({what}=...)")
    if str(given) not in names:
        raise BadInput(f"no {what} {given!r} in the answer{where}; {what}s: {listed}")
    return str(given)


def size_result(answer, target: str | None = None, size: int | str | None = None):
    """The SizeResult of (`target`, `size`); either None: the only one there is."""
    name = _one("target", answer.targets(), target, "")
    results = [item for item in answer if item.target == name]
    sizes = [item.size for item in results]
    if isinstance(size, bool) or not isinstance(size, int | str | None):
        raise BadInput(f"size must be an int or '{ALL}', got {size!r}")
    wanted = _one("size", sizes, size, f" for target {name!r}")
    return results[sizes.index(wanted)]


class AnswerViews:
    """What Answer (study.answer.model) offers a Python user beyond its JSON."""

    def to_frame(self):
        """The answer as a pandas DataFrame, one row per ranked entry (columns: COLUMNS)."""
        return answer_frame(self)

    def best(self, target: str | None = None, size: int | str | None = None):
        """The best Entry (mean test accuracy over the seeds) of (`target`, `size`); the
        target may be left out when the study has one, the size when the target has one;
        size is an int or 'all'."""
        return size_result(self, target, size).best

    def recommendation(self, target: str | None = None, size: int | str | None = None):
        """The Entry the study recommends for (`target`, `size`) (its race's decision, on
        validation accuracy), or None: undecided, or a study from before the confirm
        phase raced (no `race` in its answer); then `best(...)` is what there is."""
        item = size_result(self, target, size)
        name = item.recommendation
        if name is None:
            return None
        for entry in item.ranking:
            if entry.name == name:
                return entry
        raise LookupError(
            f"the recommendation {name!r} of {item.target} size {item.size} is not in its ranking"
        )
