"""The decision of one (target, size) raced over looks: a clear winner, contenders equivalent
to the best, or undecided with the seeds likely to decide; and the recommendation. Paired over
seeds (seed s: one training subset for all). `race`: at each look (Looks: cumulative seeds)
every contender still in gets its seeds, then `decide` drops those shown worse than the best
by mean and gives the verdict; stop once decided.

Repeated looks: Looks.level(k) is the increment at look k of a Lan-DeMets spending function of
t = n_k / n_max, O'Brien-Fleming-like by default (2 - 2 Phi(z_{1-alpha/2} / sqrt t): little
early, where t on 2-3 seeds has no power) or Bonferroni (alpha / K), the looks joined
by the union bound: valid whatever their dependence (nested seeds), if conservative.
Each look's level is shared out (SHARES) so that each kind of error stays <= alpha:
- drop at level/4 / (K - 1), K contenders in the race (one-sided paired t, worse than the best
  by mean): the data pick the best, so a truly best one is dropped only if SOME contender beats
  it: K - 1 tests (Bonferroni; Holm needs a reference fixed before the data).
- clear winner at level/4: the best by mean shown better than each other one still in (or the
  one left). Wrong if a best one was dropped (<= alpha/4; alpha/2 for two tied) or lost a test:
  <= alpha/4 to one close rival, 2 alpha/4 for two tied; more near the top make it rarer (the
  winner must beat all: bench/decision_errors.py).
- equivalent at 3 level/4 / ((d+1)(d+2)), d contenders out: EVERY pair still in passes TOST
  (the (1 - 2 level) paired t interval inside (-margin, margin)): a best one still in is in
  each wrong claim's pair (intersection-union). The factor pays for the drops (of many at the
  margin a lucky one may be left): it sums to 1 over d, and the first still in (fixed order) of
  those at the margin has d >= its rank. So <= alpha/4 (a best dropped) + 3 alpha/4.
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
from itertools import combinations
from statistics import NormalDist

from study.answer import pooled as pooling

CLEAR_WINNER, EQUIVALENT, UNDECIDED = "clear winner", "equivalent", "undecided"
SPENDING = ("obrien-fleming", "bonferroni")
SHARES = {"drop": 0.25, "winner": 0.25, "equivalent": 0.75}  # of each look's level
CAP, NO_SPREAD = 1000, 1e-9  # seeds_needed None beyond CAP; an SD <= NO_SPREAD is none
PerSeed = dict[int, float]


@lru_cache(maxsize=512)
def _t_table(level: float) -> tuple[float, ...]:
    """The one-sided upper `level` quantile of Student's t for df = 0..CAP (0: inf)."""
    from scipy.stats import t

    return (math.inf, *(float(q) for q in t.isf(level, range(1, CAP + 1))))


@dataclass(frozen=True)
class Looks:
    """The planned looks: cumulative seeds per contender, and the alpha spent at each."""

    seeds: tuple[int, ...]
    alpha: float = 0.05
    spending: str = "obrien-fleming"
    pooled: bool = False  # pool the noise over every contender and seed (pooled.py)

    def __post_init__(self):
        steps = zip(self.seeds, self.seeds[1:], strict=False)
        if not self.seeds or self.seeds[0] < 2 or any(b <= a for a, b in steps):
            raise ValueError(f"looks {self.seeds}: strictly increasing seeds, 2 at least")
        if not 0 < self.alpha < 1 or self.spending not in SPENDING:
            raise ValueError(f"alpha {self.alpha} not in (0, 1) or spending not in {SPENDING}")

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

    def equivalent(self, margin: float, level: float) -> bool:
        """TOST at `level`: the (1 - 2 level) interval inside (-margin, margin)."""
        inside = self.n > 1 and abs(self.mean) + self.half_width(level) < margin
        return inside and self._exact(level)


def shown_worse(entry: PerSeed, best: PerSeed, level: float) -> bool:
    return Diff.of(entry, best).worse(level)  # one-sided paired t (sign test: no spread)


def shown_equivalent(entry: PerSeed, best: PerSeed, margin: float, level: float) -> bool:
    return Diff.of(entry, best).equivalent(margin, level)  # paired TOST, both sides at level


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
    """One look: verdict, best by mean, those still in, those dropped now, seeds to decide."""

    verdict: str
    best: str
    survivors: tuple[str, ...]
    drops: tuple[Drop, ...]
    look: int
    seeds: int
    means: dict[str, float]
    margin: float
    seeds_needed: int | None = None


def levels(looks: Looks, look: int, contenders: int, out: int) -> dict[str, float]:
    """A look's drop, winner and equivalence levels: `out` of `contenders` are out."""
    share = {kind: looks.level(look) * part for kind, part in SHARES.items()}
    share["drop"] /= max(1, contenders - 1)
    share["equivalent"] /= (out + 1) * (out + 2)
    return share


def _seeds_to(diff: Diff, passes: Callable[[float], bool], level: float) -> float:
    """The fewest seeds n (2..CAP) with passes(half width at n), which stays true; or inf."""
    if diff.sd <= NO_SPREAD:
        return max(2, math.ceil(math.log2(1 / level))) if passes(0.0) else math.inf
    if not passes(diff.half_width(level, CAP)):
        return math.inf
    seeds = range(2, CAP + 1)  # passes is monotone in n: bisect
    return seeds[bisect_left(seeds, True, key=lambda n: passes(diff.half_width(level, n)))]


def _seeds_needed(common, best, survivors, at, margin, pool=None) -> int | None:
    """The fewest seeds at which, with these paired means and SDs, a route decides at levels
    `at` (the best better than each, or every pair equivalent); None beyond CAP."""
    winner_route = max(
        _seeds_to(d, lambda h, d=d: d.mean - h > 0, at["winner"])
        for d in (Diff.of(common[best], common[c], pool) for c in survivors if c != best)
    )
    equivalence_route = 0.0
    for a, b in combinations(survivors, 2):
        if equivalence_route >= winner_route:
            break  # no shorter than the other route
        d = Diff.of(common[a], common[b], pool)
        needed = _seeds_to(d, lambda h, d=d: abs(d.mean) + h < margin, at["equivalent"])
        equivalence_route = max(equivalence_route, needed)
    return None if math.isinf(n := min(winner_route, equivalence_route)) else int(n)


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
    if len(alive) == 1 or len(seeds) < 2:
        verdict = CLEAR_WINNER if len(alive) == 1 else UNDECIDED
        return Decision(verdict, survivors=tuple(sorted(alive)), drops=(), **facts)
    level = levels(looks, look, len(per_seed), 0)["drop"]
    pool = pooling.residual_variance(per_seed) if looks.pooled else None  # the dropped too
    diffs = {c: Diff.of(common[c], common[best], pool) for c in sorted(alive - {best})}
    drops = tuple(d.drop(c, best, look, level) for c, d in diffs.items() if d.worse(level))
    survivors = tuple(sorted(alive - {d.name for d in drops}))
    facts.update(survivors=survivors, drops=drops)
    at = levels(looks, look, len(per_seed), len(per_seed) - len(survivors))
    if all(diffs[c].worse(at["winner"]) for c in survivors if c != best):
        return Decision(CLEAR_WINNER, **facts)
    eqv, pairs = at["equivalent"], sorted(combinations(survivors, 2), key=lambda p: best not in p)
    if all(Diff.of(common[a], common[b], pool).equivalent(margin, eqv) for a, b in pairs):
        return Decision(EQUIVALENT, **facts)
    last = levels(looks, len(looks.seeds) - 1, len(per_seed), len(per_seed) - len(survivors))
    needed = _seeds_needed(common, best, survivors, last, margin, pool)
    return Decision(UNDECIDED, seeds_needed=needed, **facts)


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
    seeds up to looks.seeds[k] (`draw(contender, seed)`: test accuracy), then `decide`."""
    per_seed: dict[str, PerSeed] = {c: {} for c in contenders}
    alive, drops, trials, done = set(contenders), [], 0, 0
    for look, upto in enumerate(looks.seeds):
        for name in sorted(alive):
            per_seed[name].update({s: draw(name, s) for s in range(done, upto)})
        trials, done = trials + len(alive) * (upto - done), upto
        decision = decide(per_seed, alive, look, looks, margin)
        drops.append(decision.drops)
        alive = set(decision.survivors)
        if decision.verdict != UNDECIDED:
            break
    return RaceResult(decision, tuple(drops), trials, len(contenders) * looks.seeds[-1])


@dataclass(frozen=True)
class Candidate:  # what the recommendation weighs besides accuracy: its cost to train
    name: str
    trainable_params: int
    train_seconds: float


def recommend(candidates: list[Candidate], decision: Decision) -> tuple[str | None, str]:
    """The contender to use, and why: the clear winner; else, of those equivalent to the best
    (never a dropped one), the fewest trainable parameters, then less training time."""
    if decision.verdict == CLEAR_WINNER:
        return decision.best, f"clear winner: better than every other on {decision.seeds} seeds"
    if decision.verdict == UNDECIDED and decision.seeds < 2:
        return None, f"undecided: {decision.seeds} seed, no paired test (it needs 2 or more)"
    if decision.verdict == UNDECIDED:  # what more seeds would likely do
        more = f"about {decision.seeds_needed}" if decision.seeds_needed else f"over {CAP}"
        return None, f"undecided after {decision.seeds} seeds: {more} seeds would likely decide"
    costs = {c.name: c for c in candidates if c.name in decision.survivors}
    within = f"equivalent within {decision.margin * 100:g} points"
    if not costs:
        return decision.best, f"the best by mean, {within} (no costs given)"
    pick = min(costs.values(), key=lambda c: (c.trainable_params, c.train_seconds, c.name))
    best = costs.get(decision.best)
    if best is None or pick.name == decision.best:
        return pick.name, f"the best by mean and the cheapest of the {len(costs)} {within}"
    why = (
        f"freezes the most: {pick.trainable_params:,} trainable parameters against "
        f"{best.trainable_params:,}"
        if pick.trainable_params < best.trainable_params
        else f"as few parameters, faster: {pick.train_seconds:.0f} s against "
        f"{best.train_seconds:.0f} s"
    )
    return pick.name, f"{why} for the best ({best.name}), {within}"
