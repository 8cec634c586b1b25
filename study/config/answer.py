"""The `answer:` section: how the confirm phase races and how sure the answer must be.

The confirm phase races (study.stages.confirm): every contender of a (target, size) runs on
the first look's seeds, those shown worse than the best are dropped, the rest get more
seeds, until the (target, size) is decided or its target's `seeds` are spent. The decisions
(study.answer.decision) keep each error rate at most `alpha` over all the looks.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from study.config.base import Strict
from study.config.size_buckets import SizeBucket, check_last_open, for_size


class MarginBucket(SizeBucket):
    """The equivalence margin at this size: labels whose paired accuracy difference is
    shown to lie inside (-margin, +margin) are equivalent (accuracy as a fraction)."""

    margin: float = Field(gt=0, lt=1)


class AnswerConfig(Strict):
    # 2 points up to 2 per class, 1 above (README: the answer): at 1-2 per class the seeds'
    # accuracies spread 7-10 points, so 2 points is a fifth of that spread; with more
    # data a point is what a user would still trade for a cheaper model.
    equivalence_margin: list[MarginBucket] = Field(
        default_factory=lambda: [MarginBucket(up_to=2, margin=0.02), MarginBucket(margin=0.01)],
        min_length=1,
    )
    alpha: float = Field(0.05, gt=0, lt=0.5, description="each error rate, over every look")
    # Seeds per contender at which the race looks before its last look at the target's
    # `seeds` (the most any contender gets); [] : one look, no racing.
    looks: list[int] = Field(default_factory=lambda: [2, 3])
    spending: Literal["bonferroni", "obrien-fleming"] = Field(
        "bonferroni", description="how alpha is spread over the looks"
    )
    pooled: bool = Field(True, description="the paired noise pooled over a race's contenders")
    # A race whose seeds likely to decide (at the last look's level, from the paired means
    # and noise so far) exceed this many times the seeds it has races no further: the label
    # of its best by mean (its candidates still in) and the from-scratch references alone
    # run the rest, for the answer's accuracies and pretraining's worth. 5: simulated races
    # (bench/decision_errors.py --futility 5) decided as often as with none, within a
    # point, and those that could not decide spent about half the trials. 0: never.
    futility: float = Field(5.0, ge=0, description="stop racing when hopeless (0: never)")
    reuse_search_runs: bool = Field(
        True,
        description="seed 0's confirm run of a configuration is its search trial (the same "
        "configuration, subset and seed), not trained again",
    )

    @field_validator("looks")
    @classmethod
    def _increasing(cls, looks: list[int]) -> list[int]:
        if any(n < 2 for n in looks) or any(b <= a for a, b in zip(looks, looks[1:], strict=False)):
            raise ValueError(f"looks {looks}: strictly increasing seed counts, each at least 2")
        return looks

    @model_validator(mode="after")
    def _last_bucket_open(self):
        check_last_open(self.equivalence_margin, "answer.equivalence_margin")
        return self

    def margin_for(self, size: int | None) -> float:
        return for_size(self.equivalence_margin, size).margin

    def looks_for(self, seeds: int) -> tuple[int, ...]:
        """The cumulative seeds of each look of a target with `seeds` seeds: the configured
        looks below it, then `seeds` itself."""
        return (*(n for n in self.looks if n < seeds), seeds)
