"""The raced decision of a (target, size) (study.answer.decision): the paired tests, the
alpha spent over looks, the verdicts, the drops and their reasons, the recommendation, and
the error rates of small simulated races (the full run: bench/decision_errors.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.decision_errors import Noise, simulate
from study.answer.choose import Candidate, points, recommend
from study.answer.decision import (
    CLEAR_WINNER,
    EQUIVALENT,
    UNDECIDED,
    Decision,
    Diff,
    decide,
    levels,
    race,
)
from study.answer.looks import Looks
from study.answer.pooled import residual_variance


def shown_worse(entry, best, level) -> bool:
    return Diff.of(entry, best).worse(level)  # one-sided paired t (sign test: no spread)


def shown_within(entry, other, margin, level) -> bool:
    return Diff.of(entry, other).within(margin, level)  # one-sided: > other - margin


def tost(a, b, margin, level) -> bool:
    """Two one-sided tests: each within the margin of the other (an interval inside it)."""
    return shown_within(a, b, margin, level) and shown_within(b, a, margin, level)


def accuracies(mean: float, seeds: int, sd: float, rng, shared=None) -> dict[int, float]:
    """seed -> accuracy: `mean` + the seeds' shared subset effects + own noise of SD `sd`."""
    shared = np.zeros(seeds) if shared is None else shared
    own = rng.normal(0, sd, seeds)
    return {s: float(mean + shared[s] + own[s]) for s in range(seeds)}


@pytest.mark.parametrize("seeds", [(2, 3, 5), (3, 5, 8), (2, 4, 6, 8, 10, 20)])
@pytest.mark.parametrize("spending", ["obrien-fleming", "bonferroni"])
def test_the_alpha_spent_over_the_looks_sums_to_at_most_alpha(seeds, spending):
    looks = Looks(seeds, alpha=0.05, spending=spending)
    spent = [looks.level(k) for k in range(len(seeds))]
    assert all(level > 0 for level in spent)
    assert sum(spent) <= 0.05 + 1e-12
    assert math.isclose(sum(spent), 0.05)
    # at each look the drops (19 others) and the winner test, or the drops and the group's
    # tests (a member against each of the 19 others), share no more than the level
    for k in range(len(seeds)):
        share = levels(looks, k, contenders=20)
        assert share["drop"] * 19 + share["winner"] <= spent[k] + 1e-15
        assert share["drop"] * 19 + share["equivalent"] * 19 <= spent[k] + 1e-15
    if spending == "obrien-fleming":  # little is spent early, where few seeds decide little
        assert spent[0] < spent[-1] / 10


@pytest.mark.parametrize("seeds", [(1, 3), (3, 3, 5), (5, 3), ()])
def test_looks_need_two_seeds_first_and_strictly_more_at_each_look(seeds):
    with pytest.raises(ValueError):
        Looks(seeds)


def test_two_identical_contenders_come_out_equivalent_with_enough_seeds():
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.035, 40)
    a = accuracies(0.7, 40, 0.005, rng, shared)
    b = accuracies(0.7, 40, 0.005, rng, shared)
    assert tost(a, b, margin=0.02, level=0.025)
    assert not tost({s: a[s] for s in range(2)}, b, margin=0.02, level=0.025)
    decision = decide({"a": a, "b": b}, {"a", "b"}, 0, Looks((40,)), margin=0.02)
    assert decision.verdict == EQUIVALENT and decision.group == ("a", "b")


def test_with_no_spread_the_exact_sign_test_decides_and_only_with_enough_seeds():
    same = {s: 0.5 + 0.01 * s for s in range(10)}
    assert tost(same, dict(same), margin=0.02, level=0.001)  # 0.5^10 <= 0.001
    assert not tost(dict(list(same.items())[:5]), same, 0.02, 0.001)
    lower = {s: v - 0.003 for s, v in same.items()}  # 0.3 points below on every seed
    assert shown_worse(lower, same, level=0.001) and not shown_worse(same, lower, 0.001)
    three = {s: same[s] for s in range(3)}
    assert not shown_worse({s: lower[s] for s in range(3)}, three, level=0.05)  # 0.5^3 > 0.05


def test_contenders_five_points_apart_are_never_equivalent():
    rng = np.random.default_rng(1)
    for seeds in (3, 8, 30, 200):
        for sd in (0.0, 0.001, 0.02):
            shared = rng.normal(0, 0.035, seeds)
            a = accuracies(0.70, seeds, sd, rng, shared)
            b = accuracies(0.75, seeds, sd, rng, shared)
            assert not tost(a, b, margin=0.02, level=0.025)
            assert not shown_within(a, b, margin=0.02, level=0.025)  # not even one-sided
            decision = decide({"a": a, "b": b}, {"a", "b"}, 0, Looks((seeds,)), 0.02)
            # b may be shown within the margin of the best (itself); a never, nor both
            assert "a" not in decision.group and decision.group in ((), ("b",))


def test_a_clearly_worse_contender_is_dropped_with_its_reason():
    rng = np.random.default_rng(2)
    shared = rng.normal(0, 0.035, 8)
    per_seed = {
        "cnn4 finetune": accuracies(0.80, 8, 0.01, rng, shared),
        "cnn4 freeze-2": accuracies(0.80, 8, 0.01, rng, shared),
        "cnn4 scratch": accuracies(0.55, 8, 0.01, rng, shared),
    }
    per_seed["cnn4 scratch"][99] = 0.99  # a seed the others lack: not counted
    decision = decide(per_seed, set(per_seed), 2, Looks((3, 5, 8)), margin=0.02)
    assert [d.name for d in decision.drops] == ["cnn4 scratch"]
    assert "cnn4 scratch" not in decision.survivors and decision.seeds == 8
    drop = decision.drops[0]
    assert drop.versus == decision.best and drop.interval[1] < 0 < drop.level
    assert math.isclose(drop.mean, -0.25, abs_tol=0.03)
    assert "shown worse than" in drop.reason and "paired t" in drop.reason
    assert "look 3 (8 seeds)" in drop.reason


def test_undecided_says_how_many_seeds_would_likely_decide_or_none():
    rng = np.random.default_rng(3)
    shared = rng.normal(0, 0.035, 3)
    per_seed = {"a": accuracies(0.74, 3, 0.02, rng, shared)}
    per_seed["b"] = accuracies(0.70, 3, 0.02, rng, shared)
    decision = decide(per_seed, set(per_seed), 0, Looks((3, 5, 8)), margin=0.01)
    assert decision.verdict == UNDECIDED and 3 < decision.seeds_needed <= 1000
    # a tie at the top and a third contender beyond the margin: no winner ever, and every
    # pair equivalent never (far is 10 points below), but the group route: the tie's two
    # within the margin of each other (and far) on a few more seeds
    top = {s: 0.8 + 0.01 * (-1) ** s for s in range(4)}
    tie = {s: 0.8 - 0.01 * (-1) ** s for s in range(4)}
    far = {s: 0.7 + 0.02 * (-1) ** s for s in range(4)}
    per_seed = {"top": top, "tie": tie, "far": far}
    decision = decide(per_seed, set(per_seed), 0, Looks((4, 8)), margin=0.02)
    assert decision.verdict == UNDECIDED and 4 < decision.seeds_needed <= 20
    # a tie whose paired differences swing 60 points: no route decides within 1000 seeds
    top = {s: 0.5 + 0.3 * (-1) ** s for s in range(4)}
    tie = {s: 0.5 - 0.3 * (-1) ** s for s in range(4)}
    decision = decide({"top": top, "tie": tie}, {"top", "tie"}, 0, Looks((4, 8)), 0.02)
    assert decision.verdict == UNDECIDED and decision.seeds_needed is None
    assert "over 1000 seeds" in recommend([], decision)[1]


@pytest.mark.parametrize("pooled", [False, True])
def test_an_undecided_look_shows_the_margin_it_would_have_decided_at(pooled):
    """The margin shown is the least margin at which the same look says equivalent, with its
    contender in the group: a hair above it decides, a hair below it does not."""
    rng = np.random.default_rng(10)
    shared = rng.normal(0, 0.035, 5)
    per_seed = {f"c{i}": accuracies(0.80 - 0.005 * i, 5, 0.02, rng, shared) for i in range(6)}
    per_seed["low"] = accuracies(0.50, 5, 0.02, rng, shared)  # dropped: not in the claim
    looks, alive = Looks((2, 3, 5), pooled=pooled), set(per_seed)
    undecided = decide(per_seed, alive, 2, looks, margin=0.002)
    assert undecided.verdict == UNDECIDED and "low" not in undecided.survivors
    name, shown = undecided.shown_within
    assert name in undecided.survivors and shown > 0.002
    above = decide(per_seed, alive, 2, looks, margin=shown + 1e-6)
    assert above.verdict == EQUIVALENT and name in above.group
    below = decide(per_seed, alive, 2, looks, margin=shown - 1e-6)
    assert below.verdict == UNDECIDED and below.shown_within == undecided.shown_within
    assert decide(per_seed, alive, 2, looks, margin=0.001).shown_within == (name, shown)


def test_a_race_stops_once_decided_and_spends_fewer_trials():
    means = {"best": 0.9, "mid": 0.6, "low": 0.3}
    rng = np.random.default_rng(4)
    noise = {(c, s): rng.normal(0, 0.005) for c in means for s in range(20)}
    result = race(lambda c, s: means[c] + noise[c, s], list(means), Looks((4, 8, 20)), 0.02)
    assert result.decision.verdict == CLEAR_WINNER and result.decision.best == "best"
    assert result.trials < result.fixed_trials == 60
    assert len(result.drops) == result.decision.look + 1


@pytest.mark.parametrize(
    "look, seeds, needed, futile",
    [
        (0, 2, 26, True),  # over 5 x the last look's 5 seeds
        (0, 2, 25, False),  # 5 x 5: the last look may still decide
        (0, 2, None, True),  # beyond CAP, or never
        (1, 3, 40, True),
        (2, 5, 40, False),  # the last look: nothing left to stop
        (0, 1, None, False),  # one seed: no paired test ran, nothing is known
    ],
)
def test_racing_on_is_futile_only_before_the_last_look_and_past_the_factor(
    look, seeds, needed, futile
):
    assert Looks((2, 3, 5), futility=5).futile(look, seeds, needed) is futile
    assert Looks((2, 3, 5)).futile(look, seeds, needed) is False  # 0: never


def test_a_futile_race_stops_at_once_and_only_its_best_runs_the_remaining_seeds():
    means = {f"c{i}": 0.80 - 0.002 * i for i in range(6)}  # 1 point apart in all
    rng = np.random.default_rng(5)
    noise = {(c, s): rng.normal(0, 0.2) for c in means for s in range(5)}  # 20 points
    draw = lambda c, s: means[c] + noise[c, s]  # noqa: E731
    hopeless = race(draw, list(means), Looks((2, 3, 5), futility=5), 0.02)
    final = hopeless.decision
    assert final.verdict == UNDECIDED and final.futile and final.look == 0
    assert final.seeds_needed is None or final.seeds_needed > 5 * 5
    assert hopeless.trials == 6 * 2 + (5 - 2)  # every contender on 2 seeds, its best on 5
    raced = race(draw, list(means), Looks((2, 3, 5)), 0.02)
    assert not raced.decision.futile and raced.trials > hopeless.trials


def test_a_negative_futility_factor_is_refused():
    with pytest.raises(ValueError, match="futility"):
        Looks((2, 3), futility=-1)


def equivalent(group, best, survivors=(), drops=()) -> Decision:
    survivors = tuple(sorted({*group, *survivors}))
    return Decision(EQUIVALENT, best, survivors, drops, 2, 8, {}, 0.02, group=tuple(sorted(group)))


def test_the_recommendation_is_the_cheapest_of_the_group_never_a_dropped_one():
    candidates = [
        Candidate("cnn4 finetune", 98_682, 30.0),
        Candidate("cnn4 freeze-2", 2_314, 20.0),
        Candidate("cnn4 freeze-3", 2_314, 12.0),
        Candidate("cnn4 freeze-4", 900, 10.0),  # still in, not in the group: not shown close
        Candidate("cnn4 linear-probe", 650, 5.0),  # dropped: never recommended
    ]
    group = ["cnn4 finetune", "cnn4 freeze-2", "cnn4 freeze-3"]
    decision = equivalent(group, "cnn4 finetune", survivors=["cnn4 freeze-4"])
    name, reason = recommend(candidates, decision)
    assert name == "cnn4 freeze-3"  # fewest parameters, then the faster of the two
    assert "2,314 trainable parameters against 98,682 for the best (cnn4 finetune)" in reason
    assert "within 2 points of every contender still in" in reason
    tie = equivalent(["cnn4 freeze-2", "cnn4 freeze-3"], "cnn4 freeze-2")
    name, reason = recommend(candidates, tie)
    assert name == "cnn4 freeze-3" and "12 s against 20 s" in reason
    alone = equivalent(["cnn4 finetune"], "cnn4 finetune", survivors=["cnn4 freeze-4"])
    assert recommend(candidates, alone) == (
        "cnn4 finetune",
        "the best by mean and the only one within 2 points of every contender still in",
    )
    winner = Decision(CLEAR_WINNER, "cnn4 finetune", ("cnn4 finetune",), (), 1, 5, {}, 0.02)
    assert recommend(candidates, winner)[0] == "cnn4 finetune"
    undecided = Decision(UNDECIDED, "cnn4 finetune", ("a", "b"), (), 2, 8, {}, 0.02, 14)
    assert recommend(candidates, undecided) == (
        None,
        "undecided after 8 seeds: about 14 seeds would likely decide",
    )


def test_a_margin_in_words_is_one_point_or_several_points():
    assert [points(m) for m in (0.01, 0.02, 0.005, 0.07)] == [
        "1 point",
        "2 points",
        "0.5 points",
        "7 points",
    ]


def test_survivors_3_points_apart_the_leader_and_its_equal_are_the_group_not_the_one_below():
    """Margin 2 points: `low`, 3 points below and noisy, is not dropped yet, so no pair of
    it with the leader is ever equivalent (the old every-pair route); but the leader and
    `cheap` (equal to it) are each shown within 2 points of every contender still in."""
    rng = np.random.default_rng(9)
    leader = accuracies(0.80, 8, 0.002, rng, rng.normal(0, 0.035, 8))
    swing = {s: (-1) ** s * (1 + s // 2) for s in range(8)}  # +-1, +-2, +-3, +-4
    per_seed = {
        "lenet5 finetune": leader,
        "lenet5 freeze-4": {s: v + 0.001 * swing[s] for s, v in leader.items()},
        "lenet5 scratch": {s: v - 0.03 + 0.015 * swing[s] for s, v in leader.items()},
    }
    decision = decide(per_seed, set(per_seed), 0, Looks((8,)), margin=0.02)
    assert not decision.drops and len(decision.survivors) == 3
    assert decision.verdict == EQUIVALENT
    assert decision.group == ("lenet5 finetune", "lenet5 freeze-4")
    assert not tost(per_seed["lenet5 scratch"], leader, margin=0.02, level=0.05)
    candidates = [
        Candidate("lenet5 finetune", 65_000, 30.0),
        Candidate("lenet5 freeze-4", 12_345, 20.0),
        Candidate("lenet5 scratch", 650, 30.0),  # cheapest, but not shown close: not picked
    ]
    name, reason = recommend(candidates, decision)
    assert name == "lenet5 freeze-4"
    assert reason == (
        "freezes the most: 12,345 trainable parameters against 65,000 for the best "
        f"({decision.best}); within 2 points of every contender still in"
    )


@pytest.mark.parametrize("pooled", [False, True])
def test_each_members_claim_holds_against_the_truth_in_a_spread(pooled):
    """Contender i at -i points (the real study's spread, 12 contenders), paired SD 1.5
    points, 2-3-5 seeds: the group is claimed, and a member at least the margin below the truly
    best (a wrong claim) at most alpha + 3 SEs; so is a recommendation outside the margin."""
    rng = np.random.default_rng(10)
    looks = Looks((2, 3, 5), spending="bonferroni", pooled=pooled)
    noise = Noise(paired_sd=0.015)
    tally = simulate("spread", looks, 0.02, 150, rng, contenders=12, noise=noise)
    rate, se = tally.rate(tally.wrong_equivalent)
    assert rate <= 0.05 + 3 * max(se, math.sqrt(0.05 * 0.95 / tally.studies))
    # on 2-5 seeds a pair's own df are few: pooled, most races end with a group
    assert tally.verdicts.get(EQUIVALENT, 0) >= (0.5 if pooled else 0.05) * tally.studies
    decided = tally.studies - tally.verdicts.get(UNDECIDED, 0)
    assert tally.recommended_ok >= decided - 0.05 * tally.studies - 3 * math.sqrt(decided)


@pytest.mark.parametrize("paired_sd", [0.025, 0.008])
@pytest.mark.parametrize("truth", ["all equal", "one better", "boundary", "two tied"])
def test_simulated_error_rates_stay_within_alpha(truth, paired_sd):
    """A few hundred races per truth (bench/decision_errors.py runs thousands): wrong clear
    winners and wrong equivalents (a member of the group at least the margin below the
    truly best) at most alpha + 3 simulation SEs."""
    rng = np.random.default_rng(5)
    noise = Noise(paired_sd=paired_sd)
    tally = simulate(truth, Looks((3, 5, 8)), 0.02, 150, rng, contenders=20, noise=noise)
    for count in (tally.wrong_winner, tally.wrong_equivalent, tally.wrong_shown):
        rate, se = tally.rate(count)
        assert rate <= 0.05 + 3 * max(se, math.sqrt(0.05 * 0.95 / tally.studies))
    assert tally.trials <= tally.fixed_trials


def test_the_pooled_noise_is_the_two_way_residual_variance_with_its_degrees_of_freedom():
    rng = np.random.default_rng(6)
    shared = rng.normal(0, 0.035, 6)
    two = {"a": accuracies(0.7, 6, 0.01, rng, shared), "b": accuracies(0.7, 6, 0.01, rng, shared)}
    s2, df = residual_variance(two)  # two contenders: half the paired differences' variance
    diffs = [two["a"][s] - two["b"][s] for s in range(6)]
    assert df == 5 and math.isclose(2 * s2, float(np.var(diffs, ddof=1)))
    shared = rng.normal(0, 0.035, 40)
    many = {f"c{i}": accuracies(0.7 + 0.01 * i, 40, 0.01, rng, shared) for i in range(10)}
    s2, df = residual_variance(many)  # the shared subset effects and the means are removed
    assert df == 9 * 39 and 0.7 < math.sqrt(s2) / 0.01 < 1.3
    many["c0"] = {s: many["c0"][s] for s in range(3)}  # dropped after 3 seeds: fewer df
    assert residual_variance(many)[1] == 9 * 39 - 37
    assert math.isnan(residual_variance({"a": {0: 0.5}, "b": {0: 0.6}})[0])


def test_pooled_looks_drop_on_three_seeds_what_one_pair_cannot():
    rng = np.random.default_rng(7)
    shared = rng.normal(0, 0.035, 3)
    per_seed = {f"c{i:02d}": accuracies(0.70, 3, 0.02, rng, shared) for i in range(19)}
    per_seed["low"] = accuracies(0.62, 3, 0.02, rng, shared)
    plain = decide(per_seed, set(per_seed), 1, Looks((2, 3)), margin=0.02)
    pooled = decide(per_seed, set(per_seed), 1, Looks((2, 3), pooled=True), margin=0.02)
    assert not plain.drops  # on the pair's 2 df: t's quantile at the drop level is ~30
    assert [d.name for d in pooled.drops] == ["low"] and "pooled t" in pooled.drops[0].reason


@pytest.mark.parametrize("paired_sd", [0.025, 0.008])
@pytest.mark.parametrize("truth", ["all equal", "one better", "boundary", "two tied"])
def test_pooled_simulated_error_rates_stay_within_alpha(truth, paired_sd):
    """Pooled noise, a fourth look at 12 seeds: a few hundred races per truth, wrong clear
    winners and wrong equivalents at most alpha + 3 simulation SEs."""
    rng = np.random.default_rng(8)
    looks = Looks((3, 5, 8, 12), pooled=True)
    tally = simulate(truth, looks, 0.02, 300, rng, contenders=20, noise=Noise(paired_sd=paired_sd))
    for count in (tally.wrong_winner, tally.wrong_equivalent, tally.wrong_shown):
        rate, se = tally.rate(count)
        assert rate <= 0.05 + 3 * max(se, math.sqrt(0.05 * 0.95 / tally.studies))
    if truth == "one better":  # the power pooling buys: the best recommended on <= 12 seeds
        assert tally.recommended_ok >= 0.9 * tally.studies


@pytest.mark.parametrize("truth", ["all equal", "one better", "spread"])
def test_futility_stops_the_races_that_cannot_decide_and_few_that_would(truth):
    """The defaults' rules with and without futility on the same simulated races (the draws
    are made before racing): the decided share is the same within a few races, no error rate
    rises over alpha, and where the races cannot decide (all equal within 1 point at the
    1-per-class noise) futility saves a third of the trials or more."""
    tallies = {}
    for futility in (0, 5):
        looks = Looks((2, 3, 5), spending="bonferroni", pooled=True, futility=futility)
        rng = np.random.default_rng(9)
        tallies[futility] = simulate(truth, looks, 0.01, 200, rng, contenders=20, noise=Noise())
    off, on = tallies[0], tallies[5]
    decided = {f: t.studies - t.verdicts.get(UNDECIDED, 0) for f, t in tallies.items()}
    assert decided[5] >= decided[0] - 4 and on.trials <= off.trials
    for count in (on.wrong_winner, on.wrong_equivalent, on.wrong_shown):
        rate, se = on.rate(count)
        assert rate <= 0.05 + 3 * max(se, math.sqrt(0.05 * 0.95 / on.studies))
    if truth == "all equal":
        assert on.trials <= 2 / 3 * off.trials
