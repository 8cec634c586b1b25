"""Paired comparison of strategies over the same seeds' training subsets.

Seed s is the same training subset for every strategy of a size, so the question "is A
better than B?" is asked of the per-seed differences A_s - B_s: the seed-to-seed spread
that both share (an easy or a hard subset) cancels out. The interval is Student's t on
those differences (few seeds: the normal one is too narrow); the p-value is the paired
t-test's, two-sided.

The top group: every strategy whose paired test against the best does not reject "as
good as the best" at 5%, after Holm's correction over all the comparisons with the best
(Holm 1979: the family-wise error stays at 5% whatever the number of strategies).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

LEVEL = 0.95
ALPHA = 1 - LEVEL


def t_quantile(df: int, level: float = LEVEL) -> float:
    from scipy.stats import t as student_t

    return float(student_t.ppf(0.5 + level / 2, df))


def mean_interval(values: list[float], level: float = LEVEL) -> tuple[float, float] | None:
    """Student-t interval for the mean (None with fewer than 2 values)."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    half = t_quantile(len(values) - 1, level) * statistics.stdev(values) / len(values) ** 0.5
    return (mean - half, mean + half)


@dataclass(frozen=True)
class PairedDifference:
    """A - B over the seeds both have."""

    seeds: int
    mean: float
    ci95: tuple[float, float] | None  # None: fewer than 2 common seeds
    p_value: float | None

    @property
    def excludes_zero(self) -> bool:
        return self.ci95 is not None and (self.ci95[0] > 0 or self.ci95[1] < 0)


def paired_difference(a: dict[int, float], b: dict[int, float]) -> PairedDifference:
    """The paired difference of two strategies' accuracies, keyed by seed."""
    seeds = sorted(set(a) & set(b))
    diffs = [a[s] - b[s] for s in seeds]
    if len(diffs) < 2:
        return PairedDifference(len(diffs), diffs[0] if diffs else math.nan, None, None)
    mean = statistics.fmean(diffs)
    sd = statistics.stdev(diffs)
    if sd == 0:  # the same difference on every seed: exact, no spread to test against
        return PairedDifference(len(diffs), mean, (mean, mean), 1.0 if mean == 0 else 0.0)
    from scipy.stats import t as student_t

    stat = mean / (sd / len(diffs) ** 0.5)
    p_value = float(2 * student_t.sf(abs(stat), len(diffs) - 1))
    return PairedDifference(len(diffs), mean, mean_interval(diffs), p_value)


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values (step-down, monotone, capped at 1), in the input's order."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
