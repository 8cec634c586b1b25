"""Error rates and trial savings of the raced decision (study.answer.decision), simulated.

Thousands of synthetic (target, size) races with known per-contender accuracies and paired
noise like the default study's: 20 contenders; on each seed a subset effect shared by every
contender (SD 0.035: an easy or a hard subset at 1 example per class) plus each contender's
own noise (a paired difference's SD 0.025, as at 1 example per class; then 0.008, as at a
larger size, where the tests have the power to decide); accuracies rounded to a 1,000-example
test set. Per (looks, margin), the truths:

- all equal: any clear winner is wrong
- one better: one contender better by 2 margins, the others equal
- boundary: the others worse by exactly the margin: equivalence must not be claimed
- two tied: two best, equal, the others 5 margins below (the hardest for a wrong winner)
- spread: contender i at -i points (a real study's spread): what racing saves

A wrong clear winner: one that is not strictly the best; a wrong equivalent: a member of the
decision's group at least the margin below the best (the boundary counts); a wrong margin
shown: an undecided race's contender more than the margin it is shown within (decision.
Decision.shown_within) below the best. Each rate with
its binomial SE and "ok" when <= alpha + 2 SE (else OVER); then each verdict's rate; "rec ok":
the share of races with a recommendation within the margin of the truly best (the clear
winner, or the group's cheapest, the contender's index its cost: the highest index the
cheapest, so that in "spread" the cheap ones are the worse; an undecided race has none);
the trials spent over the fixed design's (every contender on every seed of the last look),
and the median seeds needed of the undecided.

    python bench/decision_errors.py [--studies N] [--quick] [--paired-sd 0.025,0.008]
        [--pooled] [--looks 3,5,8/3,5,8,12] [--margins 0.02,0.01] [--unequal 2] [--futility 5]

--pooled: Looks(pooled=True), the noise pooled over every accuracy of the race (pooled.py);
--unequal F: every odd contender's own noise F times the others' (what pooling costs when
the contenders' noise differs: a pooled SE too small for the noisy pairs); --futility F: a
race whose seeds needed exceed F x its last look's stops (study.answer.looks), its best alone
running on: the same races are drawn with any F, so two runs compare decided shares paired.

Ends with the ratio line of the other benchmarks (bench/common.py's format, written here:
importing bench.common would import torch): the worst error rate less 2 SE, against alpha.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# `python bench/<name>.py` puts bench/ on sys.path, not the repo root that `bench.*` is in
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from study.answer import decision
from study.answer.looks import SPENDING, Looks

BASE = 0.6
TRUTHS = ("all equal", "one better", "boundary", "two tied", "spread")


@dataclass(frozen=True)
class Noise:
    subset_sd: float = 0.035  # shared by every contender on a seed
    paired_sd: float = 0.025  # SD of a paired difference between two contenders
    test_examples: int = 1000  # accuracies are counts: rounded to 1 / test_examples
    unequal: float = 1.0  # every odd contender's own noise this many times the others'


def truth_means(truth: str, contenders: int, margin: float) -> np.ndarray:
    """Each contender's true accuracy; contender 0 is a best one."""
    means = np.full(contenders, BASE)
    if truth == "one better":
        means[0] += 2 * margin
    elif truth == "boundary":
        means[1:] -= margin
    elif truth == "two tied":
        means[2:] -= 5 * margin
    elif truth == "spread":
        means -= 0.01 * np.arange(contenders)
    elif truth != "all equal":
        raise ValueError(f"unknown truth {truth!r}")
    return means


@dataclass
class Tally:
    """The outcomes of `studies` races under one truth."""

    studies: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    wrong_winner: int = 0
    wrong_equivalent: int = 0
    wrong_shown: int = 0  # undecided: the margin shown too small for its contender
    recommended_ok: int = 0  # a recommendation within the margin of the truly best
    trials: int = 0
    fixed_trials: int = 0
    seeds_needed: list[int] = field(default_factory=list)

    def add(self, result: decision.RaceResult, means: np.ndarray, margin: float) -> None:
        final = result.decision
        self.studies += 1
        self.verdicts[final.verdict] = self.verdicts.get(final.verdict, 0) + 1
        mean_of = {f"c{i:02d}": m for i, m in enumerate(means)}
        if final.verdict == decision.CLEAR_WINNER:
            others = [m for name, m in mean_of.items() if name != final.best]
            self.wrong_winner += max(others) >= mean_of[final.best]
        if final.verdict == decision.EQUIVALENT:
            lowest = min(mean_of[name] for name in final.group)
            self.wrong_equivalent += means.max() - lowest >= margin - 1e-12
        if final.verdict != decision.UNDECIDED:  # the highest index is the cheapest
            pick = final.best if final.verdict == decision.CLEAR_WINNER else max(final.group)
            self.recommended_ok += means.max() - mean_of[pick] < margin - 1e-12
        if final.shown_within is not None:
            name, shown = final.shown_within
            self.wrong_shown += means.max() - mean_of[name] > shown + 1e-12
        if final.verdict == decision.UNDECIDED and final.seeds_needed is not None:
            self.seeds_needed.append(final.seeds_needed)
        self.trials += result.trials
        self.fixed_trials += result.fixed_trials

    def rate(self, count: int) -> tuple[float, float]:
        """A rate and its binomial standard error."""
        p = count / self.studies
        return p, math.sqrt(p * (1 - p) / self.studies)


def one_race(rng, means, looks: Looks, margin: float, noise: Noise):
    """A synthetic (target, size) raced: accuracies drawn for every seed up front."""
    seeds = looks.seeds[-1]
    scale = np.where(np.arange(len(means)) % 2 == 1, noise.unequal, 1.0)[:, None]
    own = noise.paired_sd / math.sqrt(2) * scale
    acc = means[:, None] + rng.normal(0, noise.subset_sd, seeds)
    acc = acc + own * rng.normal(0, 1, (len(means), seeds))
    acc = np.clip(np.round(acc * noise.test_examples) / noise.test_examples, 0, 1)
    names = [f"c{i:02d}" for i in range(len(means))]
    return decision.race(lambda name, seed: float(acc[int(name[1:]), seed]), names, looks, margin)


def simulate(truth, looks, margin, studies, rng, contenders=20, noise=Noise()) -> Tally:
    """`studies` races under `truth`, tallied."""
    means = truth_means(truth, contenders, margin)
    tally = Tally()
    for _ in range(studies):
        tally.add(one_race(rng, means, looks, margin, noise), means, margin)
    return tally


def row(truth: str, tally: Tally, alpha: float) -> tuple[str, float]:
    """One truth's line, and its worse error rate less 2 SE (ok: <= alpha)."""
    cells, worst = [], 0.0
    for count in (tally.wrong_winner, tally.wrong_equivalent, tally.wrong_shown):
        p, se = tally.rate(count)
        ok = "ok" if p <= alpha + 2 * se else "OVER"
        cells.append(f"{p:6.3f} ±{se:.3f} {ok:4}")
        worst = max(worst, p - 2 * se)
    shares = " ".join(
        f"{tally.verdicts.get(v, 0) / tally.studies:5.2f}"
        for v in (decision.CLEAR_WINNER, decision.EQUIVALENT, decision.UNDECIDED)
    )
    needed = f"{statistics.median(tally.seeds_needed):6.0f}" if tally.seeds_needed else "     -"
    line = (
        f"  {truth:11} {cells[0]}  {cells[1]}  {cells[2]}  {shares}  "
        f"{tally.recommended_ok / tally.studies:6.2f}  "
        f"{tally.trials / tally.fixed_trials:6.3f}  {needed}"
    )
    return line, worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=1000, help="races per truth and setting")
    parser.add_argument("--quick", action="store_true", help="20 races per truth and setting")
    parser.add_argument("--contenders", type=int, default=20)
    parser.add_argument(
        "--paired-sd", default="0.025,0.008", help="paired SDs to run, comma-separated"
    )
    parser.add_argument("--subset-sd", type=float, default=Noise.subset_sd)
    parser.add_argument("--spending", default="obrien-fleming", choices=SPENDING)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pooled", action="store_true", help="pool the noise (pooled.py)")
    parser.add_argument("--looks", default="2,3,5/3,5,8", help="look plans, /-separated")
    parser.add_argument("--margins", default="0.02,0.01", help="margins, comma-separated")
    parser.add_argument("--truths", default=",".join(TRUTHS), help="truths, comma-separated")
    parser.add_argument("--unequal", type=float, default=1.0, help="odd contenders' noise x")
    parser.add_argument(
        "--futility", type=float, default=0.0, help="stop a race likely undecided (0: never)"
    )
    args = parser.parse_args(argv)
    studies = 20 if args.quick else args.studies
    rng = np.random.default_rng(args.seed)
    started, worst = time.perf_counter(), 0.0
    for paired_sd in (float(sd) for sd in args.paired_sd.split(",")):
        noise = Noise(args.subset_sd, paired_sd, unequal=args.unequal)
        print(
            f"\n=== {studies} races per truth, {args.contenders} contenders, paired SD "
            f"{noise.paired_sd} (odd contenders x{noise.unequal}), subset SD "
            f"{noise.subset_sd}, {args.spending} spending, {'pooled' if args.pooled else 'paired'}"
        )
        worst = max(worst, run_noise(args, studies, noise, rng))
    print(f"\n{time.perf_counter() - started:.0f} s")
    met = "met" if worst <= 0.05 else "not met"
    print(f"ratio worst error rate less 2 SE: {worst:.3f} (goal <= 0.05: {met})")
    return 0


def run_noise(args, studies: int, noise: Noise, rng) -> float:
    """Every (looks, margin) and truth at one noise; the worst error rate less 2 SE."""
    worst = 0.0
    plans = [tuple(int(n) for n in plan.split(",")) for plan in args.looks.split("/")]
    for seeds in plans:
        looks = Looks(seeds, spending=args.spending, pooled=args.pooled, futility=args.futility)
        for margin in (float(m) for m in args.margins.split(",")):
            levels = ", ".join(f"{looks.level(k):.4f}" for k in range(len(seeds)))
            print(f"\nlooks {seeds} (alpha per look {levels}), margin {margin}")
            print(
                "  truth       wrong winner          wrong equivalent      wrong margin shown    "
                "  win   eqv   und  rec ok  trials  seeds needed"
            )
            for truth in args.truths.split(","):
                tally = simulate(truth, looks, margin, studies, rng, args.contenders, noise)
                line, truth_worst = row(truth, tally, looks.alpha)
                print(line)
                worst = max(worst, truth_worst)
    return worst


if __name__ == "__main__":
    sys.exit(main())
