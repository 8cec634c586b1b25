"""The decision of one (target, size) raced over looks: a clear winner, a top group each
within the margin of the best, or undecided with the seeds likely to decide (the
recommendation: study.answer.choose). Paired over seeds (seed s: one training subset for all).
`race`: at each look (Looks: cumulative seeds) every contender still in gets its seeds, then
`decide` drops those shown worse than the best by mean and gives the verdict; stop once decided
or futile (Looks.futile: likely undecided even at the last look).

Repeated looks: Looks.level(k) is the increment at look k of a Lan-DeMets spending function of
t = n_k / n_max, O'Brien-Fleming-like by default (2 - 2 Phi(z_{1-alpha/2} / sqrt t): little
early, where t on 2-3 seeds has no power) or Bonferroni (alpha / K), the looks joined
by the union bound: valid whatever their dependence (nested seeds), if conservative.
Each look's level is shared out (SHARES) so that each kind of error stays <= alpha; K is
every contender of the race (the dropped too: fixed before the data), b* a truly best one
(fixed: the first of them in the contenders' order), each look's seeds fixed by the plan:
- drop at level/4 / (K - 1) (one-sided paired t, worse than the best by mean): the data pick
  the best, so b* is dropped only if SOME contender beats it: K - 1 tests (Bonferroni; Holm
  needs a reference fixed before the data). Over the looks: P(b* dropped) <= alpha/4.
- clear winner at level/4: the best by mean shown better than each other one still in (or the
  one left). Wrong if a best one was dropped (<= alpha/4; alpha/2 for two tied) or lost a test:
  <= alpha/4 to one close rival, 2 alpha/4 for two tied; more near the top make it rarer (the
  winner must beat all: bench/decision_errors.py). So <= 2 (1/4 + 1/4) alpha = alpha.
- equivalent at 3 level/4 / (K - 1) per test: the top GROUP, each contender g still in shown
  non-inferior to EVERY other one still in, c, within the margin (one-sided paired t:
  mean(g - c) - h > -margin, h the half width at that level; a survivor alone passes).
  Claimed: every member is within the margin of the truly best, so the cheapest member may
  be used at a cost of less than the margin. Wrong if a member g is truly at least the
  margin below b*. Either b* was dropped (<= alpha/4 over the looks, as above), or b* is
  still in, so g's test against b* passed though mu_g <= mu_b* - margin: for a fixed g the
  chance is <= the test's level; g is picked by the data, but from the K - 1 others, fixed
  before the data: the union bound gives (K - 1) x 3 level/4 / (K - 1) = 3 level/4 per look,
  3 alpha/4 over the looks. So <= alpha/4 + 3 alpha/4 = alpha, ties at the top included (one
  fixed b* serves). Unlike "every pair still in is equivalent" (which one survivor 3 points
  below blocks at a margin of 2 at any number of seeds), the claim is against the best.
- the margin shown (undecided): the least margin this look's group would pass at, the max
  over c of (h - mean(g - c)) for the g it is least for: "g within it of the truly best" is
  a lower confidence bound inverted from the same tests, wrong as rarely as an equivalent.
Each kind of error is bounded on its own (a verdict is one or the other): drop + equivalent
take a whole look's level (1/4 + 3/4), drop + winner half of it, doubled for two tied best.
No spread (one difference on every seed): t is undefined, and zero spread is not no noise
(counts can tie on a few seeds by chance): the exact sign test (p = 0.5^n). Looks(pooled=True):
each t on the noise pooled over all the race's accuracies (more df): valid if alike (pooled.py).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from study.answer import pooled as pooling
from study.answer.looks import CAP, Looks

CLEAR_WINNER, EQUIVALENT, UNDECIDED = "clear winner", "equivalent", "undecided"
SHARES = {"drop": 0.25, "winner": 0.25, "equivalent": 0.75}  # of each look's level
NO_SPREAD = 1e-9  # an SD <= NO_SPREAD is none
PerSeed = dict[int, float]


@lru_cache(maxsize=512)
def _t_table(level: float) -> tuple[float, ...]:
    """The one-sided upper `level` quantile of Student's t for df = 0..CAP (0: inf)."""
    from scipy.stats import t

    return (math.inf, *(float(q) for q in t.isf(level, range(1, CAP + 1))))


@dataclass(frozen=True)
class Diff:
    """entry - other over common seeds: n, mean, SD on df degrees of freedom (0: n - 1)."""

    n: int
    mean: float
    sd: float
    df: int = 0  # pooled (pooled.py): its df; 0: this pair's n - 1

    @classmethod
    def of(cls, entry: PerSeed, other: PerSeed, pooled: tuple[float, int] | None = None) -> Diff:
        diffs = [entry[s] - other[s] for s in entry.keys() & other.keys()]
        n, (s2, df) = len(diffs), pooled or (math.nan, 0)  # pooled: (s2, df)
        mean = sum(diffs) / n if n else math.nan
        sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1)) if n > 1 else math.nan
        return cls(n, mean, math.sqrt(2 * s2) if pooled and n > 1 else sd, df)

    def half_width(self, level: float, n: int | None = None) -> float:
        """Half the (1 - 2 level) t interval, at `n` seeds (default: these); 0 with no spread."""
        n = n or self.n
        quantile = _t_table(level)[min(max(self.df, n - 1), CAP)]  # over CAP: a bit wider
        return 0.0 if self.sd <= NO_SPREAD else quantile * self.sd / math.sqrt(n)

    def drop(self, name: str, best: str, look: int, level: float) -> Drop:
        kind = "pooled" if self.df else "paired"
        test = f"{kind} t, one-sided" if self.sd > NO_SPREAD else "sign test (no spread)"
        interval = (self.mean - self.half_width(level), self.mean + self.half_width(level))
        return Drop(name, best, look, self.n, self.mean, interval, level, test)

    def _exact(self, level: float) -> bool:  # with no spread, the sign test's p = 0.5^n
        return self.sd > NO_SPREAD or 0.5**self.n <= level

    def worse(self, level: float) -> bool:
        """The one-sided test that entry < other rejects at `level`."""
        return self.n > 1 and self.mean + self.half_width(level) < 0 and self._exact(level)

    def margin_shown(self, level: float) -> float:
        """The least margin the non-inferiority test (entry > other - margin, one-sided at
        `level`) passes above: half width - mean; inf: it passes at none."""
        passes = self.n > 1 and self._exact(level)
        return self.half_width(level) - self.mean if passes else math.inf

    def within(self, margin: float, level: float) -> bool:
        """The one-sided test that entry > other - margin (non-inferiority) passes at `level`."""
        return margin > self.margin_shown(level)


@dataclass(frozen=True)
class Drop:
    """A drop: paired mean of name - versus, its (1 - 2 level) interval (upper end < 0)."""

    name: str
    versus: str
    look: int
    seeds: int
    mean: float
    interval: tuple[float, float]
    level: float
    test: str

    @property
    def reason(self) -> str:
        low, high = self.interval
        return (
            f"shown worse than {self.versus} at look {self.look + 1} ({self.seeds} seeds): "
            f"paired mean {self.mean:+.4f}, {1 - 2 * self.level:.2%} interval "
            f"[{low:+.4f}, {high:+.4f}] ({self.test} at level {self.level:.2g})"
        )


@dataclass(frozen=True)
class Decision:
    """One look: verdict, best by mean, those still in, those dropped now, seeds to decide;
    `group`: those shown within the margin of every one still in (EQUIVALENT), the winner
    alone (CLEAR_WINNER), none (UNDECIDED)."""

    verdict: str
    best: str
    survivors: tuple[str, ...]
    drops: tuple[Drop, ...]
    look: int
    seeds: int
    means: dict[str, float]
    margin: float
    seeds_needed: int | None = None
    group: tuple[str, ...] = ()
    futile: bool = False  # undecided, and likely so at the last look: raced no further
    shown_within: tuple[str, float] | None = None  # undecided: the least _margins_shown


def levels(looks: Looks, look: int, contenders: int) -> dict[str, float]:
    """A look's levels per test: drop and equivalence over the other K - 1 contenders, winner."""
    share = {kind: looks.level(look) * part for kind, part in SHARES.items()}
    share["drop"] /= max(1, contenders - 1)
    share["equivalent"] /= max(1, contenders - 1)
    return share


def _seeds_to(diff: Diff, passes: Callable[[float], bool], level: float) -> float:
    """The fewest seeds n (2..CAP) with passes(half width at n), which stays true; or inf."""
    if diff.sd <= NO_SPREAD:
        return max(2, math.ceil(math.log2(1 / level))) if passes(0.0) else math.inf
    if not passes(diff.half_width(level, CAP)):
        return math.inf
    seeds = range(2, CAP + 1)  # passes is monotone in n: bisect
    return seeds[bisect_left(seeds, True, key=lambda n: passes(diff.half_width(level, n)))]


def _by_mean(names, means) -> list[str]:
    return sorted(names, key=lambda c: (-means[c], c))  # the best first


def _margins_shown(common, survivors, level, pool=None) -> dict[str, float]:
    """Per contender still in, the least margin it is shown within of every other one still
    in (one-sided paired t at `level` each; inf: none). The group at margin m: those under m."""
    return {
        g: max(Diff.of(common[g], common[c], pool).margin_shown(level) for c in survivors if c != g)
        for g in survivors
    }


def _seeds_needed(common, best, survivors, means, at, margin, pool=None) -> int | None:
    """The fewest seeds at which, with these paired means and SDs, a route decides at levels
    `at`: the best better than each other one, or some g within the margin of each other
    one (the fewer over g of the most over the others); more than now; None beyond CAP."""
    winner_route = max(
        _seeds_to(d, lambda h, d=d: d.mean - h > 0, at["winner"])
        for d in (Diff.of(common[best], common[c], pool) for c in survivors if c != best)
    )
    group_route, ranked = winner_route, _by_mean(survivors, means)
    for g in ranked:  # the best first: likeliest the fewest
        if means[g] - means[ranked[0]] < -margin - 1e-9:
            break  # never, at any number of seeds, nor for any below
        needed = 0.0
        for c in (c for c in ranked if c != g):  # those above g first: the likeliest most
            if needed >= group_route:
                break  # no fewer than a g before
            d = Diff.of(common[g], common[c], pool)
            passes = lambda h, d=d: d.mean - h > -margin  # noqa: E731
            needed = max(needed, _seeds_to(d, passes, at["equivalent"]))
        group_route = min(group_route, needed)
    n = min(winner_route, group_route)  # more than now: this look did not decide
    return None if math.isinf(n) else max(int(n), len(next(iter(common.values()))) + 1)


def decide(
    per_seed: dict[str, PerSeed], alive: set[str], look: int, looks: Looks, margin: float
) -> Decision:
    """One look. `per_seed`: name -> seed -> accuracy of every contender of the race (the
    dropped too: they count in the levels); only the seeds all of `alive` have count."""
    seeds = set.intersection(*(set(per_seed[c]) for c in alive))
    common = {c: {s: per_seed[c][s] for s in seeds} for c in alive}
    means = {c: sum(v.values()) / len(v) if v else math.nan for c, v in common.items()}
    best = max(sorted(alive), key=lambda c: means[c])
    facts = dict(best=best, look=look, seeds=len(seeds), means=means, margin=margin)
    if len(alive) == 1:
        return Decision(CLEAR_WINNER, survivors=(best,), drops=(), group=(best,), **facts)
    if len(seeds) < 2:
        return Decision(UNDECIDED, survivors=tuple(sorted(alive)), drops=(), **facts)
    at = levels(looks, look, len(per_seed))
    level = at["drop"]
    pool = pooling.residual_variance(per_seed) if looks.pooled else None  # the dropped too
    diffs = {c: Diff.of(common[c], common[best], pool) for c in sorted(alive - {best})}
    drops = tuple(d.drop(c, best, look, level) for c, d in diffs.items() if d.worse(level))
    survivors = tuple(sorted(alive - {d.name for d in drops}))
    facts.update(survivors=survivors, drops=drops)
    if all(diffs[c].worse(at["winner"]) for c in survivors if c != best):
        return Decision(CLEAR_WINNER, group=(best,), **facts)
    shown = _margins_shown(common, survivors, at["equivalent"], pool)
    if group := tuple(sorted(g for g, least in shown.items() if least < margin)):
        return Decision(EQUIVALENT, group=group, **facts)
    last = levels(looks, len(looks.seeds) - 1, len(per_seed))
    needed = _seeds_needed(common, best, survivors, means, last, margin, pool)
    futile = looks.futile(look, len(seeds), needed)
    nearest = min(sorted(shown), key=shown.__getitem__)  # the margin this look decides at
    within = (nearest, shown[nearest]) if math.isfinite(shown[nearest]) else None
    return Decision(UNDECIDED, seeds_needed=needed, futile=futile, shown_within=within, **facts)


@dataclass(frozen=True)
class RaceResult:
    """The last look's decision, each look's drops, trials spent and the fixed design's."""

    decision: Decision
    drops: tuple[tuple[Drop, ...], ...]
    trials: int
    fixed_trials: int


def race(
    draw: Callable[[str, int], float], contenders: list[str], looks: Looks, margin: float
) -> RaceResult:
    """Race `contenders` (the confirm phase's reference): at look k every one still in gets
    seeds up to looks.seeds[k] (`draw(contender, seed)`: test accuracy), then `decide`;
    a futile race stops, and only its best by mean gets the remaining seeds (the answer's
    accuracy on every seed; the confirm phase's references too)."""
    per_seed: dict[str, PerSeed] = {c: {} for c in contenders}
    alive, drops, trials, done = set(contenders), [], 0, 0
    for look, upto in enumerate(looks.seeds):
        for name in sorted(alive):
            per_seed[name].update({s: draw(name, s) for s in range(done, upto)})
        trials, done = trials + len(alive) * (upto - done), upto
        decision = decide(per_seed, alive, look, looks, margin)
        drops.append(decision.drops)
        alive = set(decision.survivors)
        if decision.futile:
            trials += looks.seeds[-1] - done
        if decision.verdict != UNDECIDED or decision.futile:
            break
    return RaceResult(decision, tuple(drops), trials, len(contenders) * looks.seeds[-1])
