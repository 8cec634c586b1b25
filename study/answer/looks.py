"""The planned looks of a confirm race (study.answer.decision): the cumulative seeds per
contender at each, the alpha each look spends, and when racing on is futile.

The spending functions, and how a look's level is shared out among the tests: decision.py's
module doc.

Futility: a look whose race is undecided, and whose seeds likely to decide (at the last
look's level, decision._seeds_needed) exceed `futility` x the last look's seeds, ends the race
undecided. Stopping claims nothing, so it cannot raise an error rate; what it costs is
races that the last look would have decided after all (bench/decision_errors.py --futility).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

SPENDING = ("obrien-fleming", "bonferroni")
CAP = 1000  # the most seeds the decision reckons with: seeds_needed None beyond


@dataclass(frozen=True)
class Looks:
    """The planned looks: cumulative seeds per contender, and the alpha spent at each."""

    seeds: tuple[int, ...]
    alpha: float = 0.05
    spending: str = "obrien-fleming"
    pooled: bool = False  # pool the noise over every contender and seed (pooled.py)
    futility: float = 0.0  # stop undecided when seeds_needed > this x the last look's; 0: never

    def __post_init__(self):
        steps = zip(self.seeds, self.seeds[1:], strict=False)
        if not self.seeds or self.seeds[0] < 2 or any(b <= a for a, b in steps):
            raise ValueError(f"looks {self.seeds}: strictly increasing seeds, 2 at least")
        if not 0 < self.alpha < 1 or self.spending not in SPENDING:
            raise ValueError(f"alpha {self.alpha} not in (0, 1) or spending not in {SPENDING}")
        if self.futility < 0:
            raise ValueError(f"futility {self.futility}: 0 (off) or a positive factor")

    def futile(self, look: int, seeds: int, seeds_needed: int | None) -> bool:
        """Racing on is futile: an undecided look before the last, on 2 seeds or more (a
        paired test ran), whose seeds likely to decide exceed `futility` x the last look's
        (None: beyond CAP, or never)."""
        last = len(self.seeds) - 1
        if not self.futility or look >= last or seeds < 2:
            return False
        return seeds_needed is None or seeds_needed > self.futility * self.seeds[last]

    def spent(self, k: int) -> float:
        """The alpha spent by the end of look k (0-based): alpha at the last look."""
        if k >= len(self.seeds) - 1:
            return self.alpha
        if self.spending == "bonferroni":
            return self.alpha * (k + 1) / len(self.seeds)
        z = NormalDist().inv_cdf(1 - self.alpha / 2)  # 2 - 2 Phi(x) = erfc(x / sqrt 2)
        return min(self.alpha, math.erfc(z / math.sqrt(2 * self.seeds[k] / self.seeds[-1])))

    def level(self, k: int) -> float:
        """The alpha spent at look k alone; the levels of all looks sum to alpha."""
        return self.spent(k) - (self.spent(k - 1) if k > 0 else 0.0)
